"""The config check of tools/train.py: every config of the repository passes (its keys and its
values); misspelt keys are found through **kwargs chains; where **kwargs cannot be followed
nothing is flagged."""
import glob
import os.path as osp

import pytest
from mmengine.config import Config
from mmengine.hooks import CheckpointHook, EMAHook, Hook

import mmseg_iccld  # noqa: F401
from mmseg_iccld.engine.config_check import (ConfigKeyError, check_config,
                                             find_config_problems, find_value_problems,
                                             runner_keys)
from mmseg_iccld.engine.signatures import accepted_keywords
from mmseg_iccld.models.decode_heads.daformer_head import DAFormerHead
from mmseg_iccld.models.uda.iccld_uda import ICCLDUDA

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIGS = sorted(glob.glob(osp.join(REPO, 'configs', '**', '*.py'), recursive=True))


def test_every_config_of_the_repository_passes():
    assert len(CONFIGS) > 20
    for path in CONFIGS:
        cfg = Config.fromfile(path)
        assert find_config_problems(cfg) == [], path
        assert find_value_problems(cfg) == [], path


def test_misspelt_keys_anywhere_in_a_uda_config_are_named():
    path = osp.join(REPO, 'configs/iccld/gta2cs.py')
    cfg = Config.fromfile(path)
    cfg.merge_from_dict({
        'model.model.decode_head.num_clases': 19,  # InterCoderHead -> BaseDecodeHead
        'model.model.backbone.embed_dim': 64,
        'optim_wrapper.discriminator.optimizer.beta': (0.9, 0.99),  # a child of the dict
        'param_scheduler.model.0.strat_factor': 1e-6,
        'custom_hooks.0.switch_itr': 3})
    with pytest.raises(ConfigKeyError) as error:
        check_config(cfg, path)
    assert str(error.value) == (
        f'config {path}: model.model.backbone.embed_dim is not an argument of '
        'MixVisionTransformerSDPA (did you mean embed_dims?); model.model.decode_head.num_clases '
        'is not an argument of InterCoderHead (did you mean num_classes?); '
        'custom_hooks.0.switch_itr is not an argument of ICCLDPhaseHook (did you mean '
        'switch_iter?); optim_wrapper.discriminator.optimizer.beta is not an argument of Adam '
        '(did you mean betas?); param_scheduler.model.0.strat_factor is not an argument of '
        'LinearLR (did you mean start_factor?)')


def test_kwargs_are_followed_through_base_classes_and_known_targets():
    head = accepted_keywords(DAFormerHead)
    assert {'embed_dims', 'num_classes', 'in_channels', 'loss_decode'} <= head
    uda = accepted_keywords(ICCLDUDA)  # its **kwargs go to DACS, then UDAModel
    assert {'discriminator', 'alpha', 'nonfinite', 'channels_last'} <= uda
    assert 'nonfinte' not in uda
    # CheckpointHook keeps its **kwargs for Runner.save_checkpoint
    assert {'interval', 'max_keep_ckpts', 'meta'} <= accepted_keywords(CheckpointHook)
    assert 'intervl' not in accepted_keywords(CheckpointHook)
    assert accepted_keywords(EMAHook) is None  # they build the EMA model: not followed


class _Stores(Hook):

    def __init__(self, a=1, **kwargs):
        self.options = kwargs


class _Swallows(Hook):

    def __init__(self, a=1, **kwargs):
        pass


class _Reads(_Swallows):

    def __init__(self, b=2, **kwargs):
        self.c = kwargs.pop('c', 3)
        if 'd' in kwargs:
            self.d = kwargs['d']
        super().__init__(**kwargs)


class _Explicit(Hook):

    def __init__(self, e=0, **kwargs):
        _Reads.__init__(self, **kwargs)


def test_kwargs_uses():
    assert accepted_keywords(_Stores) is None
    assert accepted_keywords(_Swallows) == {'a'}
    assert accepted_keywords(_Reads) == {'a', 'b', 'c', 'd'}
    assert accepted_keywords(_Explicit) == {'a', 'b', 'c', 'd', 'e'}


def test_where_kwargs_cannot_be_followed_nothing_is_flagged(tmp_path):
    path = tmp_path / 'ema.py'
    path.write_text("default_scope = 'mmseg'\n"
                    "custom_hooks = [dict(type='EMAHook', momentum=0.001, priority=49)]\n")
    assert find_config_problems(Config.fromfile(str(path))) == []


def test_helper_variables_of_a_config_are_not_unknown_keys(tmp_path):
    (tmp_path / 'base.py').write_text('size = (64, 64)\nunused_typo = 1\n')
    path = tmp_path / 'child.py'
    path.write_text("_base_ = ['./base.py']\n"
                    "scale = 2\n"
                    "pipeline = [dict(type='Resize', scale=scale)]\n"
                    "train_cfgg = dict(max_iters=10)\n"
                    "crop = _base_.size\n"
                    "train_dataloader = dict(batch_size=2, dataset=dict(pipeline=pipeline))\n")
    problems = find_config_problems(Config.fromfile(str(path)))
    # scale is read by pipeline, pipeline by the dataloader, size by crop; nothing reads crop
    assert problems == ['unknown top-level key unused_typo',
                        'unknown top-level key train_cfgg (did you mean train_cfg?)',
                        'unknown top-level key crop']


def test_the_top_level_keys_are_the_runners():
    keys = runner_keys()
    assert {'train_cfg', 'default_hooks', 'load_from', 'resume', 'randomness',
            'model_wrapper_cfg', 'load_strict'} <= keys
    assert 'cfg' not in keys and 'self' not in keys
