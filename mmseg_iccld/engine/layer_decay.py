"""Layer-wise learning-rate decay for ViT backbones (BEiT's rule, as VFM-UDA++ fine-tunes DINOv2).

Parameter names are those of transformers' ViTs, as the DINOv2 backbone holds them
(``backbone.vit.embeddings...``, ``backbone.vit.encoder.layer.<i>...``). With ``L``
transformer blocks, the embeddings (patch projection, position embeddings, class and register
tokens) are layer 0, block ``i`` (``encoder.layer.<i>.``, counted from 0) is layer ``i + 1``,
and everything else is the top layer ``L + 1``: the backbone's other parameters (the final
norm, the feature pyramid) and every parameter outside the backbone (heads, necks, UNet,
discriminator). A parameter of layer ``l`` learns at::

    lr = base_lr * lr_mult * layer_decay_rate ** (L + 1 - l)

where ``lr_mult`` (and ``decay_mult``) come from ``custom_keys`` as mmengine's default
constructor matches them (the existing schedules' head / neck / diffusion ``lr_mult=10``).
Weight decay is ``base_wd * decay_mult``, and 0 for norms, biases, layer scales (every
parameter of at most one dimension), the position embeddings and the tokens.

A backbone parameter is one whose name has a ``backbone`` component (``backbone.vit...``,
``model.backbone.vit...`` inside a UDA wrapper). Frozen parameters (the EMA teacher, the
ImageNet-feature copy) are left out of the optimizer.

Example:
    optim_wrapper = dict(
        type='OptimWrapper',
        constructor='LayerDecayOptimWrapperConstructor',
        optimizer=dict(type='AdamW', lr=1e-5, weight_decay=0.01),
        paramwise_cfg=dict(num_layers=12, layer_decay_rate=0.9,
                           custom_keys=dict(head=dict(lr_mult=10.0))))

Under ``MultiOptimWrapperConstructor`` the same goes into the child's config, e.g.
``optim_wrapper.model.constructor``.
"""
import re
from typing import List, Optional, Tuple

import torch.nn as nn
from mmengine.optim import DefaultOptimWrapperConstructor
from mmseg.registry import OPTIM_WRAPPER_CONSTRUCTORS

_BACKBONE = re.compile(r'(?:^|\.)backbone\.(.*)$')
_BLOCK = re.compile(r'(?:^|\.)encoder\.layer\.(\d+)\.')
_EMBEDDINGS = re.compile(r'(?:^|\.)embeddings\.')
_NO_DECAY = re.compile(
    r'(?:^|\.)(?:position_embeddings|cls_token|register_tokens|mask_token)$')


def layer_id(name: str, num_layers: int) -> int:
    """The layer of a parameter for the decay (0 = embeddings, ``num_layers + 1`` = top).

    Args:
        name: The parameter's full name in the module given to the constructor.
        num_layers: Number of transformer blocks of the backbone.

    Returns:
        The layer id.
    """
    inner = _BACKBONE.search(name)
    if inner is None:
        return num_layers + 1
    inner_name = inner.group(1)
    if _EMBEDDINGS.search(inner_name):
        return 0
    block = _BLOCK.search(inner_name)
    if block is not None:
        index = int(block.group(1))
        if index >= num_layers:
            raise ValueError(f'{name} is block {index}, but num_layers is {num_layers}')
        return index + 1
    return num_layers + 1


def has_no_weight_decay(name: str, param: nn.Parameter) -> bool:
    """Norm weights, biases, layer scales (at most 1-d), position embeddings and tokens."""
    return param.ndim <= 1 or name.endswith('.bias') or bool(_NO_DECAY.search(name))


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class LayerDecayOptimWrapperConstructor(DefaultOptimWrapperConstructor):
    """Optimizer-wrapper constructor with layer-wise learning-rate decay (module docstring).

    Args:
        optim_wrapper_cfg: The optimizer-wrapper config (``optimizer`` with ``lr`` and
            ``weight_decay``).
        paramwise_cfg: ``num_layers`` (the backbone's block count), ``layer_decay_rate`` (1
            turns the decay off) and optionally mmengine's ``custom_keys`` (``lr_mult``,
            ``decay_mult``); other mmengine paramwise options are not supported.
    """

    def __init__(self, optim_wrapper_cfg: dict, paramwise_cfg: Optional[dict] = None):
        paramwise_cfg = dict(paramwise_cfg or {})
        unknown = set(paramwise_cfg) - {'num_layers', 'layer_decay_rate', 'custom_keys'}
        if unknown or 'num_layers' not in paramwise_cfg or \
                'layer_decay_rate' not in paramwise_cfg:
            raise ValueError('LayerDecayOptimWrapperConstructor: paramwise_cfg needs '
                             'num_layers and layer_decay_rate (and may have custom_keys), got '
                             f'{sorted(paramwise_cfg)}')
        self.num_layers = int(paramwise_cfg['num_layers'])
        self.layer_decay_rate = float(paramwise_cfg['layer_decay_rate'])
        # kept in paramwise_cfg: a non-empty one makes the base class call add_params
        super().__init__(optim_wrapper_cfg, paramwise_cfg)
        if self.base_wd is None:
            self.base_wd = 0.0

    def _custom_mults(self, name: str) -> Tuple[float, float]:
        """``(lr_mult, decay_mult)`` of the first matching custom key, mmengine's order."""
        custom_keys = self.paramwise_cfg.get('custom_keys', {})
        # as DefaultOptimWrapperConstructor: alphabetical, then the longest key first
        for key in sorted(sorted(custom_keys), key=len, reverse=True):
            if key in name:
                return (custom_keys[key].get('lr_mult', 1.0),
                        custom_keys[key].get('decay_mult', 1.0))
        return 1.0, 1.0

    def param_settings(self, name: str, param: nn.Parameter) -> Tuple[int, float, float]:
        """The layer id, learning rate and weight decay of one parameter.

        Args:
            name: Its full name in the module given to the constructor.
            param: The parameter.

        Returns:
            ``(layer id, lr, weight_decay)``.
        """
        layer = layer_id(name, self.num_layers)
        lr_mult, decay_mult = self._custom_mults(name)
        scale = self.layer_decay_rate ** (self.num_layers + 1 - layer)
        weight_decay = 0.0 if has_no_weight_decay(name, param) else self.base_wd * decay_mult
        return layer, self.base_lr * lr_mult * scale, weight_decay

    def add_params(self, params: List[dict], module: nn.Module, prefix: str = '',
                   **kwargs) -> None:
        """Append one parameter group per (layer, lr, weight decay) to ``params``.

        Args:
            params: The list of parameter groups, extended in place.
            module: The module whose trainable parameters are added.
            prefix: Prefix of the parameter names.
        """
        groups = {}
        for name, param in module.named_parameters(prefix=prefix.rstrip('.')):
            if not param.requires_grad:
                continue
            layer, lr, weight_decay = self.param_settings(name, param)
            key = (layer, lr, weight_decay)
            if key not in groups:
                groups[key] = dict(params=[], param_names=[], lr=lr, weight_decay=weight_decay,
                                   layer_id=layer)
            groups[key]['params'].append(param)
            groups[key]['param_names'].append(name)
        params.extend(groups.values())


__all__ = ['LayerDecayOptimWrapperConstructor', 'layer_id', 'has_no_weight_decay']
