"""Every kind of bad input gives an error that names the file and says what is wrong."""
import io
import os
import os.path as osp
import re
import runpy

import numpy as np
import pytest
from mmseg.registry import DATASETS
from mmseg.utils import register_all_modules
from PIL import Image

import mmseg_iccld  # noqa: F401  (registers datasets and transforms)
from mmseg_iccld.datasets.conversion import (ConversionError, convert_cityscapes, convert_gta,
                                             convert_synthia)
from mmseg_iccld.datasets.transforms import LoadAnnotationsChecked, LoadImageFromFileChecked
from mmseg_iccld.datasets.validation import DataFileError, check_file_complete

register_all_modules(init_default_scope=True)  # pipelines resolve names in mmseg's scope
REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))


def png_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format='PNG')
    return buffer.getvalue()


def make_gta(root: str, names=('00001', '00002'), size=(4, 6), label_size=None,
             ids: np.ndarray = None) -> None:
    os.makedirs(osp.join(root, 'images'), exist_ok=True)
    os.makedirs(osp.join(root, 'labels'), exist_ok=True)
    h, w = size
    lh, lw = label_size or size
    for name in names:
        Image.fromarray(np.full((h, w, 3), 80, np.uint8)).save(
            osp.join(root, 'images', f'{name}.png'))
        label = ids if ids is not None else np.full((lh, lw), 7, np.uint8)
        Image.fromarray(label).save(osp.join(root, 'labels', f'{name}.png'))


def problems_of(convert, root: str) -> list:
    with pytest.raises(ConversionError) as info:
        convert(root)
    assert not osp.exists(osp.join(root, 'sample_class_stats.json'))
    return info.value.problems


# datasets


def test_missing_image_folder_names_folder_and_layout(tmp_path):
    root = str(tmp_path / 'gta')
    with pytest.raises(FileNotFoundError) as info:
        DATASETS.build(dict(type='GTA5Dataset', data_root=root))
    message = str(info.value)
    assert osp.join(root, 'images') in message
    assert '<data_root>/labels/<name>_labelTrainIds.png' in message


def test_missing_label_folder(tmp_path):
    root = str(tmp_path / 'synthia')
    os.makedirs(osp.join(root, 'RGB'))
    with pytest.raises(FileNotFoundError, match=re.escape(osp.join(root, 'GT/LABELS'))):
        DATASETS.build(dict(type='SynthiaDataset', data_root=root))


def test_unconverted_labels_suggest_the_converter(tmp_path):
    root = str(tmp_path / 'gta')
    make_gta(root)
    with pytest.raises(FileNotFoundError) as info:
        DATASETS.build(dict(type='GTA5Dataset', data_root=root))
    message = str(info.value)
    assert f'python tools/convert_datasets/gta.py {root}' in message
    assert osp.join(root, 'labels', '00001_labelTrainIds.png') in message


def test_unconverted_synthia_suggests_its_converter(tmp_path):
    root = str(tmp_path / 'synthia')
    os.makedirs(osp.join(root, 'RGB'))
    os.makedirs(osp.join(root, 'GT', 'LABELS'))
    Image.fromarray(np.zeros((2, 2, 3), np.uint8)).save(osp.join(root, 'RGB', '0000001.png'))
    Image.fromarray(np.zeros((2, 2), np.uint8)).save(osp.join(root, 'GT/LABELS/0000001.png'))
    with pytest.raises(FileNotFoundError,
                       match=re.escape(f'python tools/convert_datasets/synthia.py {root}')):
        DATASETS.build(dict(type='SynthiaDataset', data_root=root))


def test_dataset_image_without_any_label(tmp_path):
    root = str(tmp_path / 'gta')
    make_gta(root, names=('00001', ))
    convert_gta(root)
    Image.fromarray(np.zeros((4, 6, 3), np.uint8)).save(osp.join(root, 'images', '00009.png'))
    with pytest.raises(FileNotFoundError) as info:
        DATASETS.build(dict(type='GTA5Dataset', data_root=root))
    assert f"{osp.join(root, 'images', '00009.png')} has no label" in str(info.value)


def test_dataset_without_images(tmp_path):
    root = str(tmp_path / 'gta')
    os.makedirs(osp.join(root, 'images'))
    os.makedirs(osp.join(root, 'labels'))
    with pytest.raises(FileNotFoundError, match='no \\*.png images in'):
        DATASETS.build(dict(type='GTA5Dataset', data_root=root))


# converters


def test_image_without_label_and_label_without_image(tmp_path):
    root = str(tmp_path / 'gta')
    make_gta(root)
    os.remove(osp.join(root, 'labels', '00001.png'))
    os.remove(osp.join(root, 'images', '00002.png'))
    problems = problems_of(convert_gta, root)
    assert problems == [
        f"{osp.join(root, 'images', '00001.png')}: image has no label (expected "
        f"{osp.join(root, 'labels', '00001.png')})",
        f"{osp.join(root, 'labels', '00002.png')}: label has no image (expected "
        f"{osp.join(root, 'images', '00002.png')})"]


def test_truncated_png_image_and_label(tmp_path):
    root = str(tmp_path / 'gta')
    make_gta(root)
    image = osp.join(root, 'images', '00001.png')
    label = osp.join(root, 'labels', '00002.png')
    for path in (image, label):
        data = open(path, 'rb').read()
        open(path, 'wb').write(data[:len(data) - 20])
    problems = problems_of(convert_gta, root)
    assert f'{image}: truncated PNG (the file does not end with the IEND chunk)' in problems
    assert f'{label}: truncated PNG (the file does not end with the IEND chunk)' in problems
    with pytest.raises(DataFileError, match=re.escape(f'{image}: truncated PNG')):
        LoadImageFromFileChecked()(dict(img_path=image))


def test_corrupt_png_that_ends_correctly(tmp_path):
    root = str(tmp_path / 'gta')
    make_gta(root, names=('00001', ))
    label = osp.join(root, 'labels', '00001.png')
    data = bytearray(png_bytes(np.arange(24, dtype=np.uint8).reshape(4, 6)))
    start = data.index(b'IDAT') + 4
    data[start:start + 8] = b'\x00' * 8  # scrambled pixel data, IEND still in place
    open(label, 'wb').write(bytes(data))
    (problem, ) = problems_of(convert_gta, root)
    assert problem.startswith(f'{label}: cannot decode label')
    with pytest.raises(DataFileError, match=re.escape(f'{label}: cannot decode label')):
        LoadAnnotationsChecked()(dict(seg_map_path=label, reduce_zero_label=False,
                                      seg_fields=[]))
    # the same bytes as an image, through OpenCV (mmcv's default backend)
    with pytest.raises(DataFileError, match=re.escape(f'{label}: cannot decode image')):
        LoadImageFromFileChecked()(dict(img_path=label))


def test_truncated_and_padded_jpeg(tmp_path):
    path = str(tmp_path / 'photo.jpg')
    Image.fromarray(np.full((16, 16, 3), 120, np.uint8)).save(path, format='JPEG')
    data = open(path, 'rb').read()
    assert data.endswith(b'\xff\xd9')
    # zero padding after the end-of-image marker is fine
    open(path, 'wb').write(data + b'\x00' * 7)
    check_file_complete(path)
    assert LoadImageFromFileChecked()(dict(img_path=path))['img'].shape == (16, 16, 3)
    open(path, 'wb').write(data[:-30])
    with pytest.raises(DataFileError, match=re.escape(f'{path}: truncated JPEG')):
        check_file_complete(path)
    with pytest.raises(DataFileError, match=re.escape(f'{path}: truncated JPEG')):
        LoadImageFromFileChecked()(dict(img_path=path))


def test_empty_and_missing_image(tmp_path):
    path = str(tmp_path / 'empty.png')
    open(path, 'wb').close()
    with pytest.raises(DataFileError, match=re.escape(f'{path}: file is empty')):
        LoadImageFromFileChecked()(dict(img_path=path))
    missing = str(tmp_path / 'missing.png')
    with pytest.raises(DataFileError, match=re.escape(f'{missing}: image file not found')):
        LoadImageFromFileChecked()(dict(img_path=missing))


def test_label_size_mismatch(tmp_path):
    root = str(tmp_path / 'gta')
    make_gta(root, names=('00001', ), size=(4, 6), label_size=(4, 5))
    image = osp.join(root, 'images', '00001.png')
    label = osp.join(root, 'labels', '00001.png')
    (problem, ) = problems_of(convert_gta, root)
    assert problem == (f'{label}: label size 5x4 differs from the size 6x4 of its image '
                       f'{image} (width x height)')
    results = LoadImageFromFileChecked()(dict(img_path=image))
    results.update(seg_map_path=label, reduce_zero_label=False, seg_fields=[])
    with pytest.raises(DataFileError, match=re.escape(f'{label}: label size 5x4 differs')):
        LoadAnnotationsChecked()(results)


def test_unknown_gta_ids_and_stale_output_removed(tmp_path):
    root = str(tmp_path / 'gta')
    ids = np.array([[7, 34], [200, 8]], np.uint8)
    make_gta(root, names=('00001', ), size=(2, 2), ids=ids)
    label = osp.join(root, 'labels', '00001.png')
    stale = osp.join(root, 'labels', '00001_labelTrainIds.png')
    Image.fromarray(np.zeros((2, 2), np.uint8)).save(stale)
    (problem, ) = problems_of(convert_gta, root)
    assert problem == (f'{label}: unknown GTA5 label ids [34, 200] (valid ids are 0..33); '
                       f'--unknown-ids-to-ignore maps them to 255 (ignored)')
    assert not osp.exists(stale)


def test_unknown_synthia_ids(tmp_path):
    import cv2
    root = tmp_path / 'synthia'
    (root / 'RGB').mkdir(parents=True)
    (root / 'GT' / 'LABELS').mkdir(parents=True)
    Image.fromarray(np.zeros((2, 2, 3), np.uint8)).save(root / 'RGB' / '0000001.png')
    ids = np.array([[3, 23], [1000, 4]], np.uint16)
    label = str(root / 'GT' / 'LABELS' / '0000001.png')
    cv2.imwrite(label, np.stack([np.zeros_like(ids), np.zeros_like(ids), ids], axis=-1))
    (problem, ) = problems_of(convert_synthia, str(root))
    assert problem == (f'{label}: unknown Synthia label ids [23, 1000] (valid ids are 0..22); '
                       f'--unknown-ids-to-ignore maps them to 255 (ignored)')


def test_unknown_cityscapes_ids(tmp_path):
    root = tmp_path / 'cityscapes'
    for sub in ('leftImg8bit/train/x', 'gtFine/train/x'):
        (root / sub).mkdir(parents=True)
    Image.fromarray(np.zeros((2, 2, 3), np.uint8)).save(
        root / 'leftImg8bit/train/x/x_000000_000019_leftImg8bit.png')
    label = str(root / 'gtFine/train/x/x_000000_000019_gtFine_labelIds.png')
    Image.fromarray(np.array([[7, 40], [7, 7]], np.uint8)).save(label)
    (problem, ) = problems_of(lambda r: convert_cityscapes(r, splits=('train', )), str(root))
    assert problem == (f'{label}: unknown Cityscapes label ids [40] (valid ids are 0..33); '
                       f'--unknown-ids-to-ignore maps them to 255 (ignored)')


def test_missing_converter_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match=re.escape(str(tmp_path / 'RGB'))):
        convert_synthia(str(tmp_path))


def test_all_problems_are_listed_at_once(tmp_path):
    root = str(tmp_path / 'gta')
    make_gta(root, names=('00001', '00002', '00003'), size=(2, 2),
             ids=np.array([[7, 99], [7, 7]], np.uint8))
    problems = problems_of(convert_gta, root)
    assert [p.split(':')[0] for p in problems] == [
        osp.join(root, 'labels', f'0000{i}.png') for i in (1, 2, 3)]


def test_cli_exits_with_status_1_and_lists_problems(tmp_path, monkeypatch, capsys):
    root = str(tmp_path / 'gta')
    make_gta(root)
    os.remove(osp.join(root, 'labels', '00001.png'))
    cli = runpy.run_path(osp.join(REPO, 'tools/convert_datasets/gta.py'), run_name='cli')
    monkeypatch.setattr('sys.argv', ['gta.py', root, '--nproc', '1'])
    assert cli['main']() == 1
    err = capsys.readouterr().err
    assert f"{osp.join(root, 'images', '00001.png')}: image has no label" in err


# checked label loading


def load_label(path: str, **kwargs) -> dict:
    return LoadAnnotationsChecked(**kwargs)(
        dict(seg_map_path=path, reduce_zero_label=False, seg_fields=[]))


def test_label_values_outside_classes(tmp_path):
    path = str(tmp_path / 'raw_ids.png')
    Image.fromarray(np.array([[7, 26], [255, 33]], np.uint8)).save(path)
    with pytest.raises(DataFileError) as info:
        load_label(path)
    assert str(info.value).startswith(
        f'{path}: label values [26, 33] lie outside [0, 19) and are not the ignore index 255')
    # the same file is valid for a 34-class label set
    np.testing.assert_array_equal(load_label(path, num_classes=34)['gt_seg_map'],
                                  [[7, 26], [255, 33]])


def test_color_and_16bit_labels(tmp_path):
    color = str(tmp_path / 'color.png')
    Image.fromarray(np.zeros((2, 2, 3), np.uint8)).save(color)
    with pytest.raises(DataFileError, match=re.escape(f'{color}: a label must have one channel')):
        load_label(color)
    wide = str(tmp_path / 'wide.png')
    Image.fromarray(np.array([[0, 300], [1, 2]], np.uint16)).save(wide)
    with pytest.raises(DataFileError, match=re.escape(f'{wide}: label of type uint16')):
        load_label(wide)


def test_cityscapes_dataset_with_unconverted_labels(tmp_path):
    root = tmp_path / 'cityscapes'
    for sub in ('leftImg8bit/val/x', 'gtFine/val/x'):
        (root / sub).mkdir(parents=True)
    Image.fromarray(np.zeros((2, 2, 3), np.uint8)).save(
        root / 'leftImg8bit/val/x/x_000000_000019_leftImg8bit.png')
    Image.fromarray(np.full((2, 2), 7, np.uint8)).save(
        root / 'gtFine/val/x/x_000000_000019_gtFine_labelIds.png')
    dataset = DATASETS.build(dict(
        type='CityscapesDataset', data_root=str(root),
        data_prefix=dict(img_path='leftImg8bit/val', seg_map_path='gtFine/val'),
        pipeline=[dict(type='LoadImageFromFileChecked'), dict(type='LoadAnnotationsChecked')]))
    expected = str(root / 'gtFine/val/x/x_000000_000019_gtFine_labelTrainIds.png')
    with pytest.raises(DataFileError, match=re.escape(f'{expected}: label file not found')):
        dataset[0]
