"""LayerDecayOptimWrapperConstructor: every parameter's learning rate and weight decay against
hand-computed values, alone and as the 'model' entry of MultiOptimWrapperConstructor."""
import pytest
import torch.nn as nn
from mmengine.optim import build_optim_wrapper
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS

import mmseg_iccld  # noqa: F401

BASE_LR, WD = 1e-3, 0.05
# base_lr * 0.5 ** (L + 1 - layer) with L = 4 blocks: embeddings (layer 0), blocks 0 to 3
# (layers 1 to 4), the top layer 5
EMBED_LR, TOP_LR = 3.125e-5, 1e-3
BLOCK_LRS = (6.25e-5, 1.25e-4, 2.5e-4, 5e-4)
HEAD_LR = 1e-2  # the top layer at the head's lr_mult of 10


class Segmentor(nn.Module):

    def __init__(self):
        super().__init__()
        init_default_scope('mmseg')
        self.backbone = MODELS.build(dict(type='DINOv2', arch='small', registers=True,
                                          img_size=28, vit_cfg=dict(hidden_size=8,
                                                                    num_hidden_layers=4,
                                                                    num_attention_heads=2)))
        self.decode_head = nn.Conv2d(8, 3, 1)
        self.decode_head.add_module('norm', nn.LayerNorm(3))


class Uda(nn.Module):

    def __init__(self):
        super().__init__()
        self.model = Segmentor()
        self.teacher = Segmentor().requires_grad_(False)
        self.discriminator = nn.Linear(3, 1)


def expected(name: str) -> tuple:
    """(lr, weight decay) of each parameter of ``Segmentor``, written out by hand."""
    name = name.replace('model.', '', 1) if name.startswith('model.') else name
    table = {
        'backbone.vit.embeddings.cls_token': (EMBED_LR, 0.0),
        'backbone.vit.embeddings.register_tokens': (EMBED_LR, 0.0),
        'backbone.vit.embeddings.position_embeddings': (EMBED_LR, 0.0),
        'backbone.vit.embeddings.patch_embeddings.projection.weight': (EMBED_LR, WD),
        'backbone.vit.embeddings.patch_embeddings.projection.bias': (EMBED_LR, 0.0),
        'backbone.vit.layernorm.weight': (TOP_LR, 0.0),
        'backbone.vit.layernorm.bias': (TOP_LR, 0.0),
        'backbone.pyramid.upsample_4x.0.weight': (TOP_LR, WD),
        'backbone.pyramid.upsample_4x.0.bias': (TOP_LR, 0.0),
        'backbone.pyramid.upsample_4x.1.weight': (TOP_LR, 0.0),
        'backbone.pyramid.upsample_4x.1.bias': (TOP_LR, 0.0),
        'backbone.pyramid.upsample_4x.3.weight': (TOP_LR, WD),
        'backbone.pyramid.upsample_4x.3.bias': (TOP_LR, 0.0),
        'backbone.pyramid.upsample_2x.0.weight': (TOP_LR, WD),
        'backbone.pyramid.upsample_2x.0.bias': (TOP_LR, 0.0),
        'decode_head.weight': (HEAD_LR, WD),
        'decode_head.bias': (HEAD_LR, 0.0),
        'decode_head.norm.weight': (HEAD_LR, 0.0),
        'decode_head.norm.bias': (HEAD_LR, 0.0),
    }
    for block, lr in enumerate(BLOCK_LRS):
        for part in ('norm1.weight', 'norm1.bias', 'attention.attention.query.bias',
                     'attention.attention.key.bias', 'attention.attention.value.bias',
                     'attention.output.dense.bias', 'layer_scale1.lambda1', 'norm2.weight',
                     'norm2.bias', 'mlp.fc1.bias', 'mlp.fc2.bias', 'layer_scale2.lambda1'):
            table[f'backbone.vit.encoder.layer.{block}.{part}'] = (lr, 0.0)
        for part in ('attention.attention.query.weight', 'attention.attention.key.weight',
                     'attention.attention.value.weight', 'attention.output.dense.weight',
                     'mlp.fc1.weight', 'mlp.fc2.weight'):
            table[f'backbone.vit.encoder.layer.{block}.{part}'] = (lr, WD)
    return table[name]


def settings(optimizer) -> dict:
    """Parameter name -> (lr, weight decay), each parameter in exactly one group."""
    found = {}
    for group in optimizer.param_groups:
        assert len(group['params']) == len(group['param_names'])
        for name in group['param_names']:
            assert name not in found, name
            found[name] = (group['lr'], group['weight_decay'])
    return found


def check(found: dict, module: nn.Module, prefix: str = '') -> None:
    names = {prefix + n for n, p in module.named_parameters() if p.requires_grad}
    assert set(found) == names
    for name, (lr, weight_decay) in found.items():
        want_lr, want_wd = expected(name)
        assert lr == pytest.approx(want_lr, rel=1e-12), name
        assert weight_decay == pytest.approx(want_wd, rel=1e-12), name


LAYER_DECAY = dict(
    type='OptimWrapper',
    constructor='LayerDecayOptimWrapperConstructor',
    optimizer=dict(type='AdamW', lr=BASE_LR, weight_decay=WD),
    paramwise_cfg=dict(num_layers=4, layer_decay_rate=0.5,
                       custom_keys=dict(head=dict(lr_mult=10.0), norm=dict(decay_mult=0.0))))


def test_each_parameter_gets_the_rules_lr_and_weight_decay():
    segmentor = Segmentor()
    wrapper = build_optim_wrapper(segmentor, LAYER_DECAY)
    check(settings(wrapper.optimizer), segmentor)


def test_frozen_parameters_stay_out_and_prefixes_are_found_inside_a_uda_wrapper():
    uda = Uda()
    wrapper = build_optim_wrapper(uda, LAYER_DECAY)
    found = settings(wrapper.optimizer)
    # the discriminator is outside the backbone: the top layer at the base lr
    assert found.pop('discriminator.weight') == (TOP_LR, WD)
    assert found.pop('discriminator.bias') == (TOP_LR, 0.0)
    check(found, uda.model, prefix='model.')


def test_as_the_model_entry_of_the_multi_optimizer_constructor():
    uda = Uda()
    init_default_scope('mmseg')
    wrappers = build_optim_wrapper(uda, dict(
        constructor='MultiOptimWrapperConstructor',
        model={k: v for k, v in LAYER_DECAY.items()},
        discriminator=dict(type='OptimWrapper', optimizer=dict(type='Adam', lr=2.5e-4))))
    check(settings(wrappers['model'].optimizer), uda.model)
    disc = wrappers['discriminator'].optimizer.param_groups
    assert [g['lr'] for g in disc] == [2.5e-4]


def test_a_decay_of_one_is_the_plain_lr_and_bad_settings_are_refused():
    segmentor = Segmentor()
    cfg = dict(LAYER_DECAY, paramwise_cfg=dict(num_layers=4, layer_decay_rate=1.0))
    lrs = {name: lr for name, (lr, _) in settings(
        build_optim_wrapper(segmentor, cfg).optimizer).items()}
    assert set(lrs.values()) == {BASE_LR}
    with pytest.raises(ValueError, match='num_layers and layer_decay_rate'):
        build_optim_wrapper(segmentor, dict(LAYER_DECAY, paramwise_cfg=dict(num_layers=4)))
    with pytest.raises(ValueError, match='block 3, but num_layers is 3'):
        build_optim_wrapper(segmentor, dict(
            LAYER_DECAY, paramwise_cfg=dict(num_layers=3, layer_decay_rate=0.5)))
