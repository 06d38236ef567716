"""Domain generalisation: source-only training with the feature distance, Mapillary scored on
the 19 Cityscapes classes, and one tools/test.py call over Cityscapes, BDD100K and Mapillary
fixtures in their official layouts."""
import csv
import json
import os
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.optim import OptimWrapper, build_optim_wrapper
from mmseg.registry import DATASETS, MODELS
from mmseg.utils import register_all_modules
from PIL import Image

import mmseg_iccld  # noqa: F401
from mmseg_iccld.datasets.label_tables import MAPILLARY_V1_TABLE
from mmseg_iccld.datasets.synthetic import generate_benchmark
from mmseg_iccld.models.uda.feature_distance import feature_distance_loss
from test_adverse_configs import shrink
from test_tools_test import HEADINGS, REPO, pairs_iou, run_tool, save_checkpoint
from tiny_models import build_uda, dacs_config, random_uda_batch, tiny_daformer

register_all_modules(init_default_scope=True)
torch.set_num_threads(1)

# HRDA's tools/convert_datasets/mapillary.py, its id -> train id list as printed there
HRDA_MAPILLARY = {13: 0, 24: 0, 41: 0, 2: 1, 15: 1, 17: 2, 6: 3, 3: 4, 45: 5, 47: 5, 48: 6,
                  50: 7, 30: 8, 29: 9, 27: 10, 19: 11, 20: 12, 21: 12, 22: 12, 55: 13, 61: 14,
                  54: 15, 58: 16, 57: 17, 52: 18}
SIZE = 64


def test_mapillary_table_is_hrdas_grouping_and_ignores_the_other_41_classes():
    assert {k: v for k, v in MAPILLARY_V1_TABLE.id_to_train_id.items() if v != 255} == \
        HRDA_MAPILLARY
    assert sorted(MAPILLARY_V1_TABLE.id_to_train_id) == list(range(66))


def mapillary_fixture(root) -> dict:
    """Two validation images in the Vistas 2.0 download's layout: ``validation/images/*.jpg``
    and ``validation/v1.2/labels/*.png``, palette images holding the 66 class ids."""
    rng = np.random.default_rng(1)
    labels = {}
    for name, size in (('0035fkbjWljhaftpVM37-g', (48, 64)), ('00qclUcInksIYnm19b1Xfw', (48, 36))):
        image_dir = osp.join(root, 'validation', 'images')
        label_dir = osp.join(root, 'validation', 'v1.2', 'labels')
        os.makedirs(image_dir, exist_ok=True)
        os.makedirs(label_dir, exist_ok=True)
        Image.fromarray(rng.integers(0, 255, size + (3,), np.uint8)).save(
            osp.join(image_dir, name + '.jpg'))
        label = rng.integers(0, 66, size).astype(np.uint8)
        png = Image.fromarray(label, mode='P')
        png.putpalette(list(rng.integers(0, 255, 66 * 3, np.uint8)))
        png.save(osp.join(label_dir, name + '.png'))
        labels[name] = label
    return labels


def bdd_fixture(root) -> dict:
    """Two validation images in BDD100K's layout: ``images/10k/val/*.jpg`` and
    ``labels/sem_seg/masks/val/*.png`` (train ids, 255 ignored)."""
    rng = np.random.default_rng(2)
    labels = {}
    for name in ('7d2f7975-e0c1c5a7', '7d4a9094-0455564b'):
        image_dir = osp.join(root, 'images', '10k', 'val')
        label_dir = osp.join(root, 'labels', 'sem_seg', 'masks', 'val')
        os.makedirs(image_dir, exist_ok=True)
        os.makedirs(label_dir, exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (36, 64, 3), np.uint8)).save(
            osp.join(image_dir, name + '.jpg'))
        label = rng.choice(np.r_[np.arange(19), 255], (36, 64)).astype(np.uint8)
        Image.fromarray(label).save(osp.join(label_dir, name + '.png'))
        labels[name] = label
    return labels


def test_mapillary_labels_load_as_cityscapes_train_ids(tmp_path):
    labels = mapillary_fixture(tmp_path)
    dataset = DATASETS.build(dict(
        type='MapillaryCityscapesDataset', data_root=str(tmp_path),
        data_prefix=dict(img_path='validation/images', seg_map_path='validation/v1.2/labels'),
        pipeline=[dict(type='LoadImageFromFileChecked'), dict(type='LoadAnnotationsChecked'),
                  dict(type='PackSegInputs')]))
    assert dataset.metainfo['classes'][0] == 'road' and len(dataset.metainfo['classes']) == 19
    assert len(dataset) == 2
    for i in range(2):
        sample = dataset[i]['data_samples']
        name = osp.splitext(osp.basename(sample.img_path))[0]
        expected = np.vectorize(lambda v: HRDA_MAPILLARY.get(int(v), 255))(labels[name])
        np.testing.assert_array_equal(sample.gt_sem_seg.data[0].numpy(), expected)


def test_uda_dataset_without_a_target_yields_source_samples_alone(tmp_path):
    paths = generate_benchmark(str(tmp_path / 'synthetic'), num_source=3, num_target_train=1,
                               num_target_val=1, source_size=(64, 32), target_size=(64, 32))
    source = dict(type='GTA5Dataset', data_root=paths.gta_root,
                  data_prefix=dict(img_path='images', seg_map_path='labels'),
                  pipeline=[dict(type='LoadImageFromFileChecked'),
                            dict(type='LoadAnnotationsChecked'), dict(type='PackSegInputs')])
    plain = DATASETS.build(dict(type='UDADataset', source=source, target=None))
    assert len(plain) == 3
    assert set(plain[2]) == {'inputs', 'data_samples'}
    assert plain[2]['data_samples'].img_path.endswith(
        sorted(os.listdir(osp.join(paths.gta_root, 'images')))[2])
    rcs = DATASETS.build(dict(type='UDADataset', source=source, target=None,
                              rare_class_sampling=dict(min_pixels=1)))
    np.random.seed(0)
    assert set(rcs[0]) == {'inputs', 'data_samples'}
    with pytest.raises(IndexError):
        plain[3]


def source_batch(seed: int = 0) -> dict:
    """Two source samples (car | road over person | ignored quadrants), no target half."""
    labels = torch.full((2, 1, SIZE, SIZE), 255, dtype=torch.long)
    half = SIZE // 2
    labels[:, :, :half, :half], labels[:, :, :half, half:], labels[:, :, half:, :half] = 13, 0, 11
    batch = random_uda_batch(labels, seed)
    return dict(inputs=batch['inputs'], data_samples=batch['data_samples'])


def source_only(**kwargs):
    cfg = dacs_config(tiny_daformer(), **kwargs)
    cfg = {k: v for k, v in cfg.items() if k not in ('pseudo_margins',)}
    return build_uda(dict(cfg, type='SourceOnly'))


def test_without_the_feature_distance_a_step_is_the_plain_segmentors_step():
    torch.manual_seed(0)
    model = source_only(imnet_feature_dist_lambda=0)
    assert model.imnet_backbone is None and not hasattr(model, 'teacher')
    plain = MODELS.build(tiny_daformer())
    plain.load_state_dict(model.model.state_dict())
    plain.train()
    batch = source_batch()
    torch.manual_seed(1)  # the same dropout draws in both
    log = model.train_step(batch, OptimWrapper(torch.optim.SGD(model.model.parameters(), lr=0.1)))
    assert set(log) == {'loss', 'src.decode.loss_ce', 'src.decode.acc_seg'}

    optimizer = torch.optim.SGD(plain.parameters(), lr=0.1)
    data = model.data_preprocessor(batch, True)  # the same normalisation
    torch.manual_seed(1)
    losses = plain.loss(data['inputs'], data['data_samples'])
    losses['decode.loss_ce'].backward()
    optimizer.step()
    assert torch.allclose(log['loss'], losses['decode.loss_ce'].detach())
    for (name, p), q in zip(model.model.named_parameters(), plain.parameters()):
        assert torch.allclose(p, q, atol=1e-6), name


def test_feature_distance_reads_the_frozen_initial_backbone_and_stays_frozen():
    torch.manual_seed(0)
    model = source_only()
    initial = {k: v.clone() for k, v in model.model.backbone.state_dict().items()}
    for k, v in model.imnet_backbone.state_dict().items():
        assert torch.equal(v, initial[k]), k
    batch = source_batch()
    data = model.data_preprocessor(batch, True)
    labels = torch.stack([s.gt_sem_seg.data for s in data['data_samples']])
    with torch.no_grad():
        expected = 0.005 * feature_distance_loss(
            model.model.backbone(data['inputs'])[-1], model.imnet_backbone(data['inputs'])[-1],
            labels, (6, 7, 11, 12, 13, 14, 15, 16, 17, 18), 0.75, 19, 255)
    wrapper = OptimWrapper(torch.optim.AdamW(model.model.parameters(), lr=1e-3))
    log = model.train_step(batch, wrapper)
    assert expected > 0
    assert torch.allclose(log['src.loss_feat_dist'], expected, rtol=1e-5)
    assert torch.allclose(log['loss'], log['src.decode.loss_ce'] + log['src.loss_feat_dist'])
    log = model.train_step(batch, wrapper)  # the student moved, the frozen copy did not
    assert log['src.loss_feat_dist'] > 0
    for k, v in model.imnet_backbone.state_dict().items():
        assert torch.equal(v, initial[k]), k
    assert any(not torch.equal(v, initial[k])
               for k, v in model.model.backbone.state_dict().items())


@pytest.mark.parametrize('name', ['daformer/gta_dg.py', 'hrda/gta_dg.py'])
def test_dg_config_trains_one_iteration_on_gta_fixtures_at_a_reduced_crop(name, tmp_path):
    paths = generate_benchmark(str(tmp_path / 'synthetic'), num_source=2, num_target_train=1,
                               num_target_val=1, source_size=(64, 32), target_size=(64, 32))
    cfg = Config.fromfile(osp.join(REPO, 'configs', name))
    hr = name.startswith('hrda')
    crop = 128 if hr else 64
    dataset = cfg.train_dataloader.dataset
    assert dataset.target is None and dataset.source.type == 'GTA5Dataset'
    assert list(cfg.test_sets) == ['cityscapes', 'bdd100k', 'mapillary']
    dataset.source.update(data_root=paths.gta_root,
                          pipeline=shrink(dataset.source.pipeline, crop))
    dataset.rare_class_sampling.update(min_pixels=1)
    segmentor = cfg.model.model
    segmentor.backbone.init_cfg = None
    if hr:
        segmentor.hr_crop_size = (64, 64)
    batch = pseudo_collate([DATASETS.build(dataset)[0]])
    assert set(batch) == {'inputs', 'data_samples'}
    torch.manual_seed(0)
    model = MODELS.build(cfg.model).train()
    assert type(model).__name__ == 'SourceOnly'
    log = model.train_step(batch, build_optim_wrapper(model, cfg.optim_wrapper))
    for key in ('src.decode.loss_ce', 'src.loss_feat_dist'):
        assert key in log and torch.isfinite(log[key]), key


def predicted_iou(pred_dir: str, labels: dict) -> np.ndarray:
    """Per-class IoU (percent) of the written predictions ``<name>.png`` against ``labels``."""
    return pairs_iou([(label, np.array(Image.open(osp.join(pred_dir, name + '.png'))))
                      for name, label in labels.items()])


def test_one_test_call_writes_a_per_class_table_for_each_dg_test_set(tmp_path):
    paths = generate_benchmark(str(tmp_path / 'synthetic'), num_source=1, num_target_train=1,
                               num_target_val=2, source_size=(64, 32), target_size=(64, 32))
    mapillary = mapillary_fixture(tmp_path / 'mapillary')
    mapillary = {k: np.vectorize(lambda v: HRDA_MAPILLARY.get(int(v), 255))(v).astype(np.uint8)
                 for k, v in mapillary.items()}
    bdd = bdd_fixture(tmp_path / 'bdd100k')
    config = tmp_path / 'dg.py'
    config.write_text(
        f"_base_ = ['{REPO}/configs/synthetic/source_only_dg_tiny.py']\n"
        "test_sets = dict(\n"
        "    _delete_=True,\n"
        f"    cityscapes=dict(_base_.test_sets.cityscapes, data_root='{paths.cityscapes_root}'),\n"
        f"    bdd100k=dict(type='BDD100KDataset', data_root='{tmp_path / 'bdd100k'}',\n"
        "                 data_prefix=dict(img_path='images/10k/val',\n"
        "                                  seg_map_path='labels/sem_seg/masks/val')),\n"
        "    mapillary=dict(type='MapillaryCityscapesDataset',\n"
        f"                   data_root='{tmp_path / 'mapillary'}',\n"
        "                   data_prefix=dict(img_path='validation/images',\n"
        "                                    seg_map_path='validation/v1.2/labels')))\n"
        "test_dataloader = dict(num_workers=0, persistent_workers=False)\n")
    checkpoint = str(tmp_path / 'dg.pth')
    save_checkpoint(str(config), checkpoint)
    work = tmp_path / 'work'
    result = run_tool('tools/test.py', str(config), checkpoint, '--work-dir', str(work),
                      '--out', str(tmp_path / 'pred'))
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((work / 'metrics.json').read_text())
    assert list(summary['test_sets']) == ['cityscapes', 'bdd100k', 'mapillary']
    miou = []
    for name, images in (('cityscapes', 2), ('bdd100k', 2), ('mapillary', 2)):
        with open(work / name / 'per_class.csv') as f:
            header, row = list(csv.reader(f))
        assert header == ['Method', 'mIoU'] + HEADINGS
        assert f'per-class table written to {work / name / "per_class"}.csv' in result.stdout
        metrics = json.loads((work / name / 'metrics.json').read_text())
        assert metrics['images'] == summary['test_sets'][name]['images'] == images
        assert float(row[1]) == pytest.approx(metrics['metrics']['mIoU'], abs=0.006)
        miou.append(metrics['metrics']['mIoU'])
        if name in ('bdd100k', 'mapillary'):
            iou = predicted_iou(str(tmp_path / 'pred' / name),
                                bdd if name == 'bdd100k' else mapillary)
            written = np.array([float(v) for v in row[2:]])
            np.testing.assert_allclose(written, iou, atol=0.011)
    assert summary['mean_mIoU'] == pytest.approx(sum(miou) / 3)
    table = (work / 'test_sets.md').read_text().splitlines()
    assert table[0] == '| config | cityscapes | bdd100k | mapillary | mean |'
    assert table[2].startswith(f'| {tmp_path.name}/dg | ')  # the config's folder and name
