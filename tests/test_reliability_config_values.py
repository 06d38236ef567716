"""tools/train.py on config values that cannot work, each one line before anything is built:
a model whose classes are not the data's, a string where a number belongs, a schedule with
nothing to do, a _base_ loop, a --cfg-options value mmengine cannot read, and misspelt keys of
paramwise_cfg and of the dataloaders."""
import argparse
import inspect
import os.path as osp
from typing import Optional, Union

import pytest
import torch
from mmengine.config import Config
from mmseg.datasets import CityscapesDataset
from test_reliability_training import GuardedRegressor, run_train, write_config

import mmseg_iccld  # noqa: F401
from mmseg_iccld.datasets.gta import GTA5Dataset
from mmseg_iccld.engine.cfg_options import CfgOptionsAction, ConfigOptionError
from mmseg_iccld.engine.config_check import (ConfigKeyError, check_config,
                                             find_config_problems, find_value_problems)
from mmseg_iccld.engine.config_classes import class_count_problems
from mmseg_iccld.engine.config_files import ConfigBaseCycleError, find_base_cycle
from mmseg_iccld.engine.config_keys import read_keys
from mmseg_iccld.engine.config_values import ConfigValueError, expected_type

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
DAFORMER_TINY = osp.join(REPO, 'configs/synthetic/daformer_tiny.py')
ICCLD_TINY = osp.join(REPO, 'configs/synthetic/iccld_tiny.py')
HRDA_TINY = osp.join(REPO, 'configs/synthetic/hrda_tiny.py')


def _stops_before_building(tmp_path, monkeypatch, capsys, config, options, error, line,
                           tool_args=()):
    """Run tools/train.py; it must exit 1 with ``error: ERROR: config CONFIG: LINE`` and
    leave no work dir and no model behind."""
    work_dir = tmp_path / 'run'
    built = GuardedRegressor.instances
    status, _, err = run_train(monkeypatch, capsys, config, '--work-dir', str(work_dir),
                               *tool_args, options=options)
    assert status == 1
    assert err.splitlines()[0] == f'error: {error}: config {config}: {line}'
    assert GuardedRegressor.instances == built
    assert not work_dir.exists()


def _value_problems(path, **options):
    cfg = Config.fromfile(path)
    cfg.merge_from_dict(options)
    assert find_config_problems(cfg) == []
    return find_value_problems(cfg)


# the model's classes against the datasets'


def test_a_head_of_other_classes_than_the_uda_data_stops_train(tmp_path, monkeypatch, capsys):
    classes = len(GTA5Dataset.METAINFO['classes'])
    _stops_before_building(
        tmp_path, monkeypatch, capsys, DAFORMER_TINY,
        ['model.model.decode_head.num_classes=10'], 'ConfigValueError',
        f'model.model.decode_head.num_classes is 10 but train_dataloader.dataset.source has '
        f'{classes} classes (GTA5Dataset)')


def test_every_num_classes_of_the_model_is_compared():
    classes = len(GTA5Dataset.METAINFO['classes'])
    reference = f'train_dataloader.dataset.source has {classes} classes (GTA5Dataset)'
    # ICCLD: the diffusion codes the classes too
    assert _value_problems(ICCLD_TINY, **{'model.model.diffusion.num_classes': 7}) == [
        f'model.model.diffusion.num_classes is 7 but {reference}']
    # HRDA: the head inside the scale-attention head
    assert _value_problems(
        HRDA_TINY, **{'model.model.decode_head.single_scale_head.num_classes': 5}) == [
        f'model.model.decode_head.single_scale_head.num_classes is 5 but {reference}']


def test_metainfo_classes_and_lists_of_heads(tmp_path):
    path = tmp_path / 'plain.py'
    path.write_text("""
default_scope = 'mmseg'
model = dict(type='EncoderDecoder',
             decode_head=dict(type='FCNHead', num_classes=3),
             auxiliary_head=[dict(type='FCNHead', num_classes=3),
                             dict(type='FCNHead', num_classes=4)])
train_dataloader = dict(dataset=dict(type='CityscapesDataset',
                                     metainfo=dict(classes=('a', 'b', 'c'))))
val_dataloader = dict(dataset=dict(type='CityscapesDataset'))
""")
    cfg = Config.fromfile(str(path))
    resolve = {'CityscapesDataset': CityscapesDataset}
    problems = class_count_problems(cfg, lambda kind, name: resolve.get(name))
    reference = 'train_dataloader.dataset has 3 classes (metainfo.classes)'
    assert problems == [
        f'model.auxiliary_head.1.num_classes is 4 but {reference}',
        f'val_dataloader.dataset has {len(CityscapesDataset.METAINFO["classes"])} classes '
        f'(CityscapesDataset) but {reference}']


def test_without_datasets_the_heads_are_compared_with_each_other():
    cfg = Config(dict(model=dict(decode_head=dict(num_classes=19),
                                 auxiliary_head=dict(num_classes=18))))
    assert class_count_problems(cfg, lambda kind, name: None) == [
        'model.auxiliary_head.num_classes is 18 but model.decode_head.num_classes is 19']


# values of a type their class cannot take


@pytest.mark.parametrize('option, line', [
    ('train_cfg.max_iters=abc', "train_cfg.max_iters is 'abc', not an int (IterBasedTrainLoop)"),
    ('optim_wrapper.optimizer.lr=fast', "optim_wrapper.optimizer.lr is 'fast', not a number "
     "(AdamW)"),
    ('optim_wrapper.optimizer.betas=(0.9,fast)', "optim_wrapper.optimizer.betas is "
     "(0.9, 'fast'), not a sequence of numbers (AdamW)"),
    ('default_hooks.checkpoint.interval=2.5', 'default_hooks.checkpoint.interval is 2.5, not an '
     'int (CheckpointHook)'),
    ('param_scheduler.end=None', 'param_scheduler.end is None, not an int (LinearLR)'),
])
def test_a_string_where_a_number_belongs_stops_train(tmp_path, monkeypatch, capsys, option,
                                                     line):
    config = write_config(tmp_path)
    _stops_before_building(tmp_path, monkeypatch, capsys, config, [option], 'ConfigValueError',
                           line)


def test_a_string_switch_iter_of_iccld_stops_train(tmp_path, monkeypatch, capsys):
    _stops_before_building(tmp_path, monkeypatch, capsys, ICCLD_TINY,
                           ['custom_hooks.0.switch_iter=abc'], 'ConfigValueError',
                           "custom_hooks.0.switch_iter is 'abc', not an int (ICCLDPhaseHook)")


def _parameter(annotation=inspect.Parameter.empty, default=inspect.Parameter.empty):
    return inspect.Parameter('x', inspect.Parameter.KEYWORD_ONLY, annotation=annotation,
                             default=default)


def test_the_expected_type_comes_from_the_annotation_else_the_default():
    assert expected_type(_parameter(int)) == ('an int', False)
    assert expected_type(_parameter(Optional[int], None)) == ('an int', True)
    assert expected_type(_parameter(Union[float, torch.Tensor], 1e-3)) == ('a number', False)
    assert expected_type(_parameter('Optional[float]', 0.5)) == ('a number', True)
    assert expected_type(_parameter('int | None')) == ('an int', True)
    assert expected_type(_parameter(float, 0)) == ('a number', False)  # eta_min: float = 0
    assert expected_type(_parameter(default=3)) == ('a number', True)
    assert expected_type(_parameter(default=(0.9, 0.999))) == ('a sequence of numbers', False)
    assert expected_type(_parameter(Union[int, str], 1)) is None  # a string is fine
    assert expected_type(_parameter(str, 'dynamic')) is None
    assert expected_type(_parameter(bool, True)) is None
    assert expected_type(_parameter(default='a')) is None


# nothing to do


@pytest.mark.parametrize('max_iters', [-5, 0])
def test_a_schedule_with_nothing_to_train_stops_train(tmp_path, monkeypatch, capsys, max_iters):
    config = write_config(tmp_path)
    _stops_before_building(tmp_path, monkeypatch, capsys, config,
                           [f'train_cfg.max_iters={max_iters}'], 'ConfigValueError',
                           f'train_cfg.max_iters is {max_iters}: nothing to train (at least 1)')


def test_an_iccld_switch_beyond_the_schedule_stops_train(tmp_path, monkeypatch, capsys):
    switch_iter = Config.fromfile(ICCLD_TINY).custom_hooks[0].switch_iter
    _stops_before_building(
        tmp_path, monkeypatch, capsys, ICCLD_TINY, [f'train_cfg.max_iters={switch_iter - 1}'],
        'ConfigValueError',
        f'custom_hooks.0.switch_iter is {switch_iter} but train_cfg.max_iters is '
        f'{switch_iter - 1}: the switch lies past the end of the schedule (switch_iter = '
        'max_iters trains phase 1 only)')


@pytest.mark.parametrize('extra', [0, 1])
def test_a_switch_at_or_before_the_end_is_accepted(extra):
    # at the end: the phase-1 control of the results tables; one before: one phase-2 iteration
    switch_iter = Config.fromfile(ICCLD_TINY).custom_hooks[0].switch_iter
    assert _value_problems(ICCLD_TINY, **{'train_cfg.max_iters': switch_iter + extra}) == []


# a _base_ loop and unreadable --cfg-options


def test_a_base_loop_stops_train(tmp_path, monkeypatch, capsys):
    (tmp_path / 'configs').mkdir()
    a, b = tmp_path / 'configs' / 'a.py', tmp_path / 'configs' / 'b.py'
    a.write_text("_base_ = ['./b.py']\n")
    b.write_text("_base_ = ['./a.py']\n")
    _stops_before_building(
        tmp_path, monkeypatch, capsys, str(a), [], 'ConfigBaseCycleError',
        'its _base_ files form a loop: a.py -> b.py -> a.py (a config cannot be its own base; '
        'remove one of these _base_ entries)')


def test_base_loops_are_found_and_shared_bases_are_not_loops(tmp_path):
    for name, bases in {'top': ['left.py', 'right.py'], 'left': ['sub/shared.py'],
                        'right': ['sub/shared.py'], 'self': ['self.py']}.items():
        (tmp_path / f'{name}.py').write_text(f'_base_ = {bases!r}\n')
    (tmp_path / 'sub').mkdir()
    (tmp_path / 'sub/shared.py').write_text("_base_ = '../right.py'\n")
    assert find_base_cycle(str(tmp_path / 'top.py')) == [
        str(tmp_path / n) for n in ('sub/shared.py', 'right.py', 'sub/shared.py')]
    assert find_base_cycle(str(tmp_path / 'self.py')) == [str(tmp_path / 'self.py')] * 2
    (tmp_path / 'sub/shared.py').write_text('x = 1\n')  # a diamond, no loop
    assert find_base_cycle(str(tmp_path / 'top.py')) is None
    with pytest.raises(ConfigBaseCycleError):
        from mmseg_iccld.apis.config_loading import load_config
        load_config(str(tmp_path / 'self.py'))


def _parse(*entries):
    parser = argparse.ArgumentParser()
    parser.add_argument('--cfg-options', nargs='+', action=CfgOptionsAction)
    return parser.parse_args(['--cfg-options', *entries]).cfg_options


def test_cfg_options_mmengine_cannot_read_are_one_line():
    with pytest.raises(ConfigOptionError) as error:
        _parse('train_cfg.max_iters=3', 'model.x=dict(a=1, b=[2,3])')
    assert str(error.value) == (
        "--cfg-options model.x=dict(a=1, b=[2,3]) cannot be read (a dict(...) value is read as "
        "a string); set a dict key by key: model.x.a=1 model.x.b=[2, 3]; lists are written a,b "
        "or [a,b], tuples (a,b)")
    with pytest.raises(ConfigOptionError) as error:
        _parse('model.x=f(1,2)')
    assert str(error.value).startswith('--cfg-options model.x=f(1,2) cannot be read (commas '
                                       'inside brackets that do not enclose the whole value)')
    with pytest.raises(ConfigOptionError, match=r'x=\[1,2 cannot be read \(unbalanced'):
        _parse('x=[1,2')
    with pytest.raises(ConfigOptionError, match='--cfg-options max_iters is not KEY=VALUE'):
        _parse('max_iters')
    # what mmengine reads stays as it reads it
    assert _parse('a.b=1', 'c=[1,(2,x)]', 'd=None', 'e=s') == \
        {'a.b': 1, 'c': [1, (2, 'x')], 'd': None, 'e': 's'}


def test_a_dict_cfg_option_stops_train(tmp_path, monkeypatch, capsys):
    config = write_config(tmp_path)
    status, _, err = run_train(monkeypatch, capsys, config, '--work-dir', str(tmp_path / 'run'),
                               options=['model.nonfinite=dict(policy=skip,max_skips=2)'])
    assert status == 1
    assert err.splitlines()[0] == (
        'error: ConfigOptionError: --cfg-options model.nonfinite=dict(policy=skip,max_skips=2) '
        'cannot be read (a dict(...) value is read as a string); set a dict key by key: '
        'model.nonfinite.policy=skip model.nonfinite.max_skips=2; lists are written a,b or '
        '[a,b], tuples (a,b)')


# misspelt keys of paramwise_cfg and of the dataloaders


@pytest.mark.parametrize('option, line', [
    ('optim_wrapper.paramwise_cfg.bias_lr_mul=2', 'optim_wrapper.paramwise_cfg.bias_lr_mul is '
     'not read by DefaultOptimWrapperConstructor (did you mean bias_lr_mult?)'),
    ('optim_wrapper.paramwise_cfg.custom_keys.linear.lr_mul=10',
     'optim_wrapper.paramwise_cfg.custom_keys.linear.lr_mul is not lr_mult, decay_mult or an '
     'argument of AdamW (did you mean lr_mult?)'),
    ('train_dataloader.num_worker=0', 'train_dataloader.num_worker is not an argument of '
     'DataLoader (did you mean num_workers?)'),
    ('train_dataloader.sampler.shufle=False', 'train_dataloader.sampler.shufle is not an '
     'argument of DefaultSampler (did you mean shuffle?)'),
])
def test_a_misspelt_paramwise_or_dataloader_key_stops_train(tmp_path, monkeypatch, capsys,
                                                            option, line):
    config = write_config(tmp_path)
    _stops_before_building(tmp_path, monkeypatch, capsys, config, [option], 'ConfigKeyError',
                           line)


def test_misspelt_keys_of_uda_dataloaders_and_optimizer_children_are_named():
    cfg = Config.fromfile(ICCLD_TINY)
    cfg.merge_from_dict({
        'optim_wrapper.model.paramwise_cfg.custom_keys.head.lr_mul': 10.0,
        'optim_wrapper.model.paramwise_cfg.norm_decay_mul': 0.0,
        'train_dataloader.dataset.source.data_rot': 'x',
        'val_dataloader.persistent_worker': False})
    assert find_config_problems(cfg) == [
        'optim_wrapper.model.paramwise_cfg.norm_decay_mul is not read by '
        'DefaultOptimWrapperConstructor (did you mean norm_decay_mult?)',
        'optim_wrapper.model.paramwise_cfg.custom_keys.head.lr_mul is not lr_mult, decay_mult '
        'or an argument of AdamW (did you mean lr_mult?)',
        'train_dataloader.dataset.source.data_rot is not an argument of GTA5Dataset (did you '
        'mean data_root?)',
        'val_dataloader.persistent_worker is not an argument of DataLoader (did you mean '
        'persistent_workers?)']


def test_the_keys_builders_read_come_from_their_source():
    def builder(cfg, paramwise_cfg):
        cfg.pop('a')
        if 'b' in paramwise_cfg and paramwise_cfg.get('c', 1):
            return paramwise_cfg['d'], cfg.get(name)  # noqa: F821  (not a constant key)
    assert read_keys(builder, 'paramwise_cfg') == {'b', 'c', 'd'}
    assert read_keys(builder, 'cfg') == {'a'}


def test_the_value_check_leaves_a_good_config_alone(tmp_path):
    cfg = Config.fromfile(write_config(tmp_path))
    check_config(cfg, cfg.filename)
    with pytest.raises(ConfigKeyError):  # keys first: a value check of a misspelt key is moot
        cfg.merge_from_dict({'train_cfg.max_iter': 'abc'})
        check_config(cfg, cfg.filename)
    with pytest.raises(ConfigValueError):
        cfg = Config.fromfile(write_config(tmp_path))
        cfg.merge_from_dict({'train_cfg.max_iters': 'abc'})
        check_config(cfg, cfg.filename)
