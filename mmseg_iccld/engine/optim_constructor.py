"""An optimizer-wrapper constructor that gives named children their own optimizers.

mmengine can run several optimizers (``OptimWrapperDict``) and schedule each one
(``param_scheduler`` as a dict keyed by the same names), but it ships no constructor that
builds them from a config. This one follows the pattern mmagic uses for GANs: each key of the
config names a child module of the model and holds an ordinary optimizer-wrapper config,
``paramwise_cfg`` included.

Example:
    optim_wrapper = dict(
        constructor='MultiOptimWrapperConstructor',
        model=dict(type='OptimWrapper',
                   optimizer=dict(type='AdamW', lr=6e-5, weight_decay=0.01),
                   paramwise_cfg=dict(custom_keys=dict(head=dict(lr_mult=10.)))),
        discriminator=dict(type='OptimWrapper',
                           optimizer=dict(type='Adam', lr=1e-4, betas=(0.5, 0.999))))
"""
from typing import Optional

import torch.nn as nn
from mmengine.model import is_model_wrapper
from mmengine.optim import DefaultOptimWrapperConstructor, OptimWrapperDict
from mmseg.registry import OPTIM_WRAPPER_CONSTRUCTORS


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class MultiOptimWrapperConstructor:
    """Builds an ``OptimWrapperDict`` with one optimizer wrapper per named child.

    Args:
        optim_wrapper_cfg: Mapping from child name to that child's optimizer-wrapper config
            (``type``, ``optimizer``, optional ``paramwise_cfg`` and ``constructor``).
        paramwise_cfg: Must be None: parameter-wise settings belong to each child's config.
    """

    def __init__(self, optim_wrapper_cfg: dict, paramwise_cfg: Optional[dict] = None):
        if paramwise_cfg is not None:
            raise ValueError('MultiOptimWrapperConstructor: put paramwise_cfg inside the '
                             'config of the child it applies to, e.g. '
                             'optim_wrapper.model.paramwise_cfg')
        if not optim_wrapper_cfg:
            raise ValueError('MultiOptimWrapperConstructor needs at least one child config')
        self.constructors = {}
        for name, cfg in optim_wrapper_cfg.items():
            if not isinstance(cfg, dict) or 'optimizer' not in cfg:
                raise ValueError(
                    f'MultiOptimWrapperConstructor: optim_wrapper.{name} must be an optimizer '
                    f'wrapper config with an "optimizer" entry, got {cfg!r}')
            cfg = dict(cfg)
            constructor_type = cfg.pop('constructor', 'DefaultOptimWrapperConstructor')
            child_paramwise_cfg = cfg.pop('paramwise_cfg', None)
            self.constructors[name] = OPTIM_WRAPPER_CONSTRUCTORS.build(
                dict(type=constructor_type, optim_wrapper_cfg=cfg,
                     paramwise_cfg=child_paramwise_cfg))

    def __call__(self, model: nn.Module) -> OptimWrapperDict:
        if is_model_wrapper(model):
            model = model.module
        wrappers = {}
        for name, constructor in self.constructors.items():
            child = getattr(model, name, None)
            if not isinstance(child, nn.Module):
                children = [n for n, _ in model.named_children()]
                raise KeyError(f'MultiOptimWrapperConstructor: {type(model).__name__} has no '
                               f'child module "{name}" (children: {children})')
            if is_model_wrapper(child):
                child = child.module
            wrappers[name] = constructor(child)
        return OptimWrapperDict(**wrappers)


__all__ = ['MultiOptimWrapperConstructor']
