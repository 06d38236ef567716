"""ACDC and Dark Zurich read in place: fixtures in the layouts of the official downloads
(real suffixes, names and nesting) list as expected, and broken folders give one line per
file and problem when the dataset is built."""
import os
import os.path as osp

import numpy as np
import pytest
from PIL import Image

from mmseg.registry import DATASETS
from mmseg.utils import register_all_modules

import mmseg_iccld  # noqa: F401
from mmseg_iccld.datasets import in_place

register_all_modules(init_default_scope=True)


def write_pair(image: str, label: str = None, size=(8, 4), label_size=None) -> None:
    """A black RGB image and (optionally) a train-id label of class 7 (traffic sign)."""
    os.makedirs(osp.dirname(image), exist_ok=True)
    Image.fromarray(np.zeros((size[1], size[0], 3), np.uint8)).save(image)
    if label is not None:
        os.makedirs(osp.dirname(label), exist_ok=True)
        w, h = label_size or size
        Image.fromarray(np.full((h, w), 7, np.uint8)).save(label)


def label_of(image: str) -> str:
    """The label path the official layouts give an image path."""
    return image.replace('/rgb_anon/', '/gt/', 1).replace('_rgb_anon.png',
                                                          '_gt_labelTrainIds.png')


def acdc(root, condition='night', split='val', sequence='GOPR0351', frame='frame_000159',
         **kwargs) -> str:
    """``rgb_anon/<condition>/<split>/<sequence>/<sequence>_<frame>_rgb_anon.png`` and, but
    for the test split, its ``gt/.../*_gt_labelTrainIds.png``."""
    image = osp.join(str(root), 'rgb_anon', condition, split, sequence,
                     f'{sequence}_{frame}_rgb_anon.png')
    write_pair(image, label_of(image) if split != 'test' else None, **kwargs)
    return image


def dark_zurich(root, split='val', sequence='GOPR0356', frame='frame_000321',
                condition='night', label=True) -> str:
    """``rgb_anon/<split>/<condition>/<sequence>/<sequence>_<frame>_rgb_anon.png`` and, when
    ``label``, its ``gt/<split>/<condition>/...`` label."""
    image = osp.join(str(root), 'rgb_anon', split, condition, sequence,
                     f'{sequence}_{frame}_rgb_anon.png')
    write_pair(image, label_of(image) if label else None)
    return image


def build(type_: str, root, **kwargs):
    return DATASETS.build(dict(type=type_, data_root=str(root), pipeline=[], **kwargs))


def build_error(type_: str, root, **kwargs) -> list:
    """The lines of the error building the dataset raises."""
    with pytest.raises(FileNotFoundError) as error:
        build(type_, root, **kwargs)
    return str(error.value).splitlines()


def test_acdc_lists_every_condition_or_the_chosen_ones(tmp_path):
    for condition in ('fog', 'night', 'rain', 'snow'):
        for frame in ('frame_000001', 'frame_000002'):
            acdc(tmp_path, condition, 'val', frame=frame)
        acdc(tmp_path, condition, 'test', sequence='GOPR0476')
        # the reference (daytime) images of the same places are not part of the split
        acdc(tmp_path, condition, 'val_ref', sequence='GOPR0351_ref')
    everything = build('ACDCDataset', tmp_path, split='val')
    assert len(everything) == 8
    first = everything.get_data_info(0)
    assert first['img_path'] == osp.join(str(tmp_path), 'rgb_anon/fog/val/GOPR0351/'
                                         'GOPR0351_frame_000001_rgb_anon.png')
    assert first['seg_map_path'] == osp.join(str(tmp_path), 'gt/fog/val/GOPR0351/'
                                             'GOPR0351_frame_000001_gt_labelTrainIds.png')
    assert [everything.get_data_info(i)['img_path'].split('/')[-4] for i in range(8)] == [
        'fog', 'fog', 'night', 'night', 'rain', 'rain', 'snow', 'snow']
    night = build('ACDCDataset', tmp_path, split='val', conditions=['night'])
    assert [osp.basename(night.get_data_info(i)['img_path']) for i in range(len(night))] == [
        'GOPR0351_frame_000001_rgb_anon.png', 'GOPR0351_frame_000002_rgb_anon.png']
    test = build('ACDCDataset', tmp_path, split='test')
    assert len(test) == 4 and 'seg_map_path' not in test.get_data_info(0)
    assert everything.metainfo['classes'][0] == 'road' and len(everything.metainfo['classes']) == 19


def test_acdc_labels_load_as_train_ids(tmp_path):
    acdc(tmp_path, 'snow', 'val', size=(8, 4))
    dataset = DATASETS.build(dict(
        type='ACDCDataset', data_root=str(tmp_path), split='val', conditions=['snow'],
        pipeline=[dict(type='LoadImageFromFileChecked'), dict(type='LoadAnnotationsChecked')]))
    label = dataset[0]['gt_seg_map']
    assert label.shape == (4, 8) and set(np.unique(label)) == {7}


def test_dark_zurich_night_train_is_unlabelled_and_val_labelled(tmp_path):
    for frame in ('frame_000001', 'frame_000002', 'frame_000003'):
        dark_zurich(tmp_path, 'train', 'GOPR0348', frame, label=False)
    dark_zurich(tmp_path, 'train', 'GOPR0350', 'frame_000001', condition='day', label=False)
    dark_zurich(tmp_path, 'val')
    dark_zurich(tmp_path, 'test', 'GOPR0364', 'frame_000001', label=False)
    train = build('DarkZurichInPlaceDataset', tmp_path, split='train')
    assert len(train) == 3 and 'seg_map_path' not in train.get_data_info(0)
    assert train.get_data_info(2)['img_path'] == osp.join(
        str(tmp_path), 'rgb_anon/train/night/GOPR0348/GOPR0348_frame_000003_rgb_anon.png')
    day = build('DarkZurichInPlaceDataset', tmp_path, split='train', condition='day')
    assert len(day) == 1
    val = build('DarkZurichInPlaceDataset', tmp_path, split='val')
    assert len(val) == 1 and val.get_data_info(0)['seg_map_path'] == osp.join(
        str(tmp_path), 'gt/val/night/GOPR0356/GOPR0356_frame_000321_gt_labelTrainIds.png')
    test = build('DarkZurichInPlaceDataset', tmp_path, split='test')
    assert len(test) == 1 and 'seg_map_path' not in test.get_data_info(0)
    with pytest.raises(ValueError, match='night'):
        build('DarkZurichInPlaceDataset', tmp_path, split='val', condition='day')


def test_an_image_without_label_and_a_label_without_image_are_one_line_each(tmp_path):
    acdc(tmp_path, 'fog', 'val', frame='frame_000001')
    lonely = acdc(tmp_path, 'fog', 'val', frame='frame_000002')
    os.remove(label_of(lonely))
    orphan = acdc(tmp_path, 'fog', 'val', frame='frame_000003')
    os.remove(orphan)
    lines = build_error('ACDCDataset', tmp_path, split='val', conditions=['fog'])
    assert lines == ['ACDCDataset: 2 problem(s) with images and labels:',
                     f'  - {lonely}: image has no label (expected {label_of(lonely)})',
                     f'  - {label_of(orphan)}: label has no image (expected {orphan})']


def test_a_label_of_another_size_is_one_line_naming_it(tmp_path):
    acdc(tmp_path, 'rain', 'val', frame='frame_000001')
    image = acdc(tmp_path, 'rain', 'val', frame='frame_000002', size=(8, 4),
                 label_size=(6, 4))
    lines = build_error('ACDCDataset', tmp_path, split='val', conditions=['rain'])
    assert lines == ['ACDCDataset: 1 problem(s) with images and labels:',
                     f'  - {label_of(image)}: label size 6x4 differs from the size 8x4 of its '
                     f'image {image} (width x height)']


def test_a_truncated_image_fails_or_is_left_out_of_an_unlabelled_split(tmp_path,
                                                                       monkeypatch):
    for frame in ('frame_000001', 'frame_000002', 'frame_000003'):
        dark_zurich(tmp_path, 'train', 'GOPR0348', frame, label=False)
    broken = dark_zurich(tmp_path, 'train', 'GOPR0348', 'frame_000002', label=False)
    with open(broken, 'rb') as f:
        data = f.read()
    with open(broken, 'wb') as f:
        f.write(data[:-20])
    lines = build_error('DarkZurichInPlaceDataset', tmp_path, split='train')
    assert lines == ['DarkZurichInPlaceDataset: 1 problem(s) with images and labels:',
                     f'  - {broken}: truncated PNG (the file does not end with the IEND chunk)']
    logged = []
    monkeypatch.setattr(in_place, 'print_log', lambda msg, **kw: logged.append(msg))
    kept = build('DarkZurichInPlaceDataset', tmp_path, split='train', skip_invalid=True)
    assert [osp.basename(kept.get_data_info(i)['img_path']) for i in range(len(kept))] == [
        'GOPR0348_frame_000001_rgb_anon.png', 'GOPR0348_frame_000003_rgb_anon.png']
    assert logged == ['DarkZurichInPlaceDataset: left out 1 image(s) that fail a check '
                      f'(skip_invalid=True):\n  - {broken}: truncated PNG (the file does not '
                      f'end with the IEND chunk)']
    with pytest.raises(ValueError, match='skip_invalid is only for a split without labels'):
        build('DarkZurichInPlaceDataset', tmp_path, split='val', skip_invalid=True)


def test_a_missing_or_empty_folder_is_named_with_the_layout(tmp_path):
    acdc(tmp_path, 'fog', 'val')
    lines = build_error('ACDCDataset', tmp_path, split='val', conditions=['fog', 'snow'])
    assert lines[0] == (f"image folder '{tmp_path}/rgb_anon/snow/val' does not exist. "
                        f"Expected layout:")
    assert lines[1] == '  <data_root>/rgb_anon/<condition>/<split>/<sequence>/<name>_rgb_anon.png'
    os.makedirs(tmp_path / 'rgb_anon' / 'snow' / 'val')
    os.makedirs(tmp_path / 'gt' / 'snow' / 'val')
    lines = build_error('ACDCDataset', tmp_path, split='val', conditions=['fog', 'snow'])
    assert lines[0] == (f"ACDCDataset: no *_rgb_anon.png images in "
                        f"'{tmp_path}/rgb_anon/snow/val'. Expected layout:")
    lines = build_error('DarkZurichInPlaceDataset', tmp_path / 'dark_zurich', split='val')
    assert lines[0].startswith(f"image folder '{tmp_path}/dark_zurich/rgb_anon/val/night' "
                               f"does not exist")
    with pytest.raises(ValueError, match='conditions must be some of'):
        build('ACDCDataset', tmp_path, conditions=['haze'])
