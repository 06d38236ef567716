"""MIC configs: HRDA + masked image consistency, and the tiny one on the benchmark."""
import os.path as osp

import torch
from mmengine.config import Config
from mmengine.runner import Runner
from mmseg.utils import register_all_modules

import mmseg_iccld  # noqa: F401
from tiny_models import on_benchmark

register_all_modules(init_default_scope=True)
torch.set_num_threads(1)

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))


def load(name: str) -> Config:
    return Config.fromfile(osp.join(REPO, 'configs', name))


def test_mic_config_is_hrda_plus_masked_image_consistency():
    mic, hrda = load('mic/gta2cs.py'), load('hrda/gta2cs.py')
    model = mic.model.to_dict()
    masking = model.pop('mask_consistency')
    assert masking == dict(mask_ratio=0.7, mask_block_size=64, loss_weight=1.0,
                           color_augmentation=True)
    assert model == hrda.model.to_dict()
    assert (mic.model.alpha, mic.model.pseudo_threshold) == (0.999, 0.968)
    assert mic.model.model.type == 'HRDAEncoderDecoder'
    assert mic.train_dataloader == hrda.train_dataloader
    assert mic.param_scheduler == hrda.param_scheduler and mic.train_cfg == hrda.train_cfg


def test_tiny_mic_keeps_the_patch_grid_and_trains_on_the_benchmark(synthetic_benchmark,
                                                                   tmp_path):
    cfg, hrda = load('synthetic/mic_tiny.py'), load('synthetic/hrda_tiny.py')
    masking = cfg.model.mask_consistency
    # 16x16 patches of 16 pixels on 256x256 crops, as MIC's 64-pixel ones on 1024x1024
    assert cfg.crop_size[0] // masking.mask_block_size == 1024 // 64
    assert (masking.mask_ratio, masking.loss_weight, masking.color_augmentation) == \
        (0.7, 1.0, True)
    assert cfg.model.model == hrda.model.model

    on_benchmark(cfg, synthetic_benchmark, str(tmp_path))
    runner = Runner.from_cfg(cfg)
    runner.train()
    scalars = runner.message_hub.log_scalars
    for key in ('train/src.decode.hr.loss_ce', 'train/mix.decode.loss_ce',
                'train/masked.decode.loss_ce', 'train/masked.decode.hr.loss_ce',
                'train/masked.decode.acc_seg', 'val/mIoU'):
        assert key in scalars, key
    total = sum(scalars[k].current() for k in scalars
                if k.startswith('train/') and 'loss' in k and k != 'train/loss')
    assert abs(scalars['train/loss'].current() - total) < 1e-4 * max(1.0, total)
    assert (tmp_path / 'iter_2.pth').exists()
