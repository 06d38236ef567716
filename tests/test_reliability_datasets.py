"""Real-dataset faults at conversion: gaps and stray files (GTA5), unknown label ids, the
Synthia ids of classes Synthia has no pixels of, images that are not RGB."""
import json
import os
import os.path as osp
import re
import runpy

import cv2
import numpy as np
import pytest
from mmseg.registry import DATASETS
from mmseg.utils import register_all_modules
from PIL import Image

import mmseg_iccld  # noqa: F401  (registers datasets and transforms)
from mmseg_iccld.datasets import conversion_report, label_tables, validation
from mmseg_iccld.datasets.conversion import ConversionError, convert_gta, convert_synthia
from mmseg_iccld.datasets.label_tables import SYNTHIA_TABLE
from mmseg_iccld.datasets.transforms import LoadImageFromFileChecked

register_all_modules(init_default_scope=True)
REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
SKIP_ADVICE = ('fix them, or convert the other samples with --skip-invalid (which lists each '
               'skipped file and why in {root}/conversion_report.json)')


def write_pair(root: str, name: str, ids: np.ndarray, image_size=None) -> None:
    h, w = image_size or ids.shape
    Image.fromarray(np.full((h, w, 3), 80, np.uint8)).save(
        osp.join(root, 'images', f'{name}.png'))
    Image.fromarray(ids).save(osp.join(root, 'labels', f'{name}.png'))


def make_gta(root: str, names) -> None:
    os.makedirs(osp.join(root, 'images'), exist_ok=True)
    os.makedirs(osp.join(root, 'labels'), exist_ok=True)
    for name in names:
        write_pair(root, name, np.full((2, 3), 7, np.uint8))


def make_gta_with_gaps(root: str) -> None:
    """00001..00008 with GTA5's kinds of faults: a run of missing labels (as 02154-02158 of
    the public download), a missing image, stray files, and a label that is wrong twice."""
    make_gta(root, [f'{i:05d}' for i in range(1, 9)])
    for name in ('00003', '00004'):
        os.remove(osp.join(root, 'labels', f'{name}.png'))
    os.remove(osp.join(root, 'images', '00006.png'))
    open(osp.join(root, 'images', 'Thumbs.db'), 'wb').write(b'\x00' * 16)  # not a .png
    Image.fromarray(np.full((2, 3), 7, np.uint8)).save(osp.join(root, 'labels',
                                                                '00002 (1).png'))
    write_pair(root, '00007', np.array([[7, 34], [7, 7]], np.uint8), image_size=(2, 3))


def gaps_problems(root: str) -> list:
    img, lbl = osp.join(root, 'images'), osp.join(root, 'labels')
    return [
        f'{img}/00003.png: image has no label (expected {lbl}/00003.png)',
        f'{img}/00004.png: image has no label (expected {lbl}/00004.png)',
        f'{lbl}/00002 (1).png: label has no image (expected {img}/00002 (1).png)',
        f'{lbl}/00006.png: label has no image (expected {img}/00006.png)',
        f'{lbl}/00007.png: label size 2x2 differs from the size 3x2 of its image '
        f'{img}/00007.png (width x height)',
        f'{lbl}/00007.png: unknown GTA5 label ids [34] (valid ids are 0..33); '
        f'--unknown-ids-to-ignore maps them to 255 (ignored)',
    ]


def read_json(path) -> object:
    with open(path) as f:
        return json.load(f)


def test_gaps_and_stray_files_are_all_listed_at_once(tmp_path):
    root = str(tmp_path / 'gta')
    make_gta_with_gaps(root)
    with pytest.raises(ConversionError) as info:
        convert_gta(root)
    assert info.value.problems == gaps_problems(root)
    assert str(info.value).splitlines()[0] == (
        f'GTA5: 6 problem(s) found; {SKIP_ADVICE.format(root=root)}:')
    for name in ('sample_class_stats.json', 'conversion_report.json'):
        assert not osp.exists(osp.join(root, name))


def test_missing_folders_are_all_named(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        convert_gta(str(tmp_path))
    assert str(info.value).splitlines()[0] == (
        f"GTA5: folder(s) '{tmp_path}/images', '{tmp_path}/labels' do not exist. Expected "
        f"layout:")


def test_skip_invalid_converts_the_rest_and_reports_each_skipped_file(tmp_path, monkeypatch):
    root = str(tmp_path / 'gta')
    make_gta_with_gaps(root)
    result = convert_gta(root, skip_invalid=True)
    converted = ['00001', '00002', '00005', '00008']
    outs = [osp.join(root, 'labels', f'{n}_labelTrainIds.png') for n in converted]
    assert result.stats == [{'0': 6, 'file': out} for out in outs]
    assert not osp.exists(osp.join(root, 'labels', '00007_labelTrainIds.png'))
    problems = gaps_problems(root)
    report = read_json(osp.join(root, 'conversion_report.json'))
    assert report == {
        'dataset': 'GTA5',
        'options': {'skip_invalid': True, 'unknown_ids_to_ignore': False},
        'converted': 4,
        'skipped': [
            {'image': 'images/00003.png', 'label': None, 'reasons': [problems[0]]},
            {'image': 'images/00004.png', 'label': None, 'reasons': [problems[1]]},
            {'image': None, 'label': 'labels/00002 (1).png', 'reasons': [problems[2]]},
            {'image': None, 'label': 'labels/00006.png', 'reasons': [problems[3]]},
            {'image': 'images/00007.png', 'label': 'labels/00007.png',
             'reasons': problems[4:]}],
        'unknown_ids_to_ignore': [],
        'images_not_rgb': []}
    assert read_json(osp.join(root, 'sample_class_stats_dict.json')) == {
        out: {'0': 6} for out in outs}
    assert read_json(osp.join(root, 'samples_with_class.json')) == {
        '0': [[out, 6] for out in outs]}

    # The dataset holds exactly the converted samples, and says why.
    logged = []
    monkeypatch.setattr(conversion_report, 'print_log', lambda msg, **kw: logged.append(msg))
    dataset = DATASETS.build(dict(type='GTA5Dataset', data_root=root, pipeline=[]))
    assert [dataset.get_data_info(i)['img_path'] for i in range(len(dataset))] == [
        osp.join(root, 'images', f'{n}.png') for n in converted]
    assert logged == [f'GTA5Dataset: left out 3 sample(s) that the dataset converter skipped, '
                      f'listed with their reasons in {root}/conversion_report.json']


def test_clean_rerun_removes_the_report(tmp_path):
    root = str(tmp_path / 'gta')
    make_gta(root, ['00001', '00002'])
    os.remove(osp.join(root, 'labels', '00002.png'))
    convert_gta(root, skip_invalid=True)
    assert osp.isfile(osp.join(root, 'conversion_report.json'))
    os.remove(osp.join(root, 'images', '00002.png'))
    convert_gta(root)
    assert not osp.exists(osp.join(root, 'conversion_report.json'))
    assert len(DATASETS.build(dict(type='GTA5Dataset', data_root=root, pipeline=[]))) == 1


def test_skip_invalid_with_nothing_valid_fails(tmp_path):
    root = str(tmp_path / 'gta')
    make_gta(root, ['00001'])
    os.remove(osp.join(root, 'labels', '00001.png'))
    with pytest.raises(ConversionError, match='GTA5: 1 problem\\(s\\) found; no sample passed '
                                              'the checks:'):
        convert_gta(root, skip_invalid=True)


def run_cli(script: str, argv, monkeypatch, capsys):
    cli = runpy.run_path(osp.join(REPO, 'tools/convert_datasets', script), run_name='cli')
    monkeypatch.setattr('sys.argv', [script] + argv)
    status = cli['main']()
    out, err = capsys.readouterr()
    return status, out.strip().splitlines(), err.strip().splitlines()


def test_cli_skip_invalid(tmp_path, monkeypatch, capsys):
    root = str(tmp_path / 'gta')
    make_gta_with_gaps(root)
    status, _, err = run_cli('gta.py', [root, '--nproc', '1'], monkeypatch, capsys)
    assert status == 1
    assert err[0] == f'error: GTA5: 6 problem(s) found; {SKIP_ADVICE.format(root=root)}:'
    status, out, _ = run_cli('gta.py', [root, '--nproc', '1', '--skip-invalid'], monkeypatch,
                             capsys)
    assert status == 0
    assert out[-2:] == [
        f'converted 4 labels; class statistics written to {root}',
        f'skipped 5 sample(s) or file(s) that failed a check, each listed with its reasons in '
        f'{root}/conversion_report.json']


# unknown label ids


def test_unknown_ids_to_ignore_maps_to_255_and_counts_them(tmp_path, monkeypatch, capsys):
    root = str(tmp_path / 'gta')
    make_gta(root, ['00001', '00002'])
    label = osp.join(root, 'labels', '00001.png')
    Image.fromarray(np.array([[7, 34, 34], [200, 8, 26]], np.uint8)).save(label)
    with pytest.raises(ConversionError) as info:
        convert_gta(root)
    assert info.value.problems == [
        f'{label}: unknown GTA5 label ids [34, 200] (valid ids are 0..33); '
        f'--unknown-ids-to-ignore maps them to 255 (ignored)']

    status, out, _ = run_cli('gta.py', [root, '--nproc', '1', '--unknown-ids-to-ignore'],
                             monkeypatch, capsys)
    assert status == 0
    assert out[-2:] == [
        f'converted 2 labels; class statistics written to {root}',
        f'mapped 3 pixel(s) of unknown label ids in 1 label(s) to 255 (ignored), counted per '
        f'label in {root}/conversion_report.json']
    out1 = osp.join(root, 'labels', '00001_labelTrainIds.png')
    np.testing.assert_array_equal(np.asarray(Image.open(out1)),
                                  [[0, 255, 255], [255, 1, 13]])
    report = read_json(osp.join(root, 'conversion_report.json'))
    assert report['options'] == {'skip_invalid': False, 'unknown_ids_to_ignore': True}
    assert report['skipped'] == []
    assert report['unknown_ids_to_ignore'] == [
        {'label': 'labels/00001.png', 'pixels': {'34': 2, '200': 1}}]
    assert read_json(osp.join(root, 'sample_class_stats.json'))[0] == {
        '0': 1, '1': 1, '13': 1, 'file': out1}


# Synthia's ids of classes it has no pixels of


def test_synthia_terrain_truck_and_train_ids_are_ignored(tmp_path):
    root = tmp_path / 'synthia'
    (root / 'RGB').mkdir(parents=True)
    (root / 'GT' / 'LABELS').mkdir(parents=True)
    ids = np.array([[16, 18, 20, 3]], np.uint16)
    cv2.imwrite(str(root / 'GT/LABELS/0000001.png'),
                np.stack([np.zeros_like(ids), np.zeros_like(ids), ids], axis=-1))
    Image.fromarray(np.zeros((1, 4, 3), np.uint8)).save(root / 'RGB' / '0000001.png')
    out = str(root / 'GT/LABELS/0000001_labelTrainIds.png')
    # DAFormer maps 16, 18, 20 to 9 (terrain), 14 (truck), 16 (train); this table ignores them.
    assert convert_synthia(str(root)).stats == [{'0': 1, 'file': out}]
    np.testing.assert_array_equal(np.asarray(Image.open(out)), [[255, 255, 255, 0]])


def test_docs_state_the_synthia_table_for_every_id():
    text = open(osp.join(REPO, 'docs', 'datasets.md')).read()
    paragraph = text[text.index('Synthia (RAND-CITYSCAPES) maps'):]
    paragraph = paragraph[:paragraph.index('\n\n')]
    documented = {int(a): int(b) for a, b in re.findall(r'(\d+)->(\d+)', paragraph)}
    assert documented == {i: t for i, t in SYNTHIA_TABLE.id_to_train_id.items()
                          if t != 255 or i in (16, 18, 20)}
    assert 'DAFormer maps them to 9, 14 and 16' in paragraph
    assert 'DAFormer maps them to train ids 9, 14 and 16' in ' '.join(label_tables.__doc__.split())


# images that are not RGB


def test_loader_converts_rgba_and_gray_with_one_note(tmp_path, monkeypatch):
    logged = []
    monkeypatch.setattr(validation, '_NOTED', set())
    monkeypatch.setattr(validation, 'print_log', lambda msg, **kw: logged.append(msg))
    rgba = np.zeros((2, 3, 4), np.uint8)
    rgba[..., 0], rgba[..., 1], rgba[..., 2], rgba[..., 3] = 10, 20, 30, 0
    rgba_path, gray_path = str(tmp_path / 'rgba.png'), str(tmp_path / 'gray.png')
    Image.fromarray(rgba, mode='RGBA').save(rgba_path)
    Image.fromarray(np.full((2, 3), 50, np.uint8)).save(gray_path)
    img = LoadImageFromFileChecked()(dict(img_path=rgba_path))['img']
    assert img.shape == (2, 3, 3) and img[0, 0].tolist() == [30, 20, 10]  # BGR, alpha dropped
    assert logged == [f'{rgba_path}: RGBA image, loaded as RGB (alpha channel dropped); further '
                      f'images that are not RGB are loaded the same way without a note']
    img = LoadImageFromFileChecked()(dict(img_path=gray_path))['img']
    assert img.shape == (2, 3, 3) and img[0, 0].tolist() == [50, 50, 50]
    assert len(logged) == 1


def test_converter_notes_images_that_are_not_rgb(tmp_path, monkeypatch, capsys):
    root = str(tmp_path / 'gta')
    make_gta(root, ['00001', '00002'])
    image = osp.join(root, 'images', '00002.png')
    Image.fromarray(np.zeros((2, 3, 4), np.uint8), mode='RGBA').save(image)
    status, out, _ = run_cli('gta.py', [root, '--nproc', '1'], monkeypatch, capsys)
    assert status == 0
    assert out[-1] == (f'note: 1 image(s) are not RGB, e.g. {image} (RGBA); training loads '
                       f'them as RGB (alpha channel dropped)')
    result = convert_gta(root, skip_invalid=True)
    assert result.not_rgb == {image: 'RGBA'}
    assert read_json(osp.join(root, 'conversion_report.json'))['images_not_rgb'] == [
        {'image': 'images/00002.png', 'mode': 'RGBA'}]
