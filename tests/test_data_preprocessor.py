"""UDADataPreprocessor: both halves normalised and padded by hand; val/test path unchanged."""
import pytest
import torch
from mmengine.structures import PixelData

import mmseg_iccld  # noqa: F401
from mmseg.models.data_preprocessor import SegDataPreProcessor
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

MEAN, STD = [10., 20., 30.], [2., 4., 5.]


def image(h, w, b, g, r):
    """A (3, h, w) uint8 BGR image with constant channels."""
    return torch.stack([torch.full((h, w), v, dtype=torch.uint8) for v in (b, g, r)])


def sample(h, w, cls):
    return SegDataSample(gt_sem_seg=PixelData(data=torch.full((1, h, w), cls, dtype=torch.uint8)))


def uda_batch():
    # Source 2x3, target 3x5: the two halves differ in size.
    return dict(
        inputs=[image(2, 3, 30, 20, 10), image(2, 3, 35, 24, 12)],
        data_samples=[sample(2, 3, 1), sample(2, 3, 2)],
        target_inputs=[image(3, 5, 40, 28, 20), image(3, 5, 30, 20, 10)],
        target_data_samples=[sample(3, 5, 0), sample(3, 5, 4)])


def build(**kwargs):
    return MODELS.build(dict(type='UDADataPreprocessor', mean=MEAN, std=STD, bgr_to_rgb=True,
                             **kwargs))


def test_both_halves_are_normalised_and_padded():
    out = build(size_divisor=4, pad_val=0, seg_pad_val=255)(uda_batch(), training=True)
    assert set(out) == {'inputs', 'data_samples', 'target_inputs', 'target_data_samples'}
    src, tgt = out['inputs'], out['target_inputs']
    assert src.dtype == torch.float32 and src.shape == (2, 3, 4, 4)
    assert tgt.shape == (2, 3, 4, 8)
    # BGR (30, 20, 10) -> RGB (10, 20, 30) -> ((10-10)/2, (20-20)/4, (30-30)/5)
    assert src[0, :, 0, 0].tolist() == [0.0, 0.0, 0.0]
    # BGR (35, 24, 12) -> RGB (12, 24, 35) -> (1, 1, 1)
    assert src[1, :, 1, 2].tolist() == [1.0, 1.0, 1.0]
    # BGR (40, 28, 20) -> RGB (20, 28, 40) -> (5, 2, 2)
    assert tgt[0, :, 2, 4].tolist() == [5.0, 2.0, 2.0]
    assert tgt[1, :, :3, :5].abs().max() == 0.0
    # Padding (bottom/right) with pad_val after normalisation, labels with seg_pad_val.
    assert src[:, :, 2:].abs().max() == 0.0 and src[:, :, :, 3:].abs().max() == 0.0
    assert tgt[:, :, 3:].abs().max() == 0.0 and tgt[:, :, :, 5:].abs().max() == 0.0
    gt_t = out['target_data_samples'][1].gt_sem_seg.data
    expected = torch.full((1, 4, 8), 255, dtype=torch.uint8)
    expected[:, :3, :5] = 4
    assert torch.equal(gt_t, expected)
    gt_s = out['data_samples'][0].gt_sem_seg.data
    assert gt_s.shape == (1, 4, 4) and gt_s[0, 0, 0] == 1 and gt_s[0, 3, 3] == 255


def test_halves_match_seg_data_preprocessor_on_each_half():
    kwargs = dict(mean=MEAN, std=STD, bgr_to_rgb=True, size=(6, 6), pad_val=-1, seg_pad_val=9)
    out = MODELS.build(dict(type='UDADataPreprocessor', **kwargs))(uda_batch(), training=True)
    ref = SegDataPreProcessor(**kwargs)
    data = uda_batch()
    src = ref(dict(inputs=data['inputs'], data_samples=data['data_samples']), True)
    tgt = ref(dict(inputs=data['target_inputs'], data_samples=data['target_data_samples']),
              True)
    assert torch.equal(out['inputs'], src['inputs'])
    assert torch.equal(out['target_inputs'], tgt['inputs'])
    assert out['target_inputs'][0, 0, 5, 5] == -1.0
    for a, b in zip(out['target_data_samples'], tgt['data_samples']):
        assert torch.equal(a.gt_sem_seg.data, b.gt_sem_seg.data)


def test_val_batches_are_plain_mmseg_batches():
    kwargs = dict(mean=MEAN, std=STD, bgr_to_rgb=True, size_divisor=4,
                  test_cfg=dict(size_divisor=4))
    uda = MODELS.build(dict(type='UDADataPreprocessor', **kwargs))
    ref = SegDataPreProcessor(**kwargs)
    batch = dict(inputs=[image(3, 5, 40, 28, 20)], data_samples=[sample(3, 5, 0)])
    out = uda(batch, training=False)
    expected = ref(dict(inputs=[image(3, 5, 40, 28, 20)], data_samples=[sample(3, 5, 0)]),
                   training=False)
    assert set(out) == {'inputs', 'data_samples'}
    assert torch.equal(out['inputs'], expected['inputs'])
    assert out['inputs'].shape == (1, 3, 4, 8)
    assert out['inputs'][0, :, 0, 0].tolist() == [5.0, 2.0, 2.0]
    # test_cfg padding records the padding in the data sample, as mmseg does.
    assert out['data_samples'][0].img_padding_size == expected['data_samples'][0].img_padding_size
    assert tuple(out['data_samples'][0].img_padding_size) == (0, 3, 0, 1)

    # A source-only training batch is SegDataPreProcessor's too.
    train = dict(inputs=[image(2, 3, 30, 20, 10)], data_samples=[sample(2, 3, 1)])
    out = uda(train, training=True)
    assert set(out) == {'inputs', 'data_samples'} and out['inputs'].shape == (1, 3, 4, 4)


def test_half_a_target_is_an_error():
    batch = uda_batch()
    del batch['target_data_samples']
    with pytest.raises(KeyError, match=r"missing \['target_data_samples'\]"):
        build(size_divisor=4)(batch, training=True)
