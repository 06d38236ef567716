"""The clear-to-adverse configs (Cityscapes -> ACDC and -> Dark Zurich, every method; the
generated benchmark's tiny ones): each builds its data from fixtures in the official layouts
and runs one training iteration on the CPU at a reduced crop (MiT-B5 with random weights)."""
import os.path as osp
import shutil

import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.optim import build_optim_wrapper
from mmseg.registry import DATASETS, MODELS
from mmseg.utils import register_all_modules

import mmseg_iccld  # noqa: F401
from mmseg_iccld.datasets.synthetic import generate_benchmark
from mmseg_iccld.datasets.synthetic_adverse import generate_adverse_benchmark

register_all_modules(init_default_scope=True)
ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIGS = [f'{method}/cs2{target}.py' for target in ('acdc', 'darkzurich')
           for method in ('daformer', 'hrda', 'mic', 'iccld')] + [
               'iccld/cs2acdc_hr.py', 'iccld/cs2darkzurich_hr.py']
# (pseudo_margins, adv_margins) of each method for these pairs: DAFormer ran them with its
# pseudo-label margins (plcrop=True), HRDA and MIC without; ICCLD's f_dis does not read the
# Cityscapes border and ego-vehicle rows, now of the source (1024x1024 crops: twice as many)
MARGINS = {'daformer': ((15, 120, 0, 0), None), 'hrda': ((0, 0, 0, 0), None),
           'mic': ((0, 0, 0, 0), None), 'iccld': ((0, 0, 0, 0), (15, 120, 0, 0)),
           'iccld_hr': ((0, 0, 0, 0), (30, 240, 0, 0))}


@pytest.fixture(scope='module')
def data(tmp_path_factory) -> dict:
    """A Cityscapes fixture (converted, with class statistics), an ACDC one (fog and night)
    and a Dark Zurich one (night train without labels, labelled night val)."""
    root = tmp_path_factory.mktemp('adverse_data')
    paths = generate_benchmark(str(root / 'synthetic'), num_source=2, num_target_train=4,
                               num_target_val=2, source_size=(64, 32), target_size=(64, 32))
    acdc = generate_adverse_benchmark(str(root / 'acdc'), num_train=4, num_val=2, size=(64, 32))
    dark_zurich = root / 'dark_zurich'
    for split, folder in (('train', 'train'), ('val', 'val')):
        images = osp.join(acdc, 'rgb_anon', 'night', folder)
        shutil.copytree(images, dark_zurich / 'rgb_anon' / split / 'night')
        if split == 'val':
            shutil.copytree(osp.join(acdc, 'gt', 'night', folder),
                            dark_zurich / 'gt' / split / 'night')
    return dict(cityscapes=paths.cityscapes_root, acdc=acdc, dark_zurich=str(dark_zurich))


def shrink(pipeline: list, crop: int) -> list:
    """The pipeline at a reduced crop: images resized to 2 crops by 1."""
    out = []
    for t in pipeline:
        if t['type'] == 'Resize':
            t = dict(t, scale=(2 * crop, crop))
        elif t['type'] == 'RandomCrop':
            t = dict(t, crop_size=(crop, crop))
        out.append(t)
    return out


def on_fixtures(cfg: Config, data: dict, crop: int) -> None:
    dataset = cfg.train_dataloader.dataset
    dataset.source.update(data_root=data['cityscapes'],
                          pipeline=shrink(dataset.source.pipeline, crop))
    target = dataset.target
    target.update(data_root=data['dark_zurich' if 'Dark' in target.type else 'acdc'],
                  pipeline=shrink(target.pipeline, crop))
    if target.type == 'ACDCDataset':
        target.conditions = ('fog', 'night')
    dataset.rare_class_sampling.update(min_pixels=1)


@pytest.mark.parametrize('name', CONFIGS)
def test_config_trains_one_iteration_on_fixtures_at_a_reduced_crop(name, data):
    cfg = Config.fromfile(osp.join(ROOT, 'configs', name))
    hr = 'hrda' in name or 'mic' in name or name.endswith('_hr.py')
    crop = 128 if hr else 64
    on_fixtures(cfg, data, crop)
    segmentor = cfg.model.model
    segmentor.backbone.init_cfg = None
    if hr:
        segmentor.hr_crop_size = (64, 64)
        segmentor.test_cfg.update(crop_size=(crop, crop), stride=(crop // 2, crop // 2))
    method = name.split('/')[0] + ('_hr' if name.endswith('_hr.py') else '')
    pseudo, adv = MARGINS[method]
    assert tuple(cfg.model.pseudo_margins) == pseudo
    assert tuple(cfg.model.get('adv_margins') or ()) == (adv or ())
    full = 1024 if hr else 512  # the margins at the reduced crop
    cfg.model.pseudo_margins = tuple(-(-m * crop // full) for m in pseudo)
    if adv:
        cfg.model.adv_margins = tuple(-(-m * crop // full) for m in adv)
    train_set = DATASETS.build(cfg.train_dataloader.dataset)
    batch = pseudo_collate([train_set[0]])
    assert batch['inputs'][0].shape[1:] == batch['target_inputs'][0].shape[1:] == (crop, crop)
    torch.manual_seed(0)
    uda = MODELS.build(cfg.model).train()
    iccld = hasattr(uda, 'set_phase')
    if iccld:
        uda.set_phase(2, lambda_adv=0.1)
    log_vars = uda.train_step(batch, build_optim_wrapper(uda, cfg.optim_wrapper))
    keys = ['src.decode.loss_ce', 'mix.decode.loss_ce', 'src.loss_feat_dist']
    keys += ['tgt.loss_ldm', 'dis.loss'] if iccld else []
    keys += ['masked.decode.loss_ce'] if name.startswith('mic') else []
    for key in keys:
        assert key in log_vars and torch.isfinite(log_vars[key]), key
    val = DATASETS.build(dict(cfg.val_dataloader.dataset, data_root=(
        data['dark_zurich'] if 'Dark' in cfg.val_dataloader.dataset.type else data['acdc']),
        **({'conditions': ('fog', 'night')} if 'conditions' in cfg.val_dataloader.dataset
           or cfg.val_dataloader.dataset.type == 'ACDCDataset' else {})))
    assert len(val) == (1 if 'Dark' in cfg.val_dataloader.dataset.type else 2)


@pytest.mark.parametrize('name', ['source_only_adverse_tiny.py', 'daformer_adverse_tiny.py',
                                  'iccld_adverse_tiny.py'])
def test_tiny_adverse_configs_read_the_generated_benchmark(name, data):
    cfg = Config.fromfile(osp.join(ROOT, 'configs', 'synthetic', name))
    dataset = cfg.train_dataloader.dataset
    assert cfg.val_dataloader.dataset.data_root == 'data/synthetic_adverse/acdc'
    if dataset.type == 'UDADataset':
        assert dataset.source.data_root == 'data/synthetic/cityscapes'
        assert dataset.target.type == 'ACDCDataset'
        assert tuple(dataset.target.conditions) == ('fog', 'night')
        dataset.source.data_root, dataset.target.data_root = data['cityscapes'], data['acdc']
        dataset.rare_class_sampling.min_pixels = 1  # the fixture's images are 64x32
    else:
        assert dataset.data_root == 'data/synthetic/cityscapes'
        dataset.data_root = data['cityscapes']
    assert len(DATASETS.build(dataset)) > 0
    assert cfg.val_dataloader.dataset.type == 'ACDCDataset'
