"""HRDA's pseudo-label margins on the full target image before its crop: the mask the target
pipeline makes, crops and flips with the image and packs, and the weights DACS gives it."""
import numpy as np
import pytest
import torch
from mmengine.structures import PixelData
from mmseg.datasets.transforms import RandomCrop, RandomFlip
from mmseg.structures import SegDataSample

from mmseg_iccld.datasets.pseudo_label_margins import PackUDATargetInputs, PseudoLabelMargins
from mmseg_iccld.models.uda.pseudo_label import pseudo_labels_and_weights


def results(height=10, width=12):
    return dict(img=np.zeros((height, width, 3), np.uint8), gt_seg_map=np.zeros(
        (height, width), np.uint8), seg_fields=['gt_seg_map'], img_shape=(height, width),
        ori_shape=(height, width))


def test_mask_marks_the_margins_of_the_whole_image():
    out = PseudoLabelMargins(margins=(1, 3, 2, 1))(results())
    mask = out['valid_pseudo_mask']
    assert mask.shape == (10, 12) and mask.dtype == np.uint8
    assert mask[1:7, 2:11].all() and mask.sum() == 6 * 9  # rows 1..6, columns 2..10
    assert out['seg_fields'] == ['gt_seg_map', 'valid_pseudo_mask']


def test_the_crop_and_the_flip_move_the_mask_with_the_image(monkeypatch):
    out = PseudoLabelMargins(margins=(1, 3, 2, 1))(results())
    # a 6x6 crop at rows 4..9, columns 0..5: the bottom margin (rows 7..9) and the left one
    # (columns 0, 1) fall inside it, the others do not
    offsets = iter([4, 0])  # mmseg's RandomCrop draws the row offset, then the column one
    monkeypatch.setattr(np.random, 'randint', lambda low, high: next(offsets))
    out = RandomCrop(crop_size=(6, 6))(out)
    expected = np.zeros((6, 6), np.uint8)
    expected[0:3, 2:6] = 1
    assert np.array_equal(out['valid_pseudo_mask'], expected)
    out = RandomFlip(prob=1.0)(out)
    assert np.array_equal(out['valid_pseudo_mask'], expected[:, ::-1])
    packed = PackUDATargetInputs()(out)
    mask = packed['data_samples'].valid_pseudo_mask.data
    assert mask.shape == (1, 6, 6) and mask.dtype == torch.float32
    assert torch.equal(mask[0], torch.from_numpy(expected[:, ::-1].copy()).float())


def test_margins_that_leave_nothing_are_an_error():
    with pytest.raises(ValueError, match='leave nothing of a 10x12 image'):
        PseudoLabelMargins(margins=(5, 5, 0, 0))(results())
    with pytest.raises(ValueError, match='>= 0'):
        PseudoLabelMargins(margins=(1, -1, 0, 0))


def sample_with_mask(mask=None):
    sample = SegDataSample()
    if mask is not None:
        sample.valid_pseudo_mask = PixelData(data=mask[None].float())
    return sample


def test_dacs_weights_are_zero_where_the_mask_is():
    logits = torch.zeros(2, 3, 4, 4)
    logits[:, 1] = 10.0  # every pixel confident
    mask = torch.ones(4, 4)
    mask[3] = 0
    labels, weights, weight = pseudo_labels_and_weights(
        logits, 0.9, (0, 0, 0, 0), [sample_with_mask(mask), sample_with_mask(torch.ones(4, 4))])
    assert weight.item() == 1.0 and (labels == 1).all()
    assert torch.equal(weights[0], mask) and torch.equal(weights[1], torch.ones(4, 4))
    # crop margins and the mask combine
    _, weights, _ = pseudo_labels_and_weights(
        logits, 0.9, (1, 0, 0, 0), [sample_with_mask(mask), sample_with_mask(mask)])
    expected = mask.clone()
    expected[0] = 0
    assert torch.equal(weights, torch.stack([expected, expected]))
    # samples without the field: the weights of DACS alone
    _, weights, _ = pseudo_labels_and_weights(logits, 0.9, (0, 0, 0, 0),
                                              [sample_with_mask(), sample_with_mask()])
    assert torch.equal(weights, torch.ones(2, 4, 4))


def test_a_mask_on_some_samples_only_or_of_another_size_is_an_error():
    logits = torch.zeros(2, 3, 4, 4)
    with pytest.raises(ValueError, match='in 1 of 2 target samples'):
        pseudo_labels_and_weights(logits, 0.9, (0, 0, 0, 0),
                                  [sample_with_mask(torch.ones(4, 4)), sample_with_mask()])
    with pytest.raises(ValueError, match=r'\(2, 4, 5\) does not match the pseudo-labels'):
        pseudo_labels_and_weights(logits, 0.9, (0, 0, 0, 0), [sample_with_mask(
            torch.ones(4, 5)), sample_with_mask(torch.ones(4, 5))])
