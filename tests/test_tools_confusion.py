"""tools/analysis_tools/confusion.py: the confusion of saved predictions, checked by hand."""
import json
import os

import numpy as np
import pytest
from PIL import Image

from tools.analysis_tools import confusion


def _write(path, array):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(np.asarray(array, np.uint8)).save(path)


@pytest.fixture
def maps(tmp_path):
    gt_dir, pred_dir = tmp_path / 'gtFine' / 'val', tmp_path / 'pred'
    # road road building / person person ignore
    _write(str(gt_dir / 'city' / 'city_0_0_gtFine_labelTrainIds.png'), [[0, 0, 2], [11, 11, 255]])
    _write(str(pred_dir / 'city_0_0_leftImg8bit.png'), [[0, 2, 2], [2, 11, 0]])
    return str(gt_dir), str(pred_dir), tmp_path


def test_confusion_rows_recall_and_where_pixels_go(maps):
    gt_dir, pred_dir, tmp_path = maps
    matrix = confusion.confusion_matrix(pred_dir, confusion.ground_truth_index(gt_dir))
    expected = np.zeros((19, 19), np.int64)
    expected[0, 0] = expected[0, 2] = expected[2, 2] = expected[11, 2] = expected[11, 11] = 1
    assert (matrix == expected).all()  # the ignored pixel (255) counts nowhere

    rows = {r['cls']: r for r in confusion.summarise(matrix, confusion.class_names(), top=3)}
    assert list(rows) == ['road', 'building', 'person']
    assert rows['road']['recall'] == 0.5 and rows['road']['pixels'] == 2
    assert rows['building']['predicted_pixels'] == 3 and rows['building']['recall'] == 1.0
    assert rows['person']['goes_to'] == [('building', 0.5), ('person', 0.5)]

    confusion.main([pred_dir, '--gt-dir', gt_dir, '--out', str(tmp_path / 'report')])
    report = json.loads((tmp_path / 'report.json').read_text())
    assert report['runs'][pred_dir]['images'] == 1
    assert '| person | 2 | 1 | 50.0 | building 50.0, person 50.0 |' in (
        tmp_path / 'report.md').read_text()


def test_confusion_refuses_unmatched_or_malformed_predictions(maps):
    gt_dir, pred_dir, tmp_path = maps
    index = confusion.ground_truth_index(gt_dir)
    _write(os.path.join(pred_dir, 'city_9_0_leftImg8bit.png'), [[0]])
    with pytest.raises(FileNotFoundError, match='city_9_0_leftImg8bit.png: no city_9_0'):
        confusion.confusion_matrix(pred_dir, index)
    os.remove(os.path.join(pred_dir, 'city_9_0_leftImg8bit.png'))

    _write(os.path.join(pred_dir, 'city_0_0_leftImg8bit.png'), [[0, 0], [0, 0]])
    with pytest.raises(ValueError, match=r'is \(2, 2\), its ground truth .* is \(2, 3\)'):
        confusion.confusion_matrix(pred_dir, index)
    _write(os.path.join(pred_dir, 'city_0_0_leftImg8bit.png'), [[0, 0, 19], [0, 0, 0]])
    with pytest.raises(ValueError, match=r'values outside \[0, 19\): not train ids'):
        confusion.confusion_matrix(pred_dir, index)
    _write(os.path.join(pred_dir, 'city_0_0_leftImg8bit.png'), [[0, 0, 2], [11, 11, 0]])
    _write(os.path.join(gt_dir, 'city', 'city_0_0_gtFine_labelTrainIds.png'),
           [[0, 0, 2], [11, 33, 255]])
    with pytest.raises(ValueError, match=r'labelTrainIds.png holds \[33\]: neither train ids'):
        confusion.confusion_matrix(pred_dir, index)
    with pytest.raises(FileNotFoundError, match='no \\*_leftImg8bit.png in'):
        confusion.confusion_matrix(str(tmp_path / 'gtFine'), index)
    with pytest.raises(NotADirectoryError, match='does not exist'):
        confusion.ground_truth_index(str(tmp_path / 'nowhere'))
