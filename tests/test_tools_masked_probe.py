"""tools/analysis_tools/masked_probe.py: clean, visible and blanked pixels, checked by hand
with a model that is right wherever it sees the image and says 'building' where it does not."""
import numpy as np
import pytest
import torch
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample

from tools.analysis_tools import masked_probe

ROAD, BUILDING, PERSON = 0, 2, 11
# ground truth at twice the input's resolution (the probe resizes the mask to it)
GT = np.array([[ROAD] * 8] * 4 + [[PERSON] * 4 + [255] * 4] * 4, np.int64)


class SeeingModel(torch.nn.Module):
    """Predicts the ground truth where the input is not blanked (0), building where it is."""

    @staticmethod
    def data_preprocessor(batch, training):
        assert not training
        return dict(inputs=torch.stack(batch['inputs']), data_samples=batch['data_samples'])

    def forward(self, inputs, samples, mode):
        assert mode == 'predict'
        for image, sample in zip(inputs, samples):
            seen = torch.nn.functional.interpolate((image[:1] != 0).float()[None], size=GT.shape,
                                                   mode='nearest')[0, 0] > 0
            gt = sample.gt_sem_seg.data[0]
            sample.pred_sem_seg = PixelData(data=torch.where(seen, gt, BUILDING)[None])
        return samples


def _dataset(n):
    sample = SegDataSample(gt_sem_seg=PixelData(data=torch.from_numpy(GT)[None]))
    return [dict(inputs=torch.ones(3, 4, 4), data_samples=sample) for _ in range(n)]


def _collate(items):
    return dict(inputs=[i['inputs'] for i in items],
                data_samples=[i['data_samples'] for i in items])


def test_nothing_blanked_and_everything_blanked():
    # ratio 0: the masked image is the image; 32 road + 16 person pixels per image, 3 images
    m = masked_probe.probe(SeeingModel(), _dataset(3), _collate, 0.0, 2, seed=0)
    assert m['clean'][ROAD, ROAD] == 96 and m['clean'][PERSON, PERSON] == 48
    assert m['clean'].sum() == 144 and (m['visible'] == m['clean']).all()
    assert m['blanked'].sum() == 0

    # ratio 1: every pixel blanked, all predicted building
    m = masked_probe.probe(SeeingModel(), _dataset(3), _collate, 1.0, 2, seed=0)
    assert (m['clean'] == masked_probe.probe(SeeingModel(), _dataset(3), _collate, 0.0, 2,
                                             seed=0)['clean']).all()
    assert m['visible'].sum() == 0
    assert m['blanked'][ROAD, BUILDING] == 96 and m['blanked'][PERSON, BUILDING] == 48
    assert m['blanked'].sum() == 144

    report = masked_probe.summary(m, masked_probe.class_names())
    assert report['clean']['miou'] == 1.0 and report['blanked']['miou'] == 0.0
    assert report['clean']['iou'] == {'road': 1.0, 'person': 1.0}
    assert report['blanked']['pixels'] == 144


def test_half_blanked_splits_the_pixels_and_repeats_its_masks():
    first = masked_probe.probe(SeeingModel(), _dataset(8), _collate, 0.5, 2, seed=3)
    again = masked_probe.probe(SeeingModel(), _dataset(8), _collate, 0.5, 2, seed=3)
    other = masked_probe.probe(SeeingModel(), _dataset(8), _collate, 0.5, 2, seed=4)
    for name in masked_probe.CONDITIONS:  # the same seed draws the same masks
        assert (first[name] == again[name]).all()
    assert any((first[n] != other[n]).any() for n in ('visible', 'blanked'))
    # every ground-truth pixel is visible or blanked
    assert (first['visible'].sum(1) + first['blanked'].sum(1) == first['clean'].sum(1)).all()
    visible, blanked = first['visible'], first['blanked']
    assert (visible == np.diag(np.diag(visible))).all()  # right wherever it sees
    assert blanked.sum() == blanked[:, BUILDING].sum() > 0
    # 2x2-pixel input patches are 4x4 label pixels: whole patches go one way or the other
    assert visible.sum() % 16 == 0 and 0 < visible.sum() < 8 * 48


def test_markdown_rows_and_refusals(tmp_path, capsys):
    m = masked_probe.probe(SeeingModel(), _dataset(1), _collate, 1.0, 2, seed=0)
    result = masked_probe.summary(m, masked_probe.class_names())
    report = dict(command='c', mask_ratio=1.0, block_size=2, seed=0,
                  class_names=masked_probe.class_names(), runs={'ck.pth': result})
    md = masked_probe.to_markdown(report)
    assert '| checkpoint | pixels | mIoU | road | person |' in md
    assert '| ck.pth (clean) | 48 | 100.00 | 100.0 | 100.0 |' in md
    assert '| ck.pth (blanked) | 48 | 0.00 | 0.0 | 0.0 |' in md
    with pytest.raises(SystemExit):
        masked_probe.parse_args(['only_a_config.py', '--out', str(tmp_path / 'r')])
    missing = str(tmp_path / 'missing.pth')
    with pytest.raises(SystemExit):
        masked_probe.main(['configs/synthetic/mic_tiny.py', missing, '--out', str(tmp_path / 'r')])
    assert f'checkpoint {missing} does not exist' in capsys.readouterr().err
