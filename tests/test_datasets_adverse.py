"""ACDC and Dark Zurich read in place: fixtures in the layouts of the official downloads
(real suffixes and nesting) list as expected, and broken folders give one line per file."""
import os
import os.path as osp

import numpy as np
import pytest
from PIL import Image

from mmseg.registry import DATASETS
from mmseg.utils import register_all_modules

import mmseg_iccld  # noqa: F401

register_all_modules(init_default_scope=True)


def write_pair(image: str, label: str = None, size=(8, 4), label_size=None) -> None:
    os.makedirs(osp.dirname(image), exist_ok=True)
    Image.fromarray(np.zeros((size[1], size[0], 3), np.uint8)).save(image)
    if label is not None:
        os.makedirs(osp.dirname(label), exist_ok=True)
        w, h = label_size or size
        Image.fromarray(np.full((h, w), 7, np.uint8)).save(label)


def acdc(root, condition='night', split='val', sequence='GOPR0351', frame='frame_000159',
         **kwargs) -> str:
    stem = f'{sequence}_{frame}'
    image = osp.join(root, 'rgb_anon', condition, split, sequence, f'{stem}_rgb_anon.png')
    label = osp.join(root, 'gt', condition, split, sequence, f'{stem}_gt_labelTrainIds.png')
    write_pair(image, label if split != 'test' else None, **kwargs)
    return image


def dark_zurich(root, split='val', sequence='GOPR0356', frame='000321',
                label=True) -> str:
    stem = f'{sequence}_{frame}'
    image = osp.join(root, 'rgb_anon', split, 'night', sequence, f'{stem}_rgb_anon.png')
    write_pair(image, osp.join(root, 'gt', split, 'night', sequence,
                               f'{stem}_gt_labelTrainIds.png') if label else None)
    return image


def build(type_: str, root, **kwargs):
    return DATASETS.build(dict(type=type_, data_root=str(root), pipeline=[], **kwargs))


def test_acdc_lists_every_condition_or_the_chosen_ones(tmp_path):
    for condition in ('fog', 'night', 'rain', 'snow'):
        for frame in ('frame_000001', 'frame_000002'):
            acdc(tmp_path, condition, 'val', frame=frame)
        acdc(tmp_path, condition, 'test', sequence='GOPR0476')
    everything = build('ACDCDataset', tmp_path, split='val')
    assert len(everything) == 8
    first = everything.get_data_info(0)
    assert first['img_path'] == osp.join(str(tmp_path), 'rgb_anon/fog/val/GOPR0351/'
                                         'GOPR0351_frame_000001_rgb_anon.png')
    assert first['seg_map_path'] == osp.join(str(tmp_path), 'gt/fog/val/GOPR0351/'
                                             'GOPR0351_frame_000001_gt_labelTrainIds.png')
    night = build('ACDCDataset', tmp_path, split='val', conditions=['night'])
    assert [osp.basename(night.get_data_info(i)['img_path']) for i in range(len(night))] == [
        'GOPR0351_frame_000001_rgb_anon.png', 'GOPR0351_frame_000002_rgb_anon.png']
    test = build('ACDCDataset', tmp_path, split='test')
    assert len(test) == 4 and 'seg_map_path' not in test.get_data_info(0)
    assert everything.metainfo['classes'][0] == 'road' and len(everything.metainfo['classes']) == 19


def test_dark_zurich_night_train_is_unlabelled_and_val_labelled(tmp_path):
    for frame in ('000001', '000002', '000003'):
        dark_zurich(tmp_path, 'train', 'GOPR0348', frame, label=False)
    dark_zurich(tmp_path, 'val')
    train = build('DarkZurichInPlaceDataset', tmp_path, split='train')
    assert len(train) == 3 and 'seg_map_path' not in train.get_data_info(0)
    val = build('DarkZurichInPlaceDataset', tmp_path, split='val')
    assert val.get_data_info(0)['seg_map_path'].endswith(
        'gt/val/night/GOPR0356/GOPR0356_000321_gt_labelTrainIds.png')
    with pytest.raises(ValueError, match='night'):
        build('DarkZurichInPlaceDataset', tmp_path, split='val', condition='day')


def test_a_missing_label_and_a_label_without_image_are_one_line_each(tmp_path):
    acdc(tmp_path, 'fog', 'val', frame='frame_000001')
    lonely = acdc(tmp_path, 'fog', 'val', frame='frame_000002')
    os.remove(lonely.replace('rgb_anon', 'gt', 1).replace('_rgb_anon.png',
                                                          '_gt_labelTrainIds.png'))
    orphan = acdc(tmp_path, 'fog', 'val', frame='frame_000003')
    os.remove(orphan)
    with pytest.raises(FileNotFoundError) as error:
        build('ACDCDataset', tmp_path, split='val', conditions=['fog'])
    lines = str(error.value).splitlines()
    assert lines[0] == 'ACDCDataset: 2 image(s) and label(s) do not pair up:'
    assert lines[1] == f'  - {lonely}: no label ' + lonely.replace(
        'rgb_anon', 'gt', 1).replace('_rgb_anon.png', '_gt_labelTrainIds.png')
    assert lines[2].startswith('  - ' + orphan.replace('rgb_anon', 'gt', 1).replace(
        '_rgb_anon.png', '_gt_labelTrainIds.png') + ': no image')


def test_a_missing_condition_folder_is_named_with_the_layout(tmp_path):
    acdc(tmp_path, 'fog', 'val')
    with pytest.raises(FileNotFoundError, match=r"image folder '.*rgb_anon/snow/val' does "
                                                r"not exist. Expected layout"):
        build('ACDCDataset', tmp_path, split='val', conditions=['fog', 'snow'])
    with pytest.raises(ValueError, match='conditions must be some of'):
        build('ACDCDataset', tmp_path, conditions=['haze'])


def test_a_label_of_another_size_is_one_line_naming_it(tmp_path):
    image = acdc(tmp_path, 'rain', 'val', size=(8, 4), label_size=(6, 4))
    dataset = DATASETS.build(dict(
        type='ACDCDataset', data_root=str(tmp_path), split='val', conditions=['rain'],
        pipeline=[dict(type='LoadImageFromFileChecked'), dict(type='LoadAnnotationsChecked')]))
    label = image.replace('rgb_anon', 'gt', 1).replace('_rgb_anon.png', '_gt_labelTrainIds.png')
    with pytest.raises(ValueError, match=f'{label}: label size 6x4 differs from the size 8x4 '
                                         f'of its image {image}'):
        dataset[0]
