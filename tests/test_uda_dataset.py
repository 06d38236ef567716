"""UDADataset on tiny image/label files: pairing, metainfo, rare class sampling, errors."""
import json

import numpy as np
import pytest
import torch
from mmengine.dataset import pseudo_collate
from mmengine.registry import init_default_scope
from PIL import Image

import mmseg_iccld  # noqa: F401  (registers UDADataset, UDADataPreprocessor)
from mmseg.registry import DATASETS, MODELS

# Configs run with default_scope='mmseg'; the pipeline's transforms resolve in that scope.
init_default_scope('mmseg')

CLASSES = ('c0', 'c1', 'c2')
PIPELINE = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]


def write_split(root, names, value0, size=(6, 8), label_fn=None):
    """Write ``img/<name>.png`` (constant colour) and ``lbl/<name>_labelTrainIds.png``."""
    (root / 'img').mkdir(parents=True)
    (root / 'lbl').mkdir(parents=True)
    h, w = size
    for k, name in enumerate(names):
        img = np.zeros((h, w, 3), np.uint8)
        img[..., 0] = value0 + k  # cv2 reads BGR, so this is channel 2 of `inputs`
        img[..., 1] = 7
        Image.fromarray(img).save(root / 'img' / f'{name}.png')
        label = label_fn(k) if label_fn else np.full((h, w), k % len(CLASSES), np.uint8)
        Image.fromarray(label).save(root / 'lbl' / f'{name}_labelTrainIds.png')


def dataset_cfg(root, classes=CLASSES, pipeline=PIPELINE):
    return dict(
        type='BaseSegDataset',
        data_root=str(root),
        data_prefix=dict(img_path='img', seg_map_path='lbl'),
        img_suffix='.png',
        seg_map_suffix='_labelTrainIds.png',
        metainfo=dict(classes=classes, palette=[[0, 0, 0], [1, 1, 1], [2, 2, 2]]),
        pipeline=pipeline)


def write_stats(root, stats):
    """DAFormer's two statistics files, written from per-image stats."""
    (root / 'sample_class_stats.json').write_text(json.dumps(stats))
    with_class = {}
    for entry in stats:
        for key, n in entry.items():
            if key != 'file':
                with_class.setdefault(key, []).append([entry['file'], n])
    (root / 'samples_with_class.json').write_text(json.dumps(with_class))


@pytest.fixture
def roots(tmp_path):
    src, tgt = tmp_path / 'src', tmp_path / 'tgt'
    write_split(src, ['s0', 's1', 's2'], 100)
    write_split(tgt, ['t0', 't1'], 200, size=(4, 6))
    return src, tgt


def test_pairs_without_rcs(roots):
    src, tgt = roots
    dataset = DATASETS.build(
        dict(type='UDADataset', source=dataset_cfg(src), target=dataset_cfg(tgt)))
    assert len(dataset) == 3 * 2
    assert dataset.metainfo['classes'] == CLASSES
    for idx in range(len(dataset)):
        item = dataset[idx]
        assert set(item) == {'inputs', 'data_samples', 'target_inputs', 'target_data_samples'}
        s, t = idx // 2, idx % 2
        # Channel 2 of the BGR tensor is the value written for image k.
        assert item['inputs'].dtype == torch.uint8 and item['inputs'].shape == (3, 6, 8)
        assert int(item['inputs'][2, 0, 0]) == 100 + s
        assert item['data_samples'].img_path.endswith(f's{s}.png')
        assert torch.all(item['data_samples'].gt_sem_seg.data == s)
        assert item['target_inputs'].shape == (3, 4, 6)
        assert int(item['target_inputs'][2, 0, 0]) == 200 + t
        assert item['target_data_samples'].img_path.endswith(f't{t}.png')
    with pytest.raises(IndexError, match='out of range'):
        dataset[6]


def test_accepts_built_datasets(roots):
    src, tgt = roots
    source, target = DATASETS.build(dataset_cfg(src)), DATASETS.build(dataset_cfg(tgt))
    dataset = DATASETS.build(dict(type='UDADataset', source=source, target=target))
    assert dataset.source is source and dataset.target is target
    assert int(dataset[5]['inputs'][2, 0, 0]) == 102
    with pytest.raises(TypeError, match='target must be a dataset config'):
        DATASETS.build(dict(type='UDADataset', source=source, target=[1, 2]))


def test_different_classes_are_refused(roots):
    src, tgt = roots
    cfg = dict(type='UDADataset', source=dataset_cfg(src),
               target=dataset_cfg(tgt, classes=('c0', 'c2', 'c1')))
    with pytest.raises(ValueError, match=r"same classes.*\('c0', 'c1', 'c2'\).*"
                                         r"\('c0', 'c2', 'c1'\)"):
        DATASETS.build(cfg)


def test_rcs_draws_candidates_of_rare_classes(tmp_path):
    src, tgt = tmp_path / 'src', tmp_path / 'tgt'

    def label(k):
        lbl = np.zeros((6, 8), np.uint8)
        if k == 2:
            lbl[:, :4] = 2  # 24 pixels of the rare class 2, only in s2
        if k == 1:
            lbl[:3] = 1
        return lbl

    write_split(src, ['s0', 's1', 's2'], 100, label_fn=label)
    write_split(tgt, ['t0', 't1'], 200, size=(4, 6))
    # Paths as DAFormer's converter writes them (relative to its working directory).
    write_stats(src, [
        {'file': 'data/gta/lbl/s0_labelTrainIds.png', '0': 48},
        {'file': 'data/gta/lbl/s1_labelTrainIds.png', '0': 24, '1': 24},
        {'file': 'data/gta/lbl/s2_labelTrainIds.png', '0': 24, '2': 24},
    ])
    crop = [dict(type='LoadImageFromFile'), dict(type='LoadAnnotations'),
            dict(type='RandomCrop', crop_size=(4, 4)), dict(type='PackSegInputs')]
    cfg = dict(type='UDADataset', source=dataset_cfg(src, pipeline=crop),
               target=dataset_cfg(tgt),
               rare_class_sampling=dict(class_temp=0.01, min_pixels=20, min_crop_ratio=0.5))
    dataset = DATASETS.build(cfg)
    # f = (96, 24, 24) / 144; with T = 0.01 classes 1 and 2 share almost all the mass.
    assert dataset.rcs_classes[-1] == 0 and dataset.rcs_class_probs[-1] < 1e-20
    assert dataset.rcs_candidates == {0: [0, 1, 2], 1: [1], 2: [2]}
    np.random.seed(0)
    seen = set()
    for i in range(40):
        item = dataset[i]
        name = item['data_samples'].img_path.rsplit('/', 1)[-1]
        seen.add(name)
        assert name in ('s1.png', 's2.png')
        assert item['inputs'].shape == (3, 4, 4)
        assert item['target_data_samples'].img_path.rsplit('/', 1)[-1] in ('t0.png', 't1.png')
    assert seen == {'s1.png', 's2.png'}


def test_rcs_error_messages(roots):
    src, tgt = roots
    cfg = dict(type='UDADataset', source=dataset_cfg(src), target=dataset_cfg(tgt),
               rare_class_sampling=dict(class_temp=0.01, min_pixels=3, min_crop_ratio=0.5))
    with pytest.raises(FileNotFoundError) as err:
        DATASETS.build(cfg)
    assert str(src / 'sample_class_stats.json') in str(err.value)
    assert 'tools/convert_datasets/gta.py' in str(err.value)

    counted = [{'file': f'lbl/s{k}_labelTrainIds.png', '0': 24, '1': 24} for k in range(3)]
    write_stats(src, counted[:1] + [{'file': 'lbl/zz_labelTrainIds.png', '1': 48}])
    with pytest.raises(ValueError, match=r"sample_class_stats\.json does not match the source "
                                         r"dataset: 2 of the 3 source label\(s\) are not "
                                         r"counted in it, e\.g\. 's1_labelTrainIds\.png'.*; it "
                                         r"counts 1 label\(s\) that no source sample has, "
                                         r"e\.g\. 'zz_labelTrainIds\.png'"):
        DATASETS.build(cfg)

    write_stats(src, counted + [{'file': 'lbl/zz_labelTrainIds.png', '1': 48}])
    (src / 'sample_class_stats.json').write_text(json.dumps(counted))
    with pytest.raises(ValueError, match=r"samples_with_class\.json: 1 label file\(s\) of "
                                         r"class 1 match no sample.*'zz_labelTrainIds\.png'"):
        DATASETS.build(cfg)

    write_stats(src, [{'file': f'lbl/s{k}_labelTrainIds.png', '0': 48, '1': 2}
                      for k in range(3)])
    with pytest.raises(ValueError, match='class 1 has no image with more than 3 pixels'):
        DATASETS.build(cfg)

    bad = dict(cfg, rare_class_sampling=dict(class_temp=0.01, min_pixel=3))
    with pytest.raises(ValueError, match=r"unknown rare_class_sampling keys \['min_pixel'\]"):
        DATASETS.build(bad)


def test_batch_through_the_preprocessor(roots):
    src, tgt = roots
    dataset = DATASETS.build(
        dict(type='UDADataset', source=dataset_cfg(src), target=dataset_cfg(tgt)))
    preprocessor = MODELS.build(
        dict(type='UDADataPreprocessor', mean=[100., 7., 0.], std=[2., 1., 1.],
             bgr_to_rgb=True, size=(6, 8)))
    batch = preprocessor(pseudo_collate([dataset[1], dataset[4]]), training=True)
    assert batch['inputs'].shape == (2, 3, 6, 8)
    assert batch['target_inputs'].shape == (2, 3, 6, 8)  # padded from (4, 6) to `size`
    # Sources 0 and 2 (red 100, 102; green 7): (100 - 100) / 2, (102 - 100) / 2.
    assert batch['inputs'][:, 0, 0, 0].tolist() == [0.0, 1.0]
    assert batch['inputs'][:, 1].abs().max() == 0.0
    # Targets 1 and 0: (201 - 100) / 2, (200 - 100) / 2; padding is pad_val 0.
    assert batch['target_inputs'][:, 0, 0, 0].tolist() == [50.5, 50.0]
    assert batch['target_inputs'][:, :, 4:].abs().max() == 0.0
    assert batch['target_inputs'][:, :, :, 6:].abs().max() == 0.0
    # Target 1's label (class 1) padded with seg_pad_val 255 at the bottom and right.
    gt = batch['target_data_samples'][0].gt_sem_seg.data
    expected = torch.full((1, 6, 8), 255, dtype=gt.dtype)
    expected[:, :4, :6] = 1
    assert torch.equal(gt, expected)
