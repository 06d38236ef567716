"""GTA5Dataset, SynthiaDataset and mmseg's CityscapesDataset through the base configs'
pipelines, built from the configs via mmseg's registries."""
import copy
import os.path as osp

import cv2
import numpy as np
import pytest
from cityscapesscripts.helpers.labels import id2label
from mmengine.config import Config
from mmseg.datasets import CityscapesDataset
from mmseg.registry import DATASETS
from mmseg.utils import register_all_modules
from PIL import Image

import mmseg_iccld  # noqa: F401  (registers datasets and transforms)
from mmseg_iccld.datasets.conversion import convert_synthia

register_all_modules(init_default_scope=True)
REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIGS = osp.join(REPO, 'configs', '_base_', 'datasets')


def config(name: str) -> Config:
    return Config.fromfile(osp.join(CONFIGS, name))


def build(dataset_cfg: dict, data_root: str):
    cfg = copy.deepcopy(dataset_cfg)
    cfg['data_root'] = data_root
    return DATASETS.build(cfg)


def read_train_ids(path: str) -> np.ndarray:
    return np.asarray(Image.open(path))


def test_gta_dataset_from_the_synthetic_config(synthetic_benchmark):
    cfg = config('uda_synthetic.py')
    source = build(cfg.train_dataloader.dataset.source, synthetic_benchmark.gta_root)
    assert type(source).__name__ == 'GTA5Dataset'
    assert len(source) == 12
    assert source.metainfo['classes'] == CityscapesDataset.METAINFO['classes']
    assert source.metainfo['palette'] == CityscapesDataset.METAINFO['palette']
    info = source.get_data_info(3)
    assert info['img_path'] == osp.join(synthetic_benchmark.gta_root, 'images', '00003.png')
    assert info['seg_map_path'] == osp.join(synthetic_benchmark.gta_root, 'labels',
                                            '00003_labelTrainIds.png')
    item = source[3]
    assert item['inputs'].shape == (3, 128, 128) and str(item['inputs'].dtype) == 'torch.uint8'
    label = item['data_samples'].gt_sem_seg.data
    assert label.shape == (1, 128, 128)
    assert set(label.unique().tolist()) <= set(range(19)) | {255}


def test_target_val_items_equal_the_files(synthetic_benchmark):
    """The test pipeline leaves 256x128 images unresized, so items equal the files."""
    cfg = config('uda_synthetic.py')
    val = build(cfg.val_dataloader.dataset, synthetic_benchmark.cityscapes_root)
    assert isinstance(val, CityscapesDataset) and len(val) == 4
    for index in (0, 3):
        info = val.get_data_info(index)
        item = val[index]
        image = cv2.imread(info['img_path'])  # BGR, as mmcv loads it
        np.testing.assert_array_equal(item['inputs'].numpy().transpose(1, 2, 0), image)
        np.testing.assert_array_equal(item['data_samples'].gt_sem_seg.data[0].numpy(),
                                      read_train_ids(info['seg_map_path']))
    # the converted target labels agree with the raw label ids through cityscapesscripts
    raw = np.asarray(Image.open(info['seg_map_path'].replace('labelTrainIds', 'labelIds')))
    expected = np.vectorize(lambda i: id2label[int(i)].trainId)(raw)
    expected[(expected < 0) | (expected > 18)] = 255
    np.testing.assert_array_equal(read_train_ids(info['seg_map_path']), expected)


def test_target_train_dataset(synthetic_benchmark):
    cfg = config('uda_synthetic.py')
    target = build(cfg.train_dataloader.dataset.target, synthetic_benchmark.cityscapes_root)
    assert len(target) == 8
    item = target[0]
    assert item['inputs'].shape == (3, 128, 128)
    assert item['data_samples'].gt_sem_seg.data.shape == (1, 128, 128)


def test_source_only_config(synthetic_benchmark):
    cfg = config('synthetic_source_only.py')
    uda = config('uda_synthetic.py')
    assert cfg.train_dataloader.dataset == uda.train_dataloader.dataset.source
    assert cfg.val_dataloader == uda.val_dataloader
    source = build(cfg.train_dataloader.dataset, synthetic_benchmark.gta_root)
    assert len(source) == 12 and source[0]['inputs'].shape == (3, 128, 128)


def test_daformer_resolution_pipelines(synthetic_benchmark):
    """The 512x512 GTA config: source resized to 1280x720 then cropped to 512x512; Cityscapes
    val resized to 1024x512 with the label kept at its original size."""
    cfg = config('uda_gta_to_cityscapes_512x512.py')
    source = build(cfg.train_dataloader.dataset.source, synthetic_benchmark.gta_root)
    assert source[0]['inputs'].shape == (3, 512, 512)
    assert source[0]['data_samples'].gt_sem_seg.data.shape == (1, 512, 512)
    val = build(cfg.val_dataloader.dataset, synthetic_benchmark.cityscapes_root)
    item = val[0]
    assert item['inputs'].shape == (3, 512, 1024)
    assert item['data_samples'].gt_sem_seg.data.shape == (1, 128, 256)
    assert item['data_samples'].metainfo['ori_shape'] == (128, 256)


@pytest.mark.parametrize('name, source_type, scale, target_scale, crop, ratio', [
    ('uda_gta_to_cityscapes_512x512.py', 'GTA5Dataset', (1280, 720), (1024, 512), (512, 512),
     0.5),
    ('uda_synthia_to_cityscapes_512x512.py', 'SynthiaDataset', (1280, 760), (1024, 512),
     (512, 512), 0.5),
    ('uda_gta_to_cityscapes_1024x1024.py', 'GTA5Dataset', (2560, 1440), (2048, 1024),
     (1024, 1024), 2.0),
    ('uda_synthia_to_cityscapes_1024x1024.py', 'SynthiaDataset', (2560, 1520), (2048, 1024),
     (1024, 1024), 2.0),
])
def test_base_configs_follow_daformer_and_hrda(name, source_type, scale, target_scale, crop,
                                               ratio):
    cfg = config(name)
    loader = cfg.train_dataloader
    assert (loader.batch_size, loader.num_workers, loader.persistent_workers) == (2, 4, True)
    assert loader.sampler == dict(type='InfiniteSampler', shuffle=True)
    uda = loader.dataset
    assert uda.type == 'UDADataset'
    assert uda.source.type == source_type
    assert uda.rare_class_sampling == dict(class_temp=0.01, min_pixels=3000,
                                           min_crop_ratio=ratio)
    assert [t['type'] for t in uda.source.pipeline] == [
        'LoadImageFromFileChecked', 'LoadAnnotationsChecked', 'Resize', 'RandomCrop',
        'RandomFlip', 'PackSegInputs']
    assert uda.source.pipeline[2] == dict(type='Resize', scale=scale, keep_ratio=True)
    assert uda.source.pipeline[3] == dict(type='RandomCrop', crop_size=crop,
                                          cat_max_ratio=0.75)
    assert uda.target.type == 'CityscapesDataset'
    assert uda.target.data_prefix == dict(img_path='leftImg8bit/train',
                                          seg_map_path='gtFine/train')
    assert uda.target.pipeline[2] == dict(type='Resize', scale=target_scale, keep_ratio=True)
    val = cfg.val_dataloader
    assert val.batch_size == 1 and val.dataset.type == 'CityscapesDataset'
    assert val.dataset.data_prefix == dict(img_path='leftImg8bit/val', seg_map_path='gtFine/val')
    assert [t['type'] for t in val.dataset.pipeline] == [
        'LoadImageFromFileChecked', 'Resize', 'LoadAnnotationsChecked', 'PackSegInputs']
    assert val.dataset.pipeline[1]['scale'] == target_scale
    assert cfg.test_dataloader == val
    expected_metric = ('SynthiaIoUMetric' if source_type == 'SynthiaDataset' else 'IoUMetric')
    assert cfg.val_evaluator.type == expected_metric and cfg.test_evaluator == cfg.val_evaluator


def test_synthia_dataset_loads_converted_labels(tmp_path):
    root = tmp_path / 'synthia'
    (root / 'RGB').mkdir(parents=True)
    (root / 'GT' / 'LABELS').mkdir(parents=True)
    ids = np.array([[3, 3, 4, 8], [1, 1, 10, 0]], np.uint16)
    cv2.imwrite(str(root / 'GT/LABELS/0000007.png'),
                np.stack([np.zeros_like(ids), np.zeros_like(ids), ids], axis=-1))
    Image.fromarray(np.full((2, 4, 3), 50, np.uint8)).save(root / 'RGB' / '0000007.png')
    convert_synthia(str(root))
    cfg = config('uda_synthia_to_cityscapes_512x512.py')
    dataset_cfg = copy.deepcopy(cfg.train_dataloader.dataset.source)
    dataset_cfg['pipeline'] = [dict(type='LoadImageFromFileChecked'),
                               dict(type='LoadAnnotationsChecked'), dict(type='PackSegInputs')]
    dataset = build(dataset_cfg, str(root))
    assert len(dataset) == 1
    np.testing.assert_array_equal(dataset[0]['data_samples'].gt_sem_seg.data[0].numpy(),
                                  [[0, 0, 1, 13], [10, 10, 11, 255]])
