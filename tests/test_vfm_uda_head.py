"""VFM-UDA's lightweight head against its layers written out in torch's functional ops."""
import pytest
import torch
import torch.nn.functional as F
from mmseg.registry import MODELS
from mmseg.utils import register_all_modules

import mmseg_iccld  # noqa: F401

register_all_modules(init_default_scope=True)
torch.set_num_threads(1)


def channel_layer_norm(x, norm):
    """LayerNorm over the channels of an ``(N, C, H, W)`` map, eps 1e-6."""
    return F.layer_norm(x.permute(0, 2, 3, 1), (x.shape[1],), norm.weight, norm.bias,
                        1e-6).permute(0, 3, 1, 2)


def build(in_channels=32):
    head = MODELS.build(dict(type='VFMUDAHead', in_channels=in_channels, num_classes=19,
                             loss_decode=dict(type='CrossEntropyLoss', loss_weight=1.0)))
    head.init_weights()
    return head.eval()


def test_head_is_two_transposed_convolutions_a_3x3_one_and_a_classifier():
    torch.manual_seed(0)
    head = build()
    for p in head.parameters():  # LayerNorms away from 1 and 0, so that they count
        p.data.add_(0.1 * torch.randn_like(p))
    tokens = torch.randn(2, 32, 5, 7)
    up1, ln1, _, up2, ln2, conv, ln3 = head.upscale
    x = F.gelu(channel_layer_norm(F.conv_transpose2d(tokens, up1.weight, stride=2), ln1))
    x = channel_layer_norm(F.conv_transpose2d(x, up2.weight, stride=2), ln2)
    x = channel_layer_norm(F.conv2d(x, conv.weight, padding=1), ln3)
    expected = F.conv2d(x, head.conv_seg.weight)
    with torch.no_grad():
        logits = head([torch.randn(2, 32, 3, 3), tokens])  # the last input is read
    assert logits.shape == (2, 19, 20, 28)
    torch.testing.assert_close(logits, expected, rtol=1e-5, atol=1e-5)
    # VFM-UDA's sizes: C -> C/2 -> C/4, no biases before the norms, a bias-free classifier
    assert (up1.out_channels, up2.out_channels, conv.out_channels) == (16, 8, 8)
    assert all(m.bias is None for m in (up1, up2, conv, head.conv_seg))
    assert head.dropout is None


def test_classifier_starts_with_std_0_1_and_odd_widths_are_refused():
    torch.manual_seed(0)
    head = build(in_channels=256)
    assert head.conv_seg.weight.std().item() == pytest.approx(0.1, rel=0.1)  # 19 x 64 draws
    with pytest.raises(ValueError, match='multiple of 4'):
        build(in_channels=30)
