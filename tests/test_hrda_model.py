"""HRDA's encoder-decoder and head on a toy fully convolutional network, by hand."""
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.config import ConfigDict
from mmengine.structures import PixelData
from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from mmseg.models.segmentors.encoder_decoder import EncoderDecoder
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample
from mmseg.utils import register_all_modules

import mmseg_iccld  # noqa: F401
from mmseg_iccld.models.decode_heads.hrda_head import fuse_scales
from mmseg_iccld.models.segmentors import hrda_encoder_decoder
from mmseg_iccld.models.segmentors.hrda_encoder_decoder import (batched_slide_inference,
                                                                random_crop_box)

register_all_modules(init_default_scope=True)
torch.set_num_threads(1)
NUM_CLASSES = 3


@MODELS.register_module(force=True)
class ToyPatchBackbone(nn.Module):
    """One stage at stride 4: a 4x4 patch embedding, so each output cell sees its own patch
    only, and any window aligned to 4 pixels gives exactly the cells of the whole image."""

    def __init__(self, channels: int = 8) -> None:
        super().__init__()
        self.proj = nn.Conv2d(3, channels, kernel_size=4, stride=4)

    def forward(self, x):
        return [self.proj(x)]


@MODELS.register_module(force=True)
class ToyPointHead(BaseDecodeHead):
    """A 1x1 classifier on the one stage."""

    def forward(self, inputs):
        return self.cls_seg(self._transform_inputs(inputs))


def config(hr_slide_inference=True, test_cfg=None, **kwargs) -> dict:
    head = dict(type='ToyPointHead', in_channels=8, channels=8, in_index=0,
                num_classes=NUM_CLASSES, dropout_ratio=0.0, align_corners=False,
                loss_decode=dict(type='CrossEntropyLoss', loss_weight=1.0))
    cfg = dict(
        type='HRDAEncoderDecoder',
        backbone=dict(type='ToyPatchBackbone'),
        decode_head=dict(type='HRDAHead', single_scale_head=head, attention_embed_dims=8),
        scales=[1, 0.5], hr_crop_size=(16, 16), crop_coord_divisible=8,
        hr_slide_inference=hr_slide_inference,
        test_cfg=test_cfg or dict(mode='whole'))
    for key in ('hr_loss_weight', 'lr_loss_weight'):
        if key in kwargs:
            cfg['decode_head'][key] = kwargs.pop(key)
    cfg.update(kwargs)
    return cfg


def build(hr_slide_inference=True, test_cfg=None, **kwargs):
    model = MODELS.build(ConfigDict(config(hr_slide_inference, test_cfg, **kwargs)))
    model.init_weights()
    with torch.no_grad():  # the default init makes every logit ~0: spread them out
        for p in model.parameters():
            p.normal_(0, 0.5)
    return model.eval()


def test_fused_logits_follow_the_formula_on_known_tensors():
    # context logits [0, 4] and attention [0.5, 0.25] on a 1x2 grid, detail logits 8
    context = torch.tensor([[[[0.0, 4.0]]]])
    attention = torch.tensor([[[[0.5, 0.25]]]])
    detail = torch.full((1, 1, 2, 4), 8.0)
    fused = fuse_scales(context, attention, detail, ratio=2)
    # (1 - a) * context = [0, 3], upsampled x2 (bilinear, half-pixel centres): [0, .75, 2.25, 3]
    # a upsampled: [.5, .4375, .3125, .25], times 8: [4, 3.5, 2.5, 2]
    expected = torch.tensor([4.0, 4.25, 4.75, 5.0]).expand(1, 1, 2, 4)
    assert torch.allclose(fused, expected)
    # constant fields: exactly a * detail + (1 - a) * context
    fused = fuse_scales(torch.full((2, 3, 4, 4), 2.0), torch.full((2, 3, 4, 4), 0.25),
                        torch.full((2, 3, 8, 8), 6.0), ratio=2)
    assert torch.allclose(fused, torch.full((2, 3, 8, 8), 0.25 * 6 + 0.75 * 2))


def test_scale_attention_is_masked_outside_the_detail_crop():
    torch.manual_seed(0)
    model = build()
    head = model.decode_head
    x = torch.randn(2, 3, 64, 64)
    box = (8, 24, 32, 48)  # rows 8..24, cols 32..48 of the full-resolution input
    with torch.no_grad():
        features = model.hrda_features(x, box)
        raw = torch.sigmoid(head.scale_attention(features['context']))
        # context grid: 64 px * 0.5 / stride 4 = 8 cells of 8 px; the crop is cells 1..3, 4..6
        attention = head.attention(features['context'], [box], stride=8, masked=True)
    assert attention.shape == (2, NUM_CLASSES, 8, 8)  # one map per class
    inside = torch.zeros(8, 8, dtype=torch.bool)
    inside[1:3, 4:6] = True
    assert torch.equal(attention[..., inside], raw[..., inside])
    assert torch.all(attention[..., ~inside] == 0) and torch.all(raw > 0)

    # the fused logits outside the crop ignore the detail branch entirely
    with torch.no_grad():
        fused, context, detail = head(features)
        other = dict(features, detail=[torch.randn_like(features['detail'][0])])
        fused_other = head(other)[0]
    assert fused.shape == (2, NUM_CLASSES, 16, 16) and detail.shape == (2, NUM_CLASSES, 4, 4)
    crop = torch.zeros(16, 16, dtype=torch.bool)  # the crop on the stride-4 fused grid
    crop[2:6, 8:12] = True
    assert torch.equal(fused[..., ~crop], fused_other[..., ~crop])
    assert not torch.allclose(fused[..., crop], fused_other[..., crop])
    # ... and equal the upsampled context logits there, away from the crop's border band
    far = torch.ones(16, 16, dtype=torch.bool)
    far[1:7, 7:13] = False
    up = F.interpolate(context, size=(16, 16), mode='bilinear', align_corners=False)
    assert torch.allclose(fused[..., far], up[..., far], atol=1e-6)


def test_head_output_is_the_masked_fusion_of_its_branches():
    torch.manual_seed(1)
    model = build()
    head = model.decode_head
    x = torch.randn(2, 3, 64, 64)
    box = (16, 32, 0, 16)
    with torch.no_grad():
        features = model.hrda_features(x, box)
        fused, context, detail = head(features)
        assert torch.equal(context, head.head(features['context']))
        assert torch.equal(detail, head.head(features['detail']))
        mask = torch.zeros(1, 1, 8, 8)
        mask[:, :, 2:4, 0:2] = 1
        attention = torch.sigmoid(head.scale_attention(features['context'])) * mask
        canvas = torch.zeros(2, NUM_CLASSES, 16, 16)
        canvas[:, :, 4:8, 0:4] = detail

    def up(t):
        return F.interpolate(t, size=(16, 16), mode='bilinear', align_corners=False)

    assert torch.allclose(fused, up(attention) * canvas + up((1 - attention) * context),
                          atol=1e-6)


def test_sliding_detail_windows_equal_whole_image_detail_for_a_convolutional_model():
    torch.manual_seed(2)
    sliding, whole = build(hr_slide_inference=True), build(hr_slide_inference=False)
    whole.load_state_dict(sliding.state_dict())
    x = torch.randn(2, 3, 64, 96)
    shapes = []
    sliding.backbone.register_forward_hook(lambda m, a, o: shapes.append(tuple(a[0].shape)))
    metas = [dict(img_shape=(64, 96), ori_shape=(64, 96))] * 2
    with torch.no_grad():
        out_sliding = sliding.encode_decode(x, metas)
        out_whole = whole.encode_decode(x, metas)
    # context first, then 7 x 11 overlapping 16x16 windows (stride 8) in one batch
    assert shapes == [(2, 3, 32, 48), (7 * 11 * 2, 3, 16, 16)]
    assert out_sliding.shape == (2, NUM_CLASSES, 64, 96)
    assert torch.allclose(out_sliding, out_whole, atol=1e-5)


def test_batched_slide_inference_equals_the_whole_image_and_mmsegs_window_loop():
    torch.manual_seed(3)
    conv = nn.Conv2d(3, NUM_CLASSES, kernel_size=1)
    x = torch.randn(2, 3, 40, 56)
    metas = [dict(img_shape=(40, 56), ori_shape=(40, 56))] * 2
    calls = []

    def encode(windows, window_metas):
        calls.append((tuple(windows.shape), len(window_metas), window_metas[0]['img_shape']))
        return conv(windows)

    with torch.no_grad():
        out = batched_slide_inference(encode, x, metas, crop=(24, 24), stride=(16, 16))
        assert torch.allclose(out, conv(x), atol=1e-6)
    # 2 x 3 windows (the last ones flush with the border), one call
    assert calls == [((2 * 6, 3, 24, 24), 12, (24, 24))]

    # the HRDA model: batched windows == mmseg's own one-window-at-a-time loop
    model = build(test_cfg=dict(mode='slide', crop_size=(32, 32), stride=(16, 16)))
    x = torch.randn(2, 3, 64, 80)
    metas = [dict(img_shape=(64, 80), ori_shape=(64, 80)) for _ in range(2)]
    with torch.no_grad():
        batched = model.slide_inference(x, [dict(m) for m in metas])
        looped = EncoderDecoder.slide_inference(model, x, [dict(m) for m in metas])
    assert torch.allclose(batched, looped, atol=1e-5)


@pytest.mark.parametrize('lr_loss_weight', [0.0, 0.2])
def test_losses_weigh_fused_detail_and_context_predictions(monkeypatch, lr_loss_weight):
    torch.manual_seed(4)
    model = build(hr_loss_weight=0.1, lr_loss_weight=lr_loss_weight)
    box = (24, 40, 8, 24)
    monkeypatch.setattr(hrda_encoder_decoder, 'random_crop_box', lambda *args: box)
    x = torch.randn(2, 3, 64, 64)
    labels = torch.randint(0, NUM_CLASSES, (2, 1, 64, 64))
    labels[:, :, :4] = 255
    weights = torch.rand(2, 1, 64, 64)
    samples = []
    for label, weight in zip(labels, weights):
        sample = SegDataSample(metainfo=dict(img_shape=(64, 64)))
        sample.gt_sem_seg, sample.seg_weight = PixelData(data=label), PixelData(data=weight)
        samples.append(sample)
    with torch.no_grad():
        losses = model.loss(x, samples)
        fused, context, detail = model.decode_head(model.hrda_features(x, box))

    def ce(logits, label, weight):
        logits = F.interpolate(logits, size=label.shape[2:], mode='bilinear',
                               align_corners=False)
        pixel = F.cross_entropy(logits, label.squeeze(1), reduction='none', ignore_index=255)
        return (pixel * weight.squeeze(1)).sum() / label.numel()  # mmseg: mean over pixels

    y1, y2, x1, x2 = box
    expected = {
        'decode.loss_ce': (0.9 - lr_loss_weight) * ce(fused, labels, weights),
        'decode.hr.loss_ce': 0.1 * ce(detail, labels[..., y1:y2, x1:x2],
                                      weights[..., y1:y2, x1:x2]),
    }
    if lr_loss_weight:
        expected['decode.lr.loss_ce'] = lr_loss_weight * ce(context, labels, weights)
    assert {k for k in losses if 'loss' in k} == set(expected)
    for key, value in expected.items():
        assert torch.allclose(losses[key], value, rtol=1e-5), key
    assert 'decode.acc_seg' in losses and 'decode.hr.acc_seg' in losses


def test_detail_crops_fall_on_the_grid_and_reach_every_offset():
    torch.manual_seed(5)
    boxes = {random_crop_box(64, 40, (16, 16), 8) for _ in range(500)}
    assert {(y1, x1) for y1, _, x1, _ in boxes} == {(y, x) for y in range(0, 49, 8)
                                                    for x in range(0, 25, 8)}
    assert all(y2 - y1 == 16 and x2 - x1 == 16 for y1, y2, x1, x2 in boxes)
    with pytest.raises(ValueError, match='larger than the input'):
        random_crop_box(8, 64, (16, 16), 8)


def test_bad_scales_and_unaligned_crops_are_refused():
    with pytest.raises(ValueError, match='scales'):
        MODELS.build(config(scales=[1, 0.3]))
    model = build()
    with pytest.raises(ValueError, match='grid of stride 8'):
        model.decode_head(model.hrda_features(torch.randn(1, 3, 64, 64), (4, 20, 0, 16)))
