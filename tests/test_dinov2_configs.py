"""The DINOv2 configs (DACS, HRDA, MIC, ICCLD with ViT-B/14 and ViT-L/14, and the tiny
synthetic ones): what they swap in, and one training iteration each on the CPU at a reduced
crop with random weights instead of the pretrained file."""
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmseg.registry import MODELS
from mmseg.utils import register_all_modules

import mmseg_iccld  # noqa: F401
from mmseg_iccld.engine.pretrained_files import check_pretrained_files
from tiny_models import random_uda_batch

register_all_modules(init_default_scope=True)
torch.set_num_threads(1)

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
METHODS = ('daformer', 'hrda', 'mic', 'iccld')
SIZES = {'b': ('base', 768, 12, 7.07e-06), 'l': ('large', 1024, 24, 1.41e-06)}


def load(name: str) -> Config:
    return Config.fromfile(osp.join(REPO, 'configs', name))


def model_optim(cfg: Config) -> dict:
    """The optimizer-wrapper config of the segmentor (ICCLD's 'model' entry)."""
    return cfg.optim_wrapper.model if 'model' in cfg.optim_wrapper else cfg.optim_wrapper


def head_channels(segmentor) -> list:
    head = segmentor.decode_head
    return list((head.single_scale_head if 'single_scale_head' in head else head).in_channels)


@pytest.mark.parametrize('method', METHODS)
@pytest.mark.parametrize('size', sorted(SIZES))
def test_configs_swap_in_dinov2_and_keep_the_rest_of_the_method(method, size):
    arch, channels, depth, lr = SIZES[size]
    cfg = load(f'{method}/gta2cs_dinov2_{size}.py')
    base = load(f'{method}/gta2cs.py')
    segmentor = cfg.model.model
    assert segmentor.backbone.type == 'DINOv2' and segmentor.backbone.arch == arch
    assert segmentor.backbone.init_cfg.checkpoint == \
        f'pretrained/dinov2_vit{size}14_pretrain.pth'
    assert head_channels(segmentor) == [channels] * 4
    if method == 'iccld':
        assert list(segmentor.neck.in_channels) == [channels] * 4
        assert cfg.optim_wrapper.discriminator == base.optim_wrapper.discriminator
    optim = model_optim(cfg)
    assert optim.constructor == 'LayerDecayOptimWrapperConstructor'
    assert optim.optimizer.lr == lr and optim.optimizer.weight_decay == 0.01
    assert (optim.paramwise_cfg.num_layers, optim.paramwise_cfg.layer_decay_rate) == (depth, 0.9)
    assert optim.paramwise_cfg.custom_keys.head.lr_mult == 10.0
    assert cfg.model.imnet_feature_dist_lambda == 0.0
    # everything else is the method's config
    assert cfg.model.type == base.model.type and cfg.model.alpha == base.model.alpha
    assert cfg.train_dataloader == base.train_dataloader
    assert cfg.param_scheduler == base.param_scheduler and cfg.train_cfg == base.train_cfg
    assert segmentor.type == base.model.model.type


def one_iteration(cfg: Config) -> dict:
    """Build the UDA model of ``cfg`` with random weights at a 128x128 crop (64x64 detail
    crops) and run one training step on one image per domain."""
    segmentor = cfg.model.model
    segmentor.backbone.init_cfg = None
    if 'hr_crop_size' in segmentor:
        segmentor.hr_crop_size = (64, 64)
        segmentor.test_cfg.update(crop_size=(128, 128), stride=(64, 64))
    cfg.model.pseudo_margins = (0, 0, 0, 0)
    torch.manual_seed(0)
    uda = MODELS.build(cfg.model).train()
    if cfg.model.type == 'ICCLDUDA':
        cfg.model.adv_margins = (0, 8, 0, 0)
        uda.adv_margins = (0, 8, 0, 0)
        uda.set_phase(2, lambda_adv=0.1)
    optim = build_optim_wrapper(uda, cfg.optim_wrapper)
    label = torch.zeros(1, 1, 128, 128, dtype=torch.long)
    label[:, :, 64:] = 10
    return uda.train_step(random_uda_batch(label, 0), optim)


@pytest.mark.parametrize('method', METHODS)
@pytest.mark.parametrize('size', sorted(SIZES))
def test_config_trains_one_iteration_on_a_reduced_crop(method, size):
    log_vars = one_iteration(load(f'{method}/gta2cs_dinov2_{size}.py'))
    keys = {'daformer': ['src.decode.loss_ce', 'mix.decode.loss_ce'],
            'hrda': ['src.decode.hr.loss_ce', 'mix.decode.hr.loss_ce'],
            'mic': ['src.decode.hr.loss_ce', 'masked.decode.hr.loss_ce'],
            'iccld': ['src.decode.loss_ce', 'src.loss_ldm', 'mix.loss_adv_gen', 'dis.loss']}
    for key in keys[method]:
        assert key in log_vars and torch.isfinite(log_vars[key]), (key, sorted(log_vars))


@pytest.mark.parametrize('size', sorted(SIZES))
def test_vfm_uda_config_is_the_lightweight_head_on_the_last_block(size):
    arch, channels, depth, _ = SIZES[size]
    cfg = load(f'vfm_uda/gta2cs_{size}.py')
    segmentor = cfg.model.model
    backbone = segmentor.backbone
    assert (backbone.arch, backbone.pyramid, backbone.input_scale) == (arch, False, 1.1)
    assert 'out_indices' not in backbone  # the last block
    assert segmentor.decode_head.type == 'VFMUDAHead'
    assert segmentor.decode_head.in_channels == channels
    assert segmentor.test_cfg == dict(mode='slide', crop_size=(1024, 1024), stride=(512, 512))
    assert cfg.model.type == 'DACS' and cfg.model.imnet_feature_dist_lambda == 0.0
    assert cfg.model.mask_consistency.mask_ratio == 0.7
    assert tuple(cfg.model.pseudo_margins) == (0, 0, 0, 0)
    optim = cfg.optim_wrapper
    # VFM-UDA: 5e-5 * sqrt(batch 2) for the head, 0.1x for the ViT, both sizes; no decay
    assert optim.optimizer.lr == 7.07e-06 and optim.paramwise_cfg.custom_keys.head.lr_mult == 10
    assert (optim.paramwise_cfg.num_layers, optim.paramwise_cfg.layer_decay_rate) == (depth, 1.0)
    for role in ('source', 'target'):
        pipeline = cfg.train_dataloader.dataset[role].pipeline
        resize = [t for t in pipeline if 'Resize' in t.type]
        assert resize == [dict(type='RandomResize', scale=(2560, 1440) if role == 'source' else
                               (2048, 1024), ratio_range=(0.9, 1.1), keep_ratio=True)]
        assert all(t.type != 'PseudoLabelMargins' for t in pipeline)
    log_vars = one_iteration(cfg)
    for key in ('src.decode.loss_ce', 'mix.decode.loss_ce', 'masked.decode.loss_ce'):
        assert key in log_vars and torch.isfinite(log_vars[key]), (key, sorted(log_vars))


@pytest.mark.parametrize('name', ['synthetic/daformer_dinov2_tiny.py',
                                  'synthetic/source_only_dinov2_tiny.py'])
def test_tiny_configs_need_no_pretrained_file_and_train_one_iteration(name, tmp_path,
                                                                      monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = load(name)
    check_pretrained_files(cfg)
    segmentor = cfg.model.model if cfg.model.type == 'DACS' else cfg.model
    assert segmentor.backbone.type == 'DINOv2' and segmentor.backbone.vit_cfg.num_hidden_layers == 4
    assert cfg.optim_wrapper.paramwise_cfg.num_layers == 4
    torch.manual_seed(0)
    model = MODELS.build(cfg.model).train()
    assert sum(p.numel() for p in segmentor_of(model).parameters()) < 1_000_000
    optim = build_optim_wrapper(model, cfg.optim_wrapper)
    label = torch.zeros(2, 1, 128, 128, dtype=torch.long)
    label[:, :, 64:] = 10
    batch = random_uda_batch(label, 0)
    if cfg.model.type != 'DACS':
        batch = dict(inputs=batch['inputs'], data_samples=batch['data_samples'])
    log_vars = model.train_step(batch, optim)
    assert torch.isfinite(log_vars['decode.loss_ce'] if 'decode.loss_ce' in log_vars
                          else log_vars['src.decode.loss_ce'])


def segmentor_of(model):
    return model.model if hasattr(model, 'teacher') else model
