"""Label id -> train id tables, against cityscapesscripts and the published Synthia mapping."""
import numpy as np
import pytest
from cityscapesscripts.helpers.labels import id2label, labels

from mmseg_iccld.datasets.label_tables import (CITYSCAPES_TABLE, GTA5_TABLE, SYNTHIA_TABLE,
                                               LabelTable)

# The GTA5 mapping as DAFormer's converter writes it (typed from its published table).
GTA5_TRAINED = {7: 0, 8: 1, 11: 2, 12: 3, 13: 4, 17: 5, 19: 6, 20: 7, 21: 8, 22: 9, 23: 10,
                24: 11, 25: 12, 26: 13, 27: 14, 28: 15, 31: 16, 32: 17, 33: 18}
SYNTHIA_TRAINED = {3: 0, 4: 1, 2: 2, 21: 3, 5: 4, 7: 5, 15: 6, 9: 7, 6: 8, 1: 10, 10: 11,
                   17: 12, 8: 13, 19: 15, 12: 17, 11: 18}


@pytest.mark.parametrize('table', [CITYSCAPES_TABLE, GTA5_TABLE])
def test_cityscapes_and_gta_tables_match_cityscapesscripts_for_every_id(table):
    ids = [label.id for label in labels if label.id >= 0]
    assert sorted(ids) == list(range(34)) and table.num_ids == 34
    for label_id in ids:
        train_id = id2label[label_id].trainId
        expected = train_id if 0 <= train_id < 19 else 255
        assert table.id_to_train_id[label_id] == expected, id2label[label_id].name
        assert table.lut[label_id] == expected


def test_gta_table_matches_the_published_mapping():
    expected = {i: GTA5_TRAINED.get(i, 255) for i in range(34)}
    assert GTA5_TABLE.id_to_train_id == expected
    # every train id 0..18 comes from exactly one label id
    assert sorted(GTA5_TRAINED.values()) == list(range(19))


def test_synthia_table_every_id():
    assert SYNTHIA_TABLE.num_ids == 23
    for label_id in range(23):
        assert SYNTHIA_TABLE.id_to_train_id[label_id] == SYNTHIA_TRAINED.get(label_id, 255)
    # terrain (9), truck (14) and train (16) never occur in Synthia
    assert set(SYNTHIA_TABLE.id_to_train_id.values()) == set(range(19)) - {9, 14, 16} | {255}


def test_to_train_ids_and_unknown_ids():
    ids = np.array([[7, 8, 0], [33, 34, 200]], np.uint8)
    assert GTA5_TABLE.unknown_ids(ids) == [34, 200]
    known = np.array([[7, 8, 0], [33, 26, 24]], np.uint8)
    assert GTA5_TABLE.unknown_ids(known) == []
    np.testing.assert_array_equal(GTA5_TABLE.to_train_ids(known),
                                  [[0, 1, 255], [18, 13, 11]])
    synthia = np.array([[3, 4, 2], [22, 23, 1000]], np.uint16)
    assert SYNTHIA_TABLE.unknown_ids(synthia) == [23, 1000]
    np.testing.assert_array_equal(SYNTHIA_TABLE.to_train_ids(synthia[:1]), [[0, 1, 2]])


def test_incomplete_table_is_rejected():
    with pytest.raises(ValueError, match=r'ids \[2\] have no train id'):
        LabelTable('broken', {0: 255, 1: 0}, num_ids=3)
    with pytest.raises(ValueError, match='invalid train ids'):
        LabelTable('broken', {0: 19}, num_ids=1)
