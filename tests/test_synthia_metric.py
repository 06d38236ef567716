"""SynthiaIoUMetric against hand-computed confusion matrices."""
import pytest
import torch

import mmseg_iccld  # noqa: F401
import mmseg_iccld.evaluation.synthia_metric as synthia_metric
from mmseg.datasets import CityscapesDataset
from mmseg.evaluation.metrics import IoUMetric
from mmseg.registry import METRICS

CLASSES = CityscapesDataset.METAINFO['classes']
ROAD, SIDEWALK, WALL, POLE, VEG, TERRAIN, CAR, TRUCK = 0, 1, 3, 5, 8, 9, 13, 14

# (label, prediction, pixels) for two images. Per class, intersection I, label area L,
# prediction area P, union U = L + P - I:
#   road      I 3  L 4  P 3+2=5  U 6  -> IoU 1/2    Acc 3/4
#   sidewalk  I 2  L 2  P 2+1=3  U 3  -> IoU 2/3    Acc 1
#   wall      I 0  L 2  P 0      U 2  -> IoU 0      Acc 0
#   pole      I 1  L 1  P 1      U 1  -> IoU 1      Acc 1
#   vegetation I 1 L 2  P 1+2=3  U 4  -> IoU 1/4    Acc 1/2  (terrain predicted as vegetation)
#   car       I 3  L 3  P 3+1=4  U 4  -> IoU 3/4    Acc 1    (a truck predicted as car)
#   terrain, truck: in the union of others but not among the 16 classes.
#   The other classes appear nowhere (IoU NaN, left out of the means).
IMAGE_1 = [(ROAD, ROAD, 3), (ROAD, SIDEWALK, 1), (SIDEWALK, SIDEWALK, 2),
           (TERRAIN, VEG, 2), (VEG, VEG, 1), (VEG, TERRAIN, 1), (WALL, ROAD, 2),
           (255, CAR, 2)]
IMAGE_2 = [(CAR, CAR, 3), (TRUCK, CAR, 1), (POLE, POLE, 1)]

# mIoU16 = (1/2 + 2/3 + 0 + 1 + 1/4 + 3/4) / 6 = 19/36
# mIoU13 = (1/2 + 2/3 + 1/4 + 3/4) / 4 = 13/24 (wall and pole left out)
# aAcc   = (3 + 2 + 0 + 1 + 1 + 3) / (4 + 2 + 2 + 1 + 2 + 3) = 10/14 (terrain, truck out)
# mAcc   = (3/4 + 1 + 0 + 1 + 1/2 + 1) / 6 = 17/24
EXPECTED = dict(mIoU16=19 / 36, mIoU13=13 / 24, aAcc=10 / 14, mAcc=17 / 24)


def data_sample(pixels):
    label = torch.tensor([p[0] for p in pixels for _ in range(p[2])])
    pred = torch.tensor([p[1] for p in pixels for _ in range(p[2])])
    # One row per image; IoUMetric squeezes the (1, H, W) maps.
    return dict(gt_sem_seg=dict(data=label.view(1, 1, -1)),
                pred_sem_seg=dict(data=pred.view(1, 1, -1)))


def evaluate(metric, images=(IMAGE_1, IMAGE_2)):
    metric.dataset_meta = dict(classes=CLASSES)
    for pixels in images:
        metric.process({}, [data_sample(pixels)])
    return metric.evaluate(len(images))


def test_metrics_match_hand_computed_confusion(monkeypatch):
    logged = []
    monkeypatch.setattr(synthia_metric, 'print_log', lambda msg, *a, **k: logged.append(msg))
    results = evaluate(METRICS.build(dict(type='SynthiaIoUMetric')))
    assert set(results) == {'aAcc', 'mIoU', 'mIoU16', 'mIoU13', 'mAcc'}
    for key, value in EXPECTED.items():
        assert results[key] == pytest.approx(round(value * 100, 2), abs=1e-9), key
    assert results['mIoU'] == results['mIoU16'] == 52.78
    assert results['mIoU13'] == 54.17

    table = logged[-1]
    rows = [line for line in table.splitlines() if line.startswith('|')][1:]
    assert len(rows) == 16
    names = [row.split('|')[1].strip() for row in rows]
    assert 'terrain' not in names and 'truck' not in names and 'train' not in names
    road = [cell.strip() for cell in rows[0].split('|')[1:-1]]
    assert road == ['road', '50.0', '75.0']


def test_not_a_rescaled_19_class_miou():
    reference = evaluate(IoUMetric())
    # 19-class mIoU over the 8 present classes, terrain and truck scoring 0: (19/6) / 8.
    assert reference['mIoU'] == pytest.approx(round(19 / 6 / 8 * 100, 2))
    synthia = evaluate(METRICS.build(dict(type='SynthiaIoUMetric')))
    assert synthia['mIoU16'] != pytest.approx(reference['mIoU'] * 19 / 16, abs=0.01)


def test_union_counts_predictions_on_missing_classes():
    # Every terrain pixel predicted as vegetation: vegetation's IoU drops from 1 to 1/3.
    images = [[(VEG, VEG, 1), (TERRAIN, VEG, 2)]]
    results = evaluate(METRICS.build(dict(type='SynthiaIoUMetric')), images)
    assert results['mIoU16'] == pytest.approx(33.33)
    assert results['aAcc'] == 100.0


def test_nan_to_num_counts_absent_classes():
    results = evaluate(METRICS.build(dict(type='SynthiaIoUMetric', nan_to_num=0)))
    # The same IoU sum over all 16 and 13 classes.
    assert results['mIoU16'] == pytest.approx(round(19 / 6 / 16 * 100, 2))
    assert results['mIoU13'] == pytest.approx(round(13 / 6 / 13 * 100, 2))


def test_class_subsets_and_errors():
    idx16 = synthia_metric.SynthiaIoUMetric.class_indices(
        list(CLASSES), synthia_metric.NOT_IN_SYNTHIA)
    assert idx16 == [0, 1, 2, 3, 4, 5, 6, 7, 8, 10, 11, 12, 13, 15, 17, 18]
    idx13 = synthia_metric.SynthiaIoUMetric.class_indices(
        list(CLASSES), synthia_metric.NOT_IN_SYNTHIA + synthia_metric.NOT_IN_13)
    assert idx13 == [0, 1, 2, 6, 7, 8, 10, 11, 12, 13, 15, 17, 18]

    metric = METRICS.build(dict(type='SynthiaIoUMetric'))
    metric.dataset_meta = dict(classes=('a', 'b'))
    metric.process({}, [dict(gt_sem_seg=dict(data=torch.zeros(1, 1, 2, dtype=torch.long)),
                             pred_sem_seg=dict(data=torch.zeros(1, 1, 2, dtype=torch.long)))])
    with pytest.raises(ValueError, match="19 Cityscapes classes.*'terrain'"):
        metric.evaluate(1)
    with pytest.raises(ValueError, match='mIoU only'):
        METRICS.build(dict(type='SynthiaIoUMetric', iou_metrics=['mDice']))
