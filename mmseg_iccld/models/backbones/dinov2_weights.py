"""DINOv2 weights for transformers' ``Dinov2Model`` / ``Dinov2WithRegistersModel``, from any of
the three layouts the same weights are published in.

- The official one (facebookresearch/dinov2, ``dinov2_vitb14_pretrain.pth`` and the
  ``..._reg4_pretrain.pth`` files): ``cls_token``, ``pos_embed`` of ``1 + 37 x 37`` entries
  (518 / 14 = 37, the class token's first), ``mask_token``, ``register_tokens`` for the register
  models, ``patch_embed.proj.*``, blocks ``blocks.N.norm1`` / ``attn.qkv`` (query, key and value
  stacked in this order) / ``attn.proj`` / ``ls1.gamma`` / ``norm2`` / ``mlp.fc1``, ``mlp.fc2``
  (ViT-g's SwiGLU: ``mlp.w12``, ``mlp.w3``) / ``ls2.gamma``, and ``norm.*``. Files saved with
  chunked blocks name them ``blocks.C.N.*`` (chunk C, block N).
- timm's (``vit_*_patch14[_reg4]_dinov2``): the official names without ``mask_token``,
  ``reg_token`` for the registers, ViT-g's SwiGLU as ``mlp.fc1`` / ``mlp.fc2``, and for the
  register models a ``pos_embed`` without the class token's entry, that entry added into
  ``cls_token`` (timm's ``no_embed_class``).
- transformers' own (Hugging Face's ``facebook/dinov2-*`` files): ``embeddings.cls_token``,
  ``embeddings.position_embeddings``, ``encoder.layer.N.attention.attention.query`` ...,
  ``layernorm.*``.

The first two are renamed to transformers' keys, splitting the fused ``qkv`` into ``query``,
``key`` and ``value``; a ``pos_embed`` without the class token's entry gets a zero entry (the
class token's position is already in ``cls_token``, the same sum either way). ``mask_token``
is dropped: the backbone never masks tokens and its model has none. Position embeddings stored
at another square grid than the model's are resampled to it (bicubic with antialiasing, in
float32; the class token's entry is kept). Loading is strict: whatever the converted
checkpoint lacks or has on top of the model is one error naming those keys.
"""
import math
import os.path as osp
import re
from typing import Dict, List, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

# Keys listed by name in a mismatch error (the rest are counted).
MAX_LISTED_KEYS = 8
# transformers' keys that are not inside a block, by their official / timm name
OUTER_KEYS = {
    'cls_token': 'embeddings.cls_token',
    'pos_embed': 'embeddings.position_embeddings',
    'register_tokens': 'embeddings.register_tokens',
    'reg_token': 'embeddings.register_tokens',
    'patch_embed.proj.weight': 'embeddings.patch_embeddings.projection.weight',
    'patch_embed.proj.bias': 'embeddings.patch_embeddings.projection.bias',
    'norm.weight': 'layernorm.weight',
    'norm.bias': 'layernorm.bias',
}
# the parts of a block, official / timm name -> transformers name
BLOCK_PARTS = {
    'norm1.': 'norm1.',
    'attn.proj.': 'attention.output.dense.',
    'ls1.gamma': 'layer_scale1.lambda1',
    'norm2.': 'norm2.',
    'mlp.fc1.': 'mlp.fc1.',
    'mlp.fc2.': 'mlp.fc2.',
    'ls2.gamma': 'layer_scale2.lambda1',
    'mlp.w12.': 'mlp.weights_in.',
    'mlp.w3.': 'mlp.weights_out.',
}
# ViT-g's SwiGLU FFN: timm keeps the packed w12 / w3 as fc1 / fc2
SWIGLU_PARTS = {'mlp.fc1.': 'mlp.weights_in.', 'mlp.fc2.': 'mlp.weights_out.'}
# blocks.N.<part>, or blocks.C.N.<part> in a file with chunked blocks
BLOCK_KEY = re.compile(r'^blocks\.(?:\d+\.)?(\d+)\.(.+)$')
MASK_TOKENS = ('mask_token', 'embeddings.mask_token')
POSITIONS = 'embeddings.position_embeddings'


def read_state_dict(path: str) -> Dict[str, torch.Tensor]:
    """Read the tensors of a local checkpoint file.

    Args:
        path: A ``.pth``/``.pt``/``.bin`` file (a state dict, or a dict holding it under
            ``state_dict`` or ``model``) or a ``.safetensors`` file. URLs are refused: the
            weights are never downloaded at run time.

    Returns:
        The state dict.

    Raises:
        ValueError: For a URL.
        FileNotFoundError: When the file does not exist.
    """
    if '://' in path:
        raise ValueError(f'DINOv2 weights are read from a local file, got the URL {path}; '
                         'download it first (docs/vfm.md)')
    if not osp.isfile(path):
        raise FileNotFoundError(f'DINOv2 checkpoint not found: {path} (docs/vfm.md says '
                                'where the weights come from)')
    if path.endswith('.safetensors'):
        from safetensors.torch import load_file
        return load_file(path, device='cpu')
    state = torch.load(path, map_location='cpu', weights_only=True)
    for key in ('state_dict', 'model'):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    return state


def is_transformers_layout(state: Dict[str, torch.Tensor]) -> bool:
    """Whether ``state`` names its tensors as transformers' DINOv2 models do."""
    return any(k.startswith(('embeddings.', 'encoder.layer.', 'layernorm.')) for k in state)


def _block_part(part: str, swiglu: bool) -> Optional[str]:
    """transformers' name of one part of a block (None when the part is unknown)."""
    renames = dict(BLOCK_PARTS, **SWIGLU_PARTS) if swiglu else BLOCK_PARTS
    for old, new in renames.items():
        if part.startswith(old):
            return new + part[len(old):]
    return None


def official_to_transformers(state: Dict[str, torch.Tensor],
                             swiglu: bool) -> Dict[str, torch.Tensor]:
    """Rename an official DINOv2 or timm state dict to transformers' keys.

    Args:
        state: The checkpoint (left unchanged).
        swiglu: Whether the target model has the SwiGLU FFN (ViT-g), which decides where
            timm's ``mlp.fc1`` / ``mlp.fc2`` go.

    Returns:
        The renamed state dict; unknown keys keep their names (the load reports them) and
        ``mask_token`` is dropped.
    """
    out = {}
    for key, value in state.items():
        if key in MASK_TOKENS:
            continue
        if key in OUTER_KEYS:
            out[OUTER_KEYS[key]] = value
            continue
        block = BLOCK_KEY.match(key)
        index, part = block.groups() if block is not None else (None, None)
        if part in ('attn.qkv.weight', 'attn.qkv.bias'):
            prefix = f'encoder.layer.{index}.attention.attention.'
            suffix = part.rsplit('.', 1)[1]
            for name, chunk in zip(('query', 'key', 'value'), value.chunk(3, dim=0)):
                out[f'{prefix}{name}.{suffix}'] = chunk
            continue
        renamed = _block_part(part, swiglu) if part is not None else None
        out[f'encoder.layer.{index}.{renamed}' if renamed is not None else key] = value
    positions = out.get(POSITIONS)
    if positions is not None and positions.ndim == 3 \
            and math.isqrt(positions.shape[1]) ** 2 == positions.shape[1]:
        # timm's register models: the class token's position is already in cls_token
        out[POSITIONS] = torch.cat([positions.new_zeros(1, 1, positions.shape[2]), positions],
                                   dim=1)
    return out


def resample_positions(positions: torch.Tensor, grid: int) -> torch.Tensor:
    """Position embeddings ``(1, 1 + g * g, C)`` resampled to ``(1, 1 + grid * grid, C)``.

    The ``g x g`` part is resized bicubically with antialiasing in float32; the class token's
    first entry is kept.
    """
    stored = math.isqrt(positions.shape[1] - 1)
    patch = positions[:, 1:].reshape(1, stored, stored, -1).permute(0, 3, 1, 2)
    patch = F.interpolate(patch.float(), size=(grid, grid), mode='bicubic',
                          align_corners=False, antialias=True).to(positions.dtype)
    return torch.cat([positions[:, :1], patch.flatten(2).transpose(1, 2)], dim=1)


def _listed(keys: List[str]) -> str:
    """``a, b, c`` with at most ``MAX_LISTED_KEYS`` names and the count of the rest."""
    shown = ', '.join(keys[:MAX_LISTED_KEYS])
    rest = len(keys) - MAX_LISTED_KEYS
    return shown + (f' and {rest} more' if rest > 0 else '')


def mismatch_message(source: str, layout: str, missing: List[str], unexpected: List[str],
                     wrong_shapes: List[str]) -> str:
    """One line naming what a checkpoint lacks, has in excess, or has at a wrong shape.

    Args:
        source: Where the weights come from (a path).
        layout: The layout the checkpoint was read in.
        missing: Model keys the checkpoint lacks.
        unexpected: Checkpoint keys the model lacks.
        wrong_shapes: ``key (checkpoint shape vs model shape)`` entries.

    Returns:
        The message.
    """
    parts = []
    if missing:
        parts.append(f'{len(missing)} missing key(s): {_listed(missing)}')
    if unexpected:
        parts.append(f'{len(unexpected)} unexpected key(s): {_listed(unexpected)}')
    if wrong_shapes:
        parts.append(f'{len(wrong_shapes)} key(s) of another shape: {_listed(wrong_shapes)}')
    return (f'{source} is not a checkpoint of this DINOv2 model (read in the {layout} layout, '
            "keys named as in transformers' model): " + '; '.join(parts))


def to_model_layout(state: Dict[str, torch.Tensor],
                    vit: nn.Module) -> Tuple[Dict[str, torch.Tensor], str]:
    """A checkpoint in any of the three layouts in ``vit``'s keys and position grid.

    Args:
        state: The checkpoint (left unchanged).
        vit: The transformers DINOv2 model it is for.

    Returns:
        The converted state dict and the name of the layout it was read in.
    """
    if is_transformers_layout(state):
        layout = 'transformers'
        state = {k: v for k, v in state.items() if k not in MASK_TOKENS}
    else:
        layout = 'official DINOv2 / timm'
        state = official_to_transformers(state, bool(vit.config.use_swiglu_ffn))
    own = vit.embeddings.position_embeddings
    positions = state.get(POSITIONS)
    if positions is not None and positions.ndim == 3 and positions.shape[2] == own.shape[2] \
            and positions.shape[1] != own.shape[1] \
            and math.isqrt(positions.shape[1] - 1) ** 2 == positions.shape[1] - 1:
        state[POSITIONS] = resample_positions(positions, math.isqrt(own.shape[1] - 1))
    return state, layout


def load_dinov2_weights(vit: nn.Module, path: str) -> None:
    """Load a DINOv2 checkpoint (official, timm or transformers layout) into ``vit``, strictly.

    Args:
        vit: transformers' ``Dinov2Model`` or ``Dinov2WithRegistersModel`` (no mask token).
        path: The checkpoint file (see :func:`read_state_dict`).

    Raises:
        ValueError: When, after the conversion, keys are missing, unexpected or of another
            shape; the message names them.
    """
    state, layout = to_model_layout(read_state_dict(path), vit)
    own = vit.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    wrong_shapes = [f'{k} ({tuple(state[k].shape)} vs {tuple(v.shape)})'
                    for k, v in own.items() if k in state and state[k].shape != v.shape]
    if missing or unexpected or wrong_shapes:
        raise ValueError(mismatch_message(path, layout, missing, unexpected, wrong_shapes))
    vit.load_state_dict(state, strict=True)
