"""DINOv2 (Oquab et al., 2023) as a four-level backbone for the DAFormer, HRDA and ICCLD heads.

The encoder is Hugging Face transformers' ``Dinov2Model`` (``Dinov2WithRegistersModel`` for
the variants with four register tokens), built from its config at DINOv2's sizes (ViT-S/B/L/g,
patch 14, layer scale, SwiGLU FFN for ViT-g) with random weights; nothing is downloaded.
Four blocks, evenly spaced by default (ViT-B: 2, 5, 8, 11 counted from 0, as ViT-Adapter's
interaction stages and DINOv2's own dense heads take them), give token maps that the final
LayerNorm normalises; mmseg's ``Feature2Pyramid`` turns them into four levels (x4 and x2 by
transposed convolutions, x1, x1/2 by max pooling), as for mmseg's BEiT / MAE.

Position embeddings: stored for the ``img_size / 14`` square grid (37 x 37 for 518, the
pretrained files' grid) plus the class token's entry; register tokens have none. At every
forward transformers' ``interpolate_pos_encoding`` resamples the grid part to the input's
``H / 14 x W / 14`` patches (bicubic, ``align_corners=False``, computed in float32, with
antialiasing for the register models and without for the others); the class token's entry is
kept as is. It leaves them unchanged only for a square input of the stored grid.

Strides: the heads expect levels at strides 4, 8, 16, 32 of the input, i.e. ``ceil(H / s) x
ceil(W / s)`` (what MiT gives). With patch 14 the levels come at strides 3.5, 7, 14 and 28
instead. An input not a multiple of 14 is zero-padded at the bottom and right (zero being the
mean colour after normalisation) to the next multiple, so the patches stay aligned with the
top-left corner; each level is then cropped to the cells that overlap the unpadded image
(``ceil(H * r / 14)`` rows at rescale ``r``) and resized bilinearly to ``ceil(H / s)`` rows
(columns alike). Every level thus covers the same image area as the MiT level it replaces.

Without the pyramid (``pyramid=False``, VFM-UDA's lightweight head reads the last block alone)
the taken blocks' token maps are returned as they are, one per ``out_indices`` entry, and the
input is resized instead of padded, so that the maps cover the image exactly (a head's logits
are resized back to it): each side becomes ``floor(side * input_scale / 14) * 14``, as VFM-UDA
feeds its 1024 crops to the ViT at 1120 (``input_scale=1.1``; 1.0 without one).
"""
import math
from typing import List, Optional, Sequence, Tuple

import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModule
from mmseg.models.necks import Feature2Pyramid
from mmseg.registry import MODELS
from torch import Tensor

from .dinov2_weights import load_dinov2_weights

PATCH_SIZE = 14
# DINOv2's official sizes (facebookresearch/dinov2, vit_small / base / large / giant2)
ARCHS = {
    'small': dict(hidden_size=384, num_hidden_layers=12, num_attention_heads=6),
    'base': dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12),
    'large': dict(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16),
    'giant': dict(hidden_size=1536, num_hidden_layers=40, num_attention_heads=24,
                  use_swiglu_ffn=True),
}
# the config fields vit_cfg may set (image and patch size are the backbone's own arguments);
# register models also take num_register_tokens
VIT_CFG_KEYS = ('hidden_size', 'num_hidden_layers', 'num_attention_heads', 'mlp_ratio',
                'use_swiglu_ffn', 'hidden_act', 'qkv_bias', 'layer_norm_eps', 'layerscale_value',
                'drop_path_rate', 'hidden_dropout_prob', 'attention_probs_dropout_prob',
                'initializer_range')
# Feature2Pyramid's rescales and the strides the heads expect of the four levels
RESCALES = (4, 2, 1, 0.5)
STRIDES = (4, 8, 16, 32)


def evenly_spaced_blocks(depth: int, num: int = 4) -> Tuple[int, ...]:
    """The last block of each of ``num`` equal groups of blocks (0-based).

    Args:
        depth: Number of transformer blocks.
        num: Number of groups.

    Returns:
        E.g. ``(2, 5, 8, 11)`` for 12 blocks, ``(5, 11, 17, 23)`` for 24.
    """
    return tuple((i + 1) * depth // num - 1 for i in range(num))


def build_dinov2_vit(arch: str, registers: bool, img_size: int, **vit_cfg) -> nn.Module:
    """transformers' DINOv2 model at one of DINOv2's sizes, randomly initialised.

    Args:
        arch: 'small', 'base', 'large' or 'giant'.
        registers: Whether the model has DINOv2's four register tokens.
        img_size: Input size the position embeddings are stored at (518: the pretrained
            37 x 37 grid).
        **vit_cfg: Fields of ``Dinov2Config`` that replace the arch's (``VIT_CFG_KEYS``, e.g.
            ``hidden_size``, ``num_hidden_layers``, ``num_attention_heads`` for a smaller
            model, ``drop_path_rate``).

    Returns:
        A ``Dinov2Model`` or ``Dinov2WithRegistersModel`` without a mask token (the backbone
        never masks tokens, and a parameter without gradients would stall distributed
        training).

    Raises:
        ValueError: For an unknown arch or a ``vit_cfg`` key that is not a config field.
    """
    if arch not in ARCHS:
        raise ValueError(f'DINOv2 arch must be one of {sorted(ARCHS)}, got {arch!r}')
    allowed = VIT_CFG_KEYS + (('num_register_tokens',) if registers else ())
    unknown = sorted(set(vit_cfg) - set(allowed))
    if unknown:
        raise ValueError(f'DINOv2 vit_cfg takes {", ".join(allowed)}; got {", ".join(unknown)}')
    from transformers import (Dinov2Config, Dinov2Model, Dinov2WithRegistersConfig,
                              Dinov2WithRegistersModel)
    # layer scale starts at 1e-5 as DINOv2 trained (it matters only without pretrained weights)
    fields = dict(ARCHS[arch], layerscale_value=1e-5, **vit_cfg)
    fields.update(image_size=img_size, patch_size=PATCH_SIZE, num_channels=3)
    if registers:
        vit = Dinov2WithRegistersModel(Dinov2WithRegistersConfig(**fields))
        # its config has no use_mask_token: remove the parameter (read only for masking)
        vit.embeddings.mask_token = None
    else:
        vit = Dinov2Model(Dinov2Config(use_mask_token=False, **fields))
    return vit


@MODELS.register_module()
class DINOv2(BaseModule):
    """DINOv2 ViT/14 with four output levels at strides 4, 8, 16 and 32.

    Args:
        arch: 'small', 'base', 'large' or 'giant'.
        registers: Use the variant with four register tokens (``..._reg4_pretrain.pth``).
        img_size: Input size of the stored position embeddings; 518 matches the pretrained
            files (a file at another grid is resampled at load).
        out_indices: The four blocks (0-based) whose outputs make the levels, in the order of
            the levels; None spaces them evenly (:func:`evenly_spaced_blocks`). Without the
            pyramid, any number of blocks; None takes the last.
        norm_outputs: Apply the ViT's final LayerNorm to each taken block output.
        norm_cfg: Normalisation inside ``Feature2Pyramid``'s x4 branch.
        pyramid: Turn four block outputs into levels at strides 4 to 32 (the heads of
            DAFormer, HRDA and ICCLD); False returns the blocks' token maps at stride 14.
        input_scale: Without the pyramid, resize the input by this factor before the ViT
            (each side rounded down to a multiple of 14; None: 1.0). The pyramid's levels
            keep the input's scale (it is padded to a multiple of 14), so it takes none.
        vit_cfg: Fields of transformers' ``Dinov2Config`` replacing the arch's (a small model
            for tests: ``dict(hidden_size=64, num_hidden_layers=4, num_attention_heads=2)``).
        pretrained: Path of a DINOv2 checkpoint, short for ``init_cfg=dict(type='Pretrained',
            checkpoint=pretrained)``.
        init_cfg: ``dict(type='Pretrained', checkpoint=path)`` loads the official DINOv2 file,
            a timm state dict or a transformers one into the ViT (:func:`load_dinov2_weights`);
            the pyramid keeps its default initialisation. None keeps the random weights.
    """

    def __init__(self,
                 arch: str = 'base',
                 registers: bool = False,
                 img_size: int = 518,
                 out_indices: Optional[Sequence[int]] = None,
                 norm_outputs: bool = True,
                 norm_cfg: dict = dict(type='BN', requires_grad=True),
                 pyramid: bool = True,
                 input_scale: Optional[float] = None,
                 vit_cfg: Optional[dict] = None,
                 pretrained: Optional[str] = None,
                 init_cfg: Optional[dict] = None):
        if pretrained is not None:
            if init_cfg is not None:
                raise ValueError('DINOv2: give pretrained or init_cfg, not both')
            init_cfg = dict(type='Pretrained', checkpoint=pretrained)
        if init_cfg is not None and init_cfg.get('type') != 'Pretrained':
            raise ValueError(f'DINOv2 init_cfg must be of type Pretrained, got {init_cfg}')
        super().__init__(init_cfg=init_cfg)
        self.vit = build_dinov2_vit(arch, registers, img_size, **(vit_cfg or {}))
        depth = self.num_layers
        if out_indices is None:
            out_indices = evenly_spaced_blocks(depth) if pyramid else (depth - 1,)
        self.out_indices = tuple(out_indices)
        wanted = 4 if pyramid else len(self.out_indices)
        if len(self.out_indices) != wanted or not self.out_indices or \
                not all(0 <= i < depth for i in self.out_indices):
            raise ValueError(f'DINOv2 needs {"four" if pyramid else "some"} block indices in '
                             f'[0, {depth}), got {self.out_indices}')
        if input_scale is not None and (pyramid or input_scale <= 0):
            raise ValueError('DINOv2 input_scale is a positive factor, for pyramid=False only; '
                             f'got {input_scale} with pyramid={pyramid}')
        self.input_scale = input_scale
        self.norm_outputs = norm_outputs
        self.embed_dim = self.vit.config.hidden_size
        # class token and registers come before the patch tokens
        self.num_prefix_tokens = 1 + (self.vit.config.num_register_tokens if registers else 0)
        self.pyramid = Feature2Pyramid(self.embed_dim, rescales=list(RESCALES),
                                       norm_cfg=norm_cfg) if pyramid else None

    @property
    def num_layers(self) -> int:
        """Number of transformer blocks (the layers of layer-wise learning-rate decay)."""
        return len(self.vit.encoder.layer)

    def init_weights(self) -> None:
        """Load the pretrained ViT weights named by ``init_cfg``, if any."""
        if self.init_cfg is None:
            super().init_weights()
            return
        load_dinov2_weights(self.vit, self.init_cfg['checkpoint'])
        self._is_init = True

    def block_features(self, x: Tensor) -> List[Tensor]:
        """The (normalised) patch-token maps of the four taken blocks.

        Args:
            x: Images ``(N, 3, H, W)`` with ``H`` and ``W`` multiples of 14.

        Returns:
            Four ``(N, C, H / 14, W / 14)`` maps, in the order of ``out_indices``.
        """
        batch, _, height, width = x.shape
        rows, cols = height // PATCH_SIZE, width // PATCH_SIZE
        tokens = self.vit.embeddings(x)
        taken = {}
        for index, layer in enumerate(self.vit.encoder.layer[:max(self.out_indices) + 1]):
            tokens = layer(tokens)
            if index in self.out_indices:
                out = self.vit.layernorm(tokens) if self.norm_outputs else tokens
                taken[index] = out[:, self.num_prefix_tokens:].transpose(1, 2).reshape(
                    batch, self.embed_dim, rows, cols)
        return [taken[index] for index in self.out_indices]

    def forward(self, x: Tensor) -> Tuple[Tensor, ...]:
        """Four feature levels of ``x``.

        Args:
            x: Images ``(N, 3, H, W)`` of any size.

        Returns:
            Levels ``(N, C, ceil(H / s), ceil(W / s))`` for s = 4, 8, 16, 32; without the
            pyramid, the token maps of ``out_indices`` (``(N, C, h, w)``, a cell per 14x14
            patch of the rescaled input).
        """
        if self.pyramid is None:
            scale = 1.0 if self.input_scale is None else self.input_scale
            size = [max(1, int(side * scale) // PATCH_SIZE) * PATCH_SIZE for side in x.shape[-2:]]
            if list(x.shape[-2:]) != size:
                x = F.interpolate(x, size=size, mode='bilinear', align_corners=False)
            return tuple(self.block_features(x))
        height, width = x.shape[-2:]
        pad_h = -height % PATCH_SIZE
        pad_w = -width % PATCH_SIZE
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h))
        levels = self.pyramid(self.block_features(x))
        outs = []
        for level, rescale, stride in zip(levels, RESCALES, STRIDES):
            rows = min(level.shape[-2], math.ceil(height * rescale / PATCH_SIZE))
            cols = min(level.shape[-1], math.ceil(width * rescale / PATCH_SIZE))
            level = level[..., :rows, :cols]
            size = (math.ceil(height / stride), math.ceil(width / stride))
            if level.shape[-2:] != size:
                level = F.interpolate(level, size=size, mode='bilinear', align_corners=False)
            outs.append(level)
        return tuple(outs)
