"""Converters: train-id labels and the three class-statistics files on hand-made labels."""
import json
import os
import os.path as osp
import runpy

import cv2
import numpy as np
import pytest
from PIL import Image

from mmseg_iccld.datasets.conversion import (convert_cityscapes, convert_gta, convert_synthia,
                                             pair_files)

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))

# A 4x6 GTA5 label (Cityscapes label ids) and its train ids, worked out by hand:
# 7 road -> 0, 8 sidewalk -> 1, 0 unlabeled -> 255, 26 car -> 13, 11 building -> 2,
# 24 person -> 11, 17 pole -> 5, 23 sky -> 10, 33 bicycle -> 18, 9 parking -> 255.
GTA_IDS = np.array([[7, 7, 8, 8, 0, 26],
                    [7, 7, 8, 8, 26, 26],
                    [11, 11, 24, 17, 23, 23],
                    [33, 9, 24, 17, 23, 23]], np.uint8)
GTA_TRAIN_IDS = np.array([[0, 0, 1, 1, 255, 13],
                          [0, 0, 1, 1, 13, 13],
                          [2, 2, 11, 5, 10, 10],
                          [18, 255, 11, 5, 10, 10]], np.uint8)
GTA_STATS = {'0': 4, '1': 4, '2': 2, '5': 2, '10': 4, '11': 2, '13': 3, '18': 1}
# A second label: road everywhere but one sky pixel.
GTA_IDS_2 = np.full((4, 6), 7, np.uint8)
GTA_IDS_2[0, 0] = 23
GTA_STATS_2 = {'0': 23, '10': 1}


def write_palette_png(path: str, ids: np.ndarray) -> None:
    img = Image.fromarray(ids)
    img.putpalette([v for i in range(256) for v in (i, 255 - i, 0)])
    assert img.mode == 'P'
    img.save(path)


def write_rgb(path: str, height: int, width: int) -> None:
    Image.fromarray(np.full((height, width, 3), 90, np.uint8)).save(path)


def make_gta(root: str) -> None:
    os.makedirs(osp.join(root, 'images'))
    os.makedirs(osp.join(root, 'labels'))
    for name, ids in (('00001', GTA_IDS), ('00002', GTA_IDS_2)):
        write_rgb(osp.join(root, 'images', f'{name}.png'), 4, 6)
        write_palette_png(osp.join(root, 'labels', f'{name}.png'), ids)


def test_gta_labels_and_class_statistics(tmp_path):
    root = str(tmp_path / 'gta')
    make_gta(root)
    # The palette image's pixels are the ids themselves, not its colors.
    np.testing.assert_array_equal(np.asarray(Image.open(osp.join(root, 'labels', '00001.png'))),
                                  GTA_IDS)
    stats = convert_gta(root).stats

    out1 = osp.join(root, 'labels', '00001_labelTrainIds.png')
    out2 = osp.join(root, 'labels', '00002_labelTrainIds.png')
    written = Image.open(out1)
    assert written.mode == 'L'
    np.testing.assert_array_equal(np.asarray(written), GTA_TRAIN_IDS)

    expected_list = [dict(GTA_STATS, file=out1), dict(GTA_STATS_2, file=out2)]
    assert stats == expected_list
    with open(osp.join(root, 'sample_class_stats.json')) as f:
        assert json.load(f) == expected_list
    with open(osp.join(root, 'sample_class_stats_dict.json')) as f:
        assert json.load(f) == {out1: GTA_STATS, out2: GTA_STATS_2}
    with open(osp.join(root, 'samples_with_class.json')) as f:
        with_class = json.load(f)
    assert with_class == {
        '0': [[out1, 4], [out2, 23]], '1': [[out1, 4]], '2': [[out1, 2]], '5': [[out1, 2]],
        '10': [[out1, 4], [out2, 1]], '11': [[out1, 2]], '13': [[out1, 3]], '18': [[out1, 1]]}
    assert '255' not in with_class


def test_gta_rerun_ignores_converted_labels(tmp_path):
    root = str(tmp_path / 'gta')
    make_gta(root)
    first = convert_gta(root).stats
    second = convert_gta(root).stats
    assert second == first
    assert sorted(os.listdir(osp.join(root, 'labels'))) == [
        '00001.png', '00001_labelTrainIds.png', '00002.png', '00002_labelTrainIds.png']


def test_gta_parallel_equals_serial(tmp_path):
    root = str(tmp_path / 'gta')
    make_gta(root)
    serial = convert_gta(root, nproc=1).stats
    with open(osp.join(root, 'samples_with_class.json')) as f:
        serial_json = json.load(f)
    parallel = convert_gta(root, nproc=2).stats
    with open(osp.join(root, 'samples_with_class.json')) as f:
        assert json.load(f) == serial_json
    assert parallel == serial


def test_synthia_16bit_labels(tmp_path):
    root = tmp_path / 'synthia'
    (root / 'RGB').mkdir(parents=True)
    (root / 'GT' / 'LABELS').mkdir(parents=True)
    ids = np.array([[3, 4, 2, 21], [1, 10, 8, 0], [22, 16, 18, 20]], np.uint16)
    # First (R) channel: class id; the others hold instance ids that must not be read.
    rgb = np.stack([ids, np.full_like(ids, 40000), np.arange(12, dtype=np.uint16).reshape(3, 4)],
                   axis=-1)
    label_path = str(root / 'GT' / 'LABELS' / '0000001.png')
    cv2.imwrite(label_path, rgb[:, :, ::-1])  # OpenCV writes BGR
    check = cv2.imread(label_path, cv2.IMREAD_UNCHANGED)
    assert check.dtype == np.uint16 and check.shape == (3, 4, 3)
    write_rgb(str(root / 'RGB' / '0000001.png'), 3, 4)

    stats = convert_synthia(str(root)).stats
    out = str(root / 'GT' / 'LABELS' / '0000001_labelTrainIds.png')
    # 3 road, 4 sidewalk, 2 building, 21 wall, 1 sky, 10 pedestrian, 8 car; 0 void,
    # 22 lanemarking, 16 terrain, 18 truck, 20 train are ignored.
    np.testing.assert_array_equal(
        np.asarray(Image.open(out)),
        [[0, 1, 2, 3], [10, 11, 13, 255], [255, 255, 255, 255]])
    assert stats == [{'0': 1, '1': 1, '2': 1, '3': 1, '10': 1, '11': 1, '13': 1, 'file': out}]
    assert osp.isfile(root / 'samples_with_class.json')


def make_cityscapes(root: str) -> dict:
    names = {'train': ['aachen_000000_000019', 'bochum_000001_000019'],
             'val': ['frankfurt_000000_000294']}
    for split, stems in names.items():
        for stem in stems:
            city = stem.split('_')[0]
            for sub in ('leftImg8bit', 'gtFine'):
                os.makedirs(osp.join(root, sub, split, city), exist_ok=True)
            write_rgb(osp.join(root, 'leftImg8bit', split, city, f'{stem}_leftImg8bit.png'), 4,
                      6)
            ids = GTA_IDS if stem.startswith('aachen') else GTA_IDS_2
            Image.fromarray(ids).save(
                osp.join(root, 'gtFine', split, city, f'{stem}_gtFine_labelIds.png'))
    return names


def test_cityscapes_train_and_val(tmp_path):
    root = str(tmp_path / 'cityscapes')
    make_cityscapes(root)
    stats = convert_cityscapes(root).splits
    train_a = osp.join(root, 'gtFine', 'train', 'aachen',
                       'aachen_000000_000019_gtFine_labelTrainIds.png')
    train_b = osp.join(root, 'gtFine', 'train', 'bochum',
                       'bochum_000001_000019_gtFine_labelTrainIds.png')
    val = osp.join(root, 'gtFine', 'val', 'frankfurt',
                   'frankfurt_000000_000294_gtFine_labelTrainIds.png')
    np.testing.assert_array_equal(np.asarray(Image.open(train_a)), GTA_TRAIN_IDS)
    np.testing.assert_array_equal(np.asarray(Image.open(val)), np.where(GTA_IDS_2 == 7, 0, 10))
    assert stats['train'] == [dict(GTA_STATS, file=train_a), dict(GTA_STATS_2, file=train_b)]
    assert stats['val'] == [dict(GTA_STATS_2, file=val)]
    # Only the train split's statistics are written.
    with open(osp.join(root, 'sample_class_stats_dict.json')) as f:
        assert json.load(f) == {train_a: GTA_STATS, train_b: GTA_STATS_2}


def test_pair_files_keys_by_relative_path(tmp_path):
    root = tmp_path
    for sub in ('img/a', 'img/b', 'lbl/a', 'lbl/b'):
        (root / sub).mkdir(parents=True)
    # a converted label from an earlier run must not count as a raw label
    for sub in ('img/a/x_i.png', 'img/b/x_i.png', 'lbl/a/x_l.png', 'lbl/a/x_labelTrainIds.png'):
        (root / sub).write_bytes(b'')
    samples, unpaired = pair_files(str(root / 'img'), str(root / 'lbl'), '_i.png', '_l.png')
    assert [(s.image, s.label, s.out) for s in samples] == [
        (str(root / 'img/a/x_i.png'), str(root / 'lbl/a/x_l.png'),
         str(root / 'lbl/a/x_labelTrainIds.png'))]
    assert [(r.image, r.label, r.reasons) for r in unpaired] == [
        (str(root / 'img/b/x_i.png'), None,
         [f'{root / "img/b/x_i.png"}: image has no label (expected {root / "lbl/b/x_l.png"})'])]


def test_gta_cli(tmp_path, monkeypatch, capsys):
    root = str(tmp_path / 'gta')
    make_gta(root)
    cli = runpy.run_path(osp.join(REPO, 'tools/convert_datasets/gta.py'), run_name='cli')
    monkeypatch.setattr('sys.argv', ['gta.py', root, '--nproc', '1'])
    assert cli['main']() == 0
    assert 'converted 2 labels' in capsys.readouterr().out
    assert osp.isfile(osp.join(root, 'sample_class_stats.json'))


@pytest.mark.parametrize('script', ['gta.py', 'synthia.py', 'cityscapes.py'])
def test_cli_docstrings_show_usage(script):
    cli = runpy.run_path(osp.join(REPO, 'tools/convert_datasets', script), run_name='cli')
    assert f'python tools/convert_datasets/{script}' in cli['__doc__']
