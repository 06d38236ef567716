"""SegFormer's MiT with fused attention kernels.

mmseg's ``EfficientMultiheadAttention`` calls ``torch.nn.MultiheadAttention`` with its
default ``need_weights=True``. To return the head-averaged attention map, torch then takes its
unfused path: the ``(N, heads, L, S)`` score matrix is materialised, soft-maxed and kept for
the backward pass. MiT never uses that map. With ``need_weights=False`` torch computes the
same attention with ``scaled_dot_product_attention``, which dispatches to the fused kernels
(flash or memory-efficient attention on a GPU, a fused CPU kernel otherwise).

``MixVisionTransformerSDPA`` is mmseg's ``MixVisionTransformer`` with that one change: the
same arguments, parameters and state-dict keys (MiT checkpoints load unchanged), and the same
outputs up to floating-point rounding.
"""
import torch.nn as nn
from mmseg.models.backbones import MixVisionTransformer
from mmseg.models.backbones.mit import EfficientMultiheadAttention
from mmseg.registry import MODELS


class AttentionWithoutWeights(nn.MultiheadAttention):
    """``nn.MultiheadAttention`` that never returns (or computes) the attention map."""

    def forward(self, query, key, value, **kwargs):
        kwargs['need_weights'] = False
        return super().forward(query, key, value, **kwargs)


def use_fused_attention(module: nn.Module) -> int:
    """Switch every MiT attention inside ``module`` to the fused kernels, in place.

    Only the class of the inner ``nn.MultiheadAttention`` changes; parameters stay.

    Args:
        module: Any module containing mmseg's ``EfficientMultiheadAttention`` layers.

    Returns:
        The number of attention layers switched.
    """
    switched = 0
    for layer in module.modules():
        if isinstance(layer, EfficientMultiheadAttention) and isinstance(
                layer.attn, nn.MultiheadAttention):
            layer.attn.__class__ = AttentionWithoutWeights
            switched += 1
    return switched


@MODELS.register_module()
class MixVisionTransformerSDPA(MixVisionTransformer):
    """mmseg's ``MixVisionTransformer`` whose attention runs through fused kernels.

    Takes the arguments of ``MixVisionTransformer``.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if use_fused_attention(self) != sum(len(layer[1]) for layer in self.layers):
            raise RuntimeError('not every MiT attention layer could be switched to the '
                               'fused kernels')
