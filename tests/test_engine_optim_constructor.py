"""MultiOptimWrapperConstructor: one optimizer per named child, per-child paramwise
settings, per-optimizer schedules through mmengine's runner."""
import pytest
import torch
import torch.nn as nn
from mmengine.optim import OptimWrapperDict, build_optim_wrapper
from mmengine.registry import init_default_scope

import mmseg_iccld  # noqa: F401


class _Gan(nn.Module):

    def __init__(self):
        super().__init__()
        self.model = nn.Sequential()
        self.model.add_module('backbone', nn.Linear(2, 2))
        self.model.add_module('decode_head', nn.Linear(2, 2))
        self.discriminator = nn.Linear(2, 3)
        self.teacher = nn.Linear(2, 2)  # not optimised


def _build(cfg):
    init_default_scope('mmseg')
    return build_optim_wrapper(_Gan(), cfg)


def test_one_optimizer_per_named_child_with_its_own_paramwise_cfg():
    gan = _Gan()
    init_default_scope('mmseg')
    wrappers = build_optim_wrapper(
        gan,
        dict(
            constructor='MultiOptimWrapperConstructor',
            model=dict(
                type='OptimWrapper',
                optimizer=dict(type='AdamW', lr=6e-5, weight_decay=0.01),
                paramwise_cfg=dict(custom_keys=dict(head=dict(lr_mult=10.0)))),
            discriminator=dict(
                type='OptimWrapper', optimizer=dict(type='Adam', lr=1e-4, betas=(0.5, 0.999)))))
    assert isinstance(wrappers, OptimWrapperDict)
    assert sorted(wrappers.keys()) == ['discriminator', 'model']

    model_groups = wrappers['model'].optimizer.param_groups
    lr_of = {id(p): g['lr'] for g in model_groups for p in g['params']}
    assert lr_of[id(gan.model.backbone.weight)] == pytest.approx(6e-5)
    assert lr_of[id(gan.model.decode_head.weight)] == pytest.approx(6e-4)
    model_params = {id(p) for g in model_groups for p in g['params']}
    assert model_params == {id(p) for p in gan.model.parameters()}

    disc = wrappers['discriminator'].optimizer
    assert isinstance(disc, torch.optim.Adam)
    assert {id(p) for g in disc.param_groups for p in g['params']} == {
        id(p) for p in gan.discriminator.parameters()}
    assert disc.param_groups[0]['betas'] == (0.5, 0.999)
    # the teacher belongs to no optimizer
    owned = model_params | {id(p) for g in disc.param_groups for p in g['params']}
    assert not owned & {id(p) for p in gan.teacher.parameters()}


def test_unknown_child_and_misplaced_paramwise_cfg_are_clear_errors():
    with pytest.raises(KeyError, match='no child module "generator"'):
        _build(dict(constructor='MultiOptimWrapperConstructor',
                    generator=dict(optimizer=dict(type='SGD', lr=0.1))))
    with pytest.raises(ValueError, match='paramwise_cfg'):
        _build(dict(constructor='MultiOptimWrapperConstructor',
                    model=dict(optimizer=dict(type='SGD', lr=0.1)),
                    paramwise_cfg=dict(custom_keys={})))
    with pytest.raises(ValueError, match='optim_wrapper.model'):
        _build(dict(constructor='MultiOptimWrapperConstructor', model=dict(lr=0.1)))
