"""DAFormer / source-only configs: composition, schedule and parameter groups."""
import os.path as osp
import shutil

import pytest
import torch
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.registry import PARAM_SCHEDULERS
from mmseg.registry import MODELS
from mmseg.utils import register_all_modules

import mmseg_iccld  # noqa: F401
from mmseg_iccld.engine.pretrained_files import check_pretrained_files

register_all_modules(init_default_scope=True)
torch.set_num_threads(1)

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
SCHEDULE = osp.join(REPO, 'configs/_base_/schedules/adamw_poly_40k.py')

# Dataset base configs are written separately; where one is missing, a stand-in with the
# same structure (a UDADataset of source and target, or a plain source set) takes its place.
VAL_STUB = """
val_dataloader = dict(batch_size=1, num_workers=0,
                      sampler=dict(type='DefaultSampler', shuffle=False),
                      dataset=dict(type='CityscapesDataset', pipeline=[]))
test_dataloader = val_dataloader
val_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU'])
test_evaluator = val_evaluator
"""
UDA_STUB = """
train_dataloader = dict(
    batch_size=2, num_workers=0,
    sampler=dict(type='InfiniteSampler', shuffle=False),
    dataset=dict(type='UDADataset',
                 source=dict(type='{source}', data_root='data/source', pipeline=[]),
                 target=dict(type='CityscapesDataset', data_root='data/target', pipeline=[])))
""" + VAL_STUB
DATASET_STUBS = {
    'uda_gta_to_cityscapes_512x512.py': UDA_STUB.format(source='GTA5Dataset'),
    'uda_synthia_to_cityscapes_512x512.py': UDA_STUB.format(source='SynthiaDataset'),
    'uda_synthetic.py': UDA_STUB.format(source='CityscapesDataset'),
    'synthetic_source_only.py': """
train_dataloader = dict(batch_size=2, num_workers=0,
                        sampler=dict(type='InfiniteSampler', shuffle=True),
                        dataset=dict(type='CityscapesDataset', pipeline=[]))
""" + VAL_STUB,
}


@pytest.fixture(scope='module')
def configs(tmp_path_factory) -> str:
    root = tmp_path_factory.mktemp('repo')
    shutil.copytree(osp.join(REPO, 'configs'), root / 'configs')
    datasets = root / 'configs/_base_/datasets'
    datasets.mkdir(exist_ok=True)
    for name, text in DATASET_STUBS.items():
        if not (datasets / name).exists():
            (datasets / name).write_text(text)
    return str(root / 'configs')


@pytest.mark.parametrize('name, source', [('daformer/gta2cs.py', 'GTA5Dataset'),
                                          ('daformer/synthia2cs.py', 'SynthiaDataset')])
def test_daformer_configs_wrap_mitb5_in_dacs(configs, name, source):
    cfg = Config.fromfile(osp.join(configs, name))
    model = cfg.model
    assert model.type == 'DACS' and model.data_preprocessor.type == 'UDADataPreprocessor'
    assert (model.alpha, model.pseudo_threshold, tuple(model.pseudo_margins)) == \
        (0.999, 0.968, (15, 120, 0, 0))
    assert (model.color_jitter_strength, model.color_jitter_probability, model.blur) == \
        (0.2, 0.8, True)
    assert model.imnet_feature_dist_lambda == 0.005
    assert list(model.imnet_feature_dist_classes) == [6, 7, 11, 12, 13, 14, 15, 16, 17, 18]
    assert model.imnet_feature_dist_scale_min_ratio == 0.75
    segmentor = model.model
    assert segmentor.type == 'EncoderDecoder'
    assert segmentor.backbone.num_layers == [3, 6, 40, 3]
    assert segmentor.backbone.init_cfg.checkpoint == 'pretrained/mit_b5.pth'
    assert segmentor.decode_head.type == 'DAFormerHead'
    assert cfg.model_wrapper_cfg == dict(type='MMSeparateDistributedDataParallel',
                                         find_unused_parameters=True, broadcast_buffers=False)
    assert cfg.train_dataloader.dataset.source.type == source
    assert cfg.train_cfg.max_iters == 40000 and cfg.train_cfg.val_interval == 4000
    assert cfg.default_hooks.checkpoint.interval == 4000
    assert cfg.default_hooks.logger.interval == 50


def test_source_only_is_a_plain_encoder_decoder_on_the_source_set(configs):
    cfg = Config.fromfile(osp.join(configs, 'source_only/gta2cs.py'))
    uda = Config.fromfile(osp.join(configs, 'daformer/gta2cs.py'))
    assert cfg.model.type == 'EncoderDecoder'
    assert cfg.model.backbone == uda.model.model.backbone
    assert cfg.model.decode_head == uda.model.model.decode_head
    assert 'model_wrapper_cfg' not in cfg  # mmengine's default DDP wrapper
    assert cfg.train_dataloader.dataset == uda.train_dataloader.dataset.source
    assert cfg.train_dataloader.sampler.shuffle
    assert cfg.val_dataloader == uda.val_dataloader
    assert cfg.param_scheduler == uda.param_scheduler


def test_tiny_configs_build_and_need_no_pretrained_file(configs, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    uda = Config.fromfile(osp.join(configs, 'synthetic/daformer_tiny.py'))
    plain = Config.fromfile(osp.join(configs, 'synthetic/source_only_tiny.py'))
    check_pretrained_files(uda)
    check_pretrained_files(plain)
    assert uda.model.type == 'DACS' and plain.model.type == 'EncoderDecoder'
    assert uda.model.model == plain.model
    assert tuple(uda.model.pseudo_margins) == (0, 0, 0, 0)
    assert uda.model.imnet_feature_dist_lambda == 0.005
    for cfg in (uda, plain):
        assert cfg.train_cfg.max_iters == 2000 and cfg.train_cfg.val_interval == 2000
        assert [s.end for s in cfg.param_scheduler] == [76, 2001]
    assert 'model_wrapper_cfg' in uda and 'model_wrapper_cfg' not in plain

    dacs = MODELS.build(uda.model)
    assert type(dacs).__name__ == 'DACS' and dacs.imnet_backbone is not None
    assert sum(p.numel() for p in dacs.model.parameters()) < 1_000_000


def _daformer_lr(t: int, base: float = 6e-5) -> float:
    """mmcv's poly policy (power 1, min_lr 0) with linear warm-up, as DAFormer ran it."""
    regular = base * (1 - t / 40000)
    if t >= 1500:
        return regular
    return regular * (1 - (1 - t / 1500) * (1 - 1e-6))


def test_schedule_reproduces_daformers_learning_rate():
    cfg = Config.fromfile(SCHEDULE)
    param = torch.nn.Parameter(torch.zeros(1))
    wrapper = build_optim_wrapper(torch.nn.Linear(1, 1), cfg.optim_wrapper)
    wrapper.optimizer.param_groups[0]['params'] = [param]
    schedulers = [PARAM_SCHEDULERS.build(s, default_args=dict(optimizer=wrapper))
                  for s in cfg.param_scheduler]
    checks = {0, 1, 2, 750, 1499, 1500, 1501, 20000, 39999}
    for t in range(40000):
        if t in checks:
            lr = wrapper.optimizer.param_groups[0]['lr']
            assert lr == pytest.approx(_daformer_lr(t), rel=1e-6, abs=1e-15), t
        for scheduler in schedulers:
            scheduler.step()


def test_parameter_groups_follow_daformer(configs):
    cfg = Config.fromfile(osp.join(configs, 'synthetic/daformer_tiny.py'))
    dacs = MODELS.build(cfg.model)
    schedule = Config.fromfile(SCHEDULE)
    wrapper = build_optim_wrapper(dacs, schedule.optim_wrapper)
    groups = {}
    names = {id(p): n for n, p in dacs.named_parameters()}
    for group in wrapper.optimizer.param_groups:
        for p in group['params']:
            groups[names[id(p)]] = (group['lr'], group['weight_decay'])
    assert groups['model.decode_head.conv_seg.weight'] == pytest.approx((6e-4, 0.01))
    assert groups['model.decode_head.fusion.0.bn.weight'] == pytest.approx((6e-4, 0.01))
    assert groups['model.backbone.layers.0.0.projection.weight'] == (6e-5, 0.01)
    assert groups['model.backbone.layers.1.1.0.attn.attn.in_proj_weight'] == (6e-5, 0.01)
    for name in ('layers.0.0.norm.weight', 'layers.2.1.0.norm1.bias',
                 'layers.1.1.0.attn.norm.weight', 'layers.0.2.weight', 'layers.3.2.bias'):
        assert groups[f'model.backbone.{name}'] == (6e-5, 0.0), name
