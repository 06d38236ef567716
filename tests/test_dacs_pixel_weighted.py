"""Per-pixel weights in mmseg decode heads."""
import math

import pytest
import torch
import torch.nn.functional as F
from mmengine.structures import PixelData
from mmseg.models.decode_heads import FCNHead
from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from mmseg.models.segmentors import EncoderDecoder
from mmseg.structures import SegDataSample
from mmseg.utils import register_all_modules

from mmseg_iccld.models.losses.pixel_weighted import loss_by_feat_weighted
from mmseg_iccld.models.uda.pixel_weights import bind_pixel_weighted_loss

register_all_modules(init_default_scope=True)


def _head(**kwargs) -> FCNHead:
    return FCNHead(in_channels=4, channels=4, num_convs=1, num_classes=3, **kwargs)


def _samples(labels, weights=None):
    samples = []
    for i, label in enumerate(labels):
        sample = SegDataSample()
        sample.gt_sem_seg = PixelData(data=label.unsqueeze(0))
        if weights is not None and weights[i] is not None:
            sample.seg_weight = PixelData(data=weights[i].unsqueeze(0))
        samples.append(sample)
    return samples


def test_weighted_loss_equals_manual_weighted_cross_entropy():
    torch.manual_seed(0)
    head = _head()
    logits = torch.randn(2, 3, 2, 2)  # resized to the 4x4 labels inside
    labels = torch.randint(0, 3, (2, 4, 4))
    labels[0, 0, 0] = 255
    weights = torch.rand(2, 4, 4)
    losses = loss_by_feat_weighted(head, logits, _samples(labels, weights))

    up = F.interpolate(logits, size=(4, 4), mode='bilinear', align_corners=False)
    ce = F.cross_entropy(up, labels, reduction='none', ignore_index=255)
    expected = (ce * weights).sum() / labels.numel()  # mean over pixels, not weights
    assert torch.allclose(losses['loss_ce'], expected, atol=1e-6)
    assert 'acc_seg' in losses


def test_without_seg_weight_it_is_the_stock_loss_and_missing_weights_count_as_one():
    torch.manual_seed(0)
    head = _head()
    logits = torch.randn(2, 3, 4, 4)
    labels = torch.randint(0, 3, (2, 4, 4))
    stock = BaseDecodeHead.loss_by_feat(head, logits, _samples(labels))
    ours = loss_by_feat_weighted(head, logits, _samples(labels))
    assert torch.equal(stock['loss_ce'], ours['loss_ce'])
    assert torch.equal(stock['acc_seg'], ours['acc_seg'])

    half = loss_by_feat_weighted(head, logits, _samples(labels, [torch.full((4, 4), 0.5), None]))
    ce = F.cross_entropy(logits, labels, reduction='none')
    expected = (0.5 * ce[0].sum() + ce[1].sum()) / labels.numel()
    assert torch.allclose(half['loss_ce'], expected, atol=1e-6)


def test_weights_scale_the_loss_linearly():
    torch.manual_seed(1)
    head = _head()
    logits = torch.randn(1, 3, 4, 4)
    labels = torch.randint(0, 3, (1, 4, 4))
    weight = torch.rand(1, 4, 4)
    one = loss_by_feat_weighted(head, logits, _samples(labels, weight))['loss_ce']
    three = loss_by_feat_weighted(head, logits, _samples(labels, 3 * weight))['loss_ce']
    zero = loss_by_feat_weighted(head, logits, _samples(labels, 0 * weight))['loss_ce']
    assert math.isclose(three.item(), 3 * one.item(), rel_tol=1e-5)
    assert zero.item() == 0.0


def _segmentor(decode_head: dict) -> EncoderDecoder:
    return EncoderDecoder(
        backbone=dict(type='ResNetV1c', depth=18, num_stages=1, out_indices=(0, ),
                      strides=(1, ), dilations=(1, ), base_channels=4, stem_channels=4),
        decode_head=decode_head,
        auxiliary_head=dict(type='FCNHead', in_channels=4, channels=4, num_convs=1,
                            num_classes=3))


def test_binding_reaches_decode_and_auxiliary_heads_of_a_segmentor():
    seg = _segmentor(dict(type='FCNHead', in_channels=4, channels=4, num_convs=1,
                          num_classes=3))
    bound = bind_pixel_weighted_loss(seg)
    assert sorted(bound) == ['auxiliary_head', 'decode_head']
    assert seg.decode_head.loss_by_feat.__func__ is loss_by_feat_weighted
    # other instances of the class keep the stock method
    assert _head().loss_by_feat.__func__ is BaseDecodeHead.loss_by_feat


class OwnLossHead(FCNHead):

    def loss_by_feat(self, seg_logits, batch_data_samples):
        return super().loss_by_feat(seg_logits, batch_data_samples)


class OwnWeightedLossHead(OwnLossHead):
    supports_seg_weight = True


def test_head_with_its_own_loss_by_feat_is_refused_unless_it_declares_support():
    head = OwnLossHead(in_channels=4, channels=4, num_convs=1, num_classes=3)
    with pytest.raises(TypeError, match='OwnLossHead.*supports_seg_weight'):
        bind_pixel_weighted_loss(torch.nn.ModuleDict(dict(decode_head=head)))

    declared = OwnWeightedLossHead(in_channels=4, channels=4, num_convs=1, num_classes=3)
    assert bind_pixel_weighted_loss(torch.nn.ModuleDict(dict(decode_head=declared))) == []
    assert declared.loss_by_feat.__func__ is OwnWeightedLossHead.loss_by_feat


def test_misaligned_weight_is_an_error():
    head = _head()
    labels = torch.zeros(1, 4, 4, dtype=torch.long)
    with pytest.raises(ValueError, match='seg_weight'):
        loss_by_feat_weighted(head, torch.randn(1, 3, 4, 4),
                              _samples(labels, torch.ones(1, 2, 2)))


def test_pixel_accuracy_is_mmseg_accuracy_without_host_reads():
    from mmseg.models.losses import accuracy

    from mmseg_iccld.models.losses.pixel_weighted import pixel_accuracy
    # by hand: 4 pixels, one ignored; of the other three, two are right -> 66.67%
    logits = torch.tensor([[[[2., 0.], [0., 1.]], [[0., 1.], [3., 0.]]]])  # (1, 2, 2, 2)
    labels = torch.tensor([[[0, 0], [1, 255]]])  # argmax is [[0, 1], [1, 0]]
    assert torch.allclose(pixel_accuracy(logits, labels, 255), torch.tensor([200 / 3]))
    torch.manual_seed(0)
    logits = torch.randn(2, 19, 64, 96)
    labels = torch.randint(0, 19, (2, 64, 96))
    labels[:, :10] = 255

    def synchronising_ops(function):
        with torch.profiler.profile() as prof:
            result = function(logits, labels, ignore_index=255)
        names = {event.key for event in prof.key_averages()}
        return result, names & {'aten::nonzero', 'aten::_local_scalar_dense'}

    expected, theirs = synchronising_ops(accuracy)
    ours, none = synchronising_ops(pixel_accuracy)
    assert 'aten::nonzero' in theirs and not none  # boolean indexing waits for the device
    assert ours.shape == (1, ) and torch.equal(ours, expected)
    # every pixel ignored: mmseg's eps / eps
    assert torch.equal(pixel_accuracy(logits, torch.full_like(labels, 255), 255),
                       accuracy(logits, torch.full_like(labels, 255), ignore_index=255))
