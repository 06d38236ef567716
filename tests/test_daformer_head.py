"""DAFormerHead: DAFormer's context-aware fusion, checked against a hand-written forward."""
import pytest
import torch
import torch.nn.functional as F
from mmcv.cnn import ConvModule, DepthwiseSeparableConvModule
from mmengine.structures import PixelData
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample
from mmseg.utils import register_all_modules

import mmseg_iccld  # noqa: F401

register_all_modules(init_default_scope=True)


def _head(**kwargs):
    cfg = dict(
        type='DAFormerHead',
        in_channels=[4, 6, 8, 10],
        in_index=[0, 1, 2, 3],
        channels=5,
        embed_dims=3,
        dilations=(1, 6, 12, 18),
        dropout_ratio=0.1,
        num_classes=7,
        norm_cfg=dict(type='BN', requires_grad=True),
        align_corners=False)
    cfg.update(kwargs)
    return MODELS.build(cfg)


def _features(n=2, size=8):
    # strides 4, 8, 16, 32 of a (size * 4)-pixel image
    return [torch.randn(n, c, size // 2**i, size // 2**i) for i, c in enumerate([4, 6, 8, 10])]


def _bn(x, bn):
    return F.batch_norm(x, bn.running_mean, bn.running_var, bn.weight, bn.bias, False, 0.0,
                        bn.eps)


def _conv_module(x, module: ConvModule, dilation=1, padding=0, groups=1):
    x = F.conv2d(x, module.conv.weight, module.conv.bias, padding=padding, dilation=dilation,
                 groups=groups)
    return F.relu(_bn(x, module.bn))


def test_structure_matches_daformer():
    head = _head()
    assert [(e.in_channels, e.out_channels, e.kernel_size) for e in head.embed_layers] == \
        [(4, 3, (1, 1)), (6, 3, (1, 1)), (8, 3, (1, 1)), (10, 3, (1, 1))]
    # four branches, no image-pooling branch
    assert len(head.fusion) == 4
    assert isinstance(head.fusion[0], ConvModule) and head.fusion[0].conv.kernel_size == (1, 1)
    for branch, dilation in zip(list(head.fusion)[1:], (6, 12, 18)):
        assert isinstance(branch, DepthwiseSeparableConvModule)
        assert branch.depthwise_conv.conv.dilation == (dilation, dilation)
        assert branch.depthwise_conv.conv.groups == 12
        assert branch.pointwise_conv.conv.out_channels == 5
    assert head.bottleneck.conv.kernel_size == (3, 3)
    assert head.bottleneck.conv.in_channels == 4 * 5
    assert head.conv_seg.in_channels == 5 and head.dropout.p == 0.1


def test_forward_equals_hand_computation():
    torch.manual_seed(0)
    head = _head().eval()
    for m in head.modules():  # non-trivial BN statistics
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.5, 0.5)
    feats = _features()
    with torch.no_grad():
        out = head(feats)

        # per-stage linear layer over channels, upsampled to stride 4
        embedded = []
        for f, embed in zip(feats, head.embed_layers):
            w = embed.weight.flatten(1)  # (embed_dims, C)
            e = torch.einsum('oc,nchw->nohw', w, f) + embed.bias.view(1, -1, 1, 1)
            embedded.append(F.interpolate(e, size=(8, 8), mode='bilinear',
                                          align_corners=False))
        x = torch.cat(embedded, 1)
        branches = [_conv_module(x, head.fusion[0])]
        for branch, d in zip(list(head.fusion)[1:], (6, 12, 18)):
            y = _conv_module(x, branch.depthwise_conv, dilation=d, padding=d, groups=12)
            branches.append(_conv_module(y, branch.pointwise_conv))
        fused = _conv_module(torch.cat(branches, 1), head.bottleneck, padding=1)
        logits = F.conv2d(fused, head.conv_seg.weight, head.conv_seg.bias)
    assert out.shape == (2, 7, 8, 8)
    assert torch.allclose(out, logits, atol=1e-5)


def test_per_stage_embed_dims_and_loss():
    torch.manual_seed(0)
    head = _head(embed_dims=[2, 3, 4, 5])
    assert head.fusion[0].conv.in_channels == 14
    samples = []
    for _ in range(2):
        sample = SegDataSample()
        sample.gt_sem_seg = PixelData(data=torch.randint(0, 7, (1, 32, 32)))
        samples.append(sample)
    losses = head.loss(tuple(_features()), samples, train_cfg=None)
    assert losses['loss_ce'].item() > 0
    losses['loss_ce'].backward()
    assert head.embed_layers[3].weight.grad.abs().sum() > 0


def test_requires_multiple_select():
    with pytest.raises(ValueError, match='multiple_select'):
        _head(input_transform='resize_concat')
    with pytest.raises(ValueError, match='embed_dims'):
        _head(embed_dims=[2, 3])
