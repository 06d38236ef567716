"""DINOv2 as the official release stores and runs it, for the backbone tests: random state
dicts in the official layout (facebookresearch/dinov2), the same weights in timm's layout, and
the official ViT's forward written out in plain torch operations on those tensors."""
from typing import Dict, List

import torch
import torch.nn.functional as F
from torch import Tensor

PATCH = 14
EPS = 1e-6  # DINOv2's LayerNorm epsilon


def swiglu_hidden(dim: int) -> int:
    """Hidden width of DINOv2's fused SwiGLU FFN at mlp ratio 4 (ViT-g: 1536 -> 4096)."""
    return (int(4 * dim * 2 / 3) + 7) // 8 * 8


def official_state_dict(dim: int, depth: int, grid: int, registers: bool = False,
                        swiglu: bool = False, seed: int = 1) -> Dict[str, Tensor]:
    """Random weights in the official layout: ``cls_token``, ``pos_embed`` with the class
    token's entry first, ``mask_token``, ``register_tokens`` (four) with registers, fused
    ``attn.qkv``, layer scales ``ls1.gamma`` / ``ls2.gamma``, and ``mlp.fc1`` / ``mlp.fc2`` or
    the SwiGLU's ``mlp.w12`` / ``mlp.w3``."""
    generator = torch.Generator().manual_seed(seed)
    shapes = {'cls_token': (1, 1, dim), 'pos_embed': (1, 1 + grid * grid, dim),
              'mask_token': (1, dim), 'patch_embed.proj.weight': (dim, 3, PATCH, PATCH),
              'patch_embed.proj.bias': (dim,), 'norm.weight': (dim,), 'norm.bias': (dim,)}
    if registers:
        shapes['register_tokens'] = (1, 4, dim)
    for i in range(depth):
        block = f'blocks.{i}.'
        shapes.update({
            block + 'norm1.weight': (dim,), block + 'norm1.bias': (dim,),
            block + 'attn.qkv.weight': (3 * dim, dim), block + 'attn.qkv.bias': (3 * dim,),
            block + 'attn.proj.weight': (dim, dim), block + 'attn.proj.bias': (dim,),
            block + 'ls1.gamma': (dim,), block + 'norm2.weight': (dim,),
            block + 'norm2.bias': (dim,), block + 'ls2.gamma': (dim,)})
        if swiglu:
            hidden = swiglu_hidden(dim)
            shapes.update({block + 'mlp.w12.weight': (2 * hidden, dim),
                           block + 'mlp.w12.bias': (2 * hidden,),
                           block + 'mlp.w3.weight': (dim, hidden), block + 'mlp.w3.bias': (dim,)})
        else:
            shapes.update({block + 'mlp.fc1.weight': (4 * dim, dim),
                           block + 'mlp.fc1.bias': (4 * dim,),
                           block + 'mlp.fc2.weight': (dim, 4 * dim),
                           block + 'mlp.fc2.bias': (dim,)})
    state = {k: 0.2 * torch.randn(s, generator=generator) for k, s in shapes.items()}
    for key in state:  # norm weights around 1, as trained ones are
        if key.endswith(('norm1.weight', 'norm2.weight')) or key == 'norm.weight':
            state[key] += 1
    return state


def timm_layout(official: Dict[str, Tensor]) -> Dict[str, Tensor]:
    """The same weights as timm stores DINOv2 (``vit_*_patch14[_reg4]_dinov2``): no
    ``mask_token``, ``reg_token`` for the registers, for the register models the class token's
    position added into ``cls_token`` and left out of ``pos_embed``, and the SwiGLU's packed
    ``w12`` / ``w3`` named ``fc1`` / ``fc2``."""
    state = {k: v.clone() for k, v in official.items() if k != 'mask_token'}
    if 'register_tokens' in state:
        state['reg_token'] = state.pop('register_tokens')
        state['cls_token'] = state['cls_token'] + state['pos_embed'][:, :1]
        state['pos_embed'] = state['pos_embed'][:, 1:].contiguous()
    return {k.replace('mlp.w12.', 'mlp.fc1.').replace('mlp.w3.', 'mlp.fc2.'): v
            for k, v in state.items()}


def chunked_layout(official: Dict[str, Tensor], chunks: int) -> Dict[str, Tensor]:
    """The official layout with blocks in ``chunks`` chunks: ``blocks.C.N.*``."""
    depth = 1 + max(int(k.split('.')[1]) for k in official if k.startswith('blocks.'))
    size = depth // chunks
    out = {}
    for key, value in official.items():
        if key.startswith('blocks.'):
            index = int(key.split('.')[1])
            key = f'blocks.{index // size}.{key[len("blocks."):]}'
        out[key] = value
    return out


def reference_tokens(state: Dict[str, Tensor], images: Tensor, heads: int) -> List[Tensor]:
    """The official DINOv2 ViT on ``images`` at the grid ``pos_embed`` is stored at.

    Patch convolution, class token plus its position, patch positions, the register tokens
    after the class token (without positions), then pre-norm blocks ``x + ls1 * attn(norm1(x))``
    and ``x + ls2 * mlp(norm2(x))`` with the fused qkv attention, GELU MLP or SwiGLU.

    Args:
        state: Weights in the official layout.
        images: ``(N, 3, 14 g, 14 g)`` for the stored ``g x g`` grid.
        heads: Number of attention heads.

    Returns:
        Each block's output tokens ``(N, 1 + registers + g * g, C)`` after the final norm.
    """
    dim = state['cls_token'].shape[-1]
    batch = images.shape[0]
    x = F.conv2d(images, state['patch_embed.proj.weight'], state['patch_embed.proj.bias'],
                 stride=PATCH).flatten(2).transpose(1, 2)
    x = torch.cat([state['cls_token'].expand(batch, -1, -1), x], dim=1) + state['pos_embed']
    if 'register_tokens' in state:
        x = torch.cat([x[:, :1], state['register_tokens'].expand(batch, -1, -1), x[:, 1:]], 1)
    outputs = []
    depth = 1 + max(int(k.split('.')[1]) for k in state if k.startswith('blocks.'))
    for i in range(depth):
        w = {k[len(f'blocks.{i}.'):]: v for k, v in state.items()
             if k.startswith(f'blocks.{i}.')}
        h = F.layer_norm(x, (dim,), w['norm1.weight'], w['norm1.bias'], EPS)
        qkv = F.linear(h, w['attn.qkv.weight'], w['attn.qkv.bias'])
        q, k, v = qkv.reshape(batch, -1, 3, heads, dim // heads).permute(2, 0, 3, 1, 4)
        attention = ((q * (dim // heads) ** -0.5) @ k.transpose(-2, -1)).softmax(dim=-1)
        h = (attention @ v).transpose(1, 2).reshape(batch, -1, dim)
        x = x + w['ls1.gamma'] * F.linear(h, w['attn.proj.weight'], w['attn.proj.bias'])
        h = F.layer_norm(x, (dim,), w['norm2.weight'], w['norm2.bias'], EPS)
        if 'mlp.w12.weight' in w:
            gate, value = F.linear(h, w['mlp.w12.weight'], w['mlp.w12.bias']).chunk(2, dim=-1)
            h = F.linear(F.silu(gate) * value, w['mlp.w3.weight'], w['mlp.w3.bias'])
        else:
            h = F.gelu(F.linear(h, w['mlp.fc1.weight'], w['mlp.fc1.bias']))
            h = F.linear(h, w['mlp.fc2.weight'], w['mlp.fc2.bias'])
        x = x + w['ls2.gamma'] * h
        outputs.append(F.layer_norm(x, (dim,), state['norm.weight'], state['norm.bias'], EPS))
    return outputs
