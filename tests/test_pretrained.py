"""Pretrained-file checks, and MiT weights in the key format of mmseg's mit2mmseg.py."""
import importlib.util
import os.path as osp
from collections import OrderedDict

import mmseg
import pytest
import torch
from mmengine.config import Config
from mmseg.registry import MODELS
from mmseg.utils import register_all_modules

import mmseg_iccld  # noqa: F401
from mmseg_iccld.engine.pretrained_files import check_pretrained_files, find_pretrained_files

register_all_modules(init_default_scope=True)

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
MIT_B5_CFG = osp.join(REPO, 'configs/_base_/models/daformer_mitb5.py')
TINY_MIT = dict(type='MixVisionTransformer', in_channels=3, embed_dims=8, num_stages=4,
                num_layers=[1, 2, 1, 1], num_heads=[1, 2, 5, 8], patch_sizes=[7, 3, 3, 3],
                sr_ratios=[8, 4, 2, 1], out_indices=(0, 1, 2, 3), mlp_ratio=4)


def test_missing_mit_weights_fail_with_instructions(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = Config.fromfile(MIT_B5_CFG)
    with pytest.raises(FileNotFoundError) as error:
        check_pretrained_files(cfg)
    message = str(error.value)
    assert 'pretrained/mit_b5.pth' in message
    assert 'model.backbone.init_cfg.checkpoint' in message
    assert 'SegFormer' in message and 'mit2mmseg.py' in message and 'ImageNet-1k' in message

    (tmp_path / 'pretrained').mkdir()
    torch.save({}, tmp_path / 'pretrained/mit_b5.pth')
    check_pretrained_files(cfg)  # present: no error


def test_walks_wrapped_models_lists_and_load_from(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / 'here.pth').write_bytes(b'')
    cfg = dict(
        model=dict(
            type='DACS',
            model=dict(
                type='EncoderDecoder',
                backbone=dict(type='ResNet', init_cfg=[
                    dict(type='Kaiming'),
                    dict(type='Pretrained', checkpoint='here.pth')]),
                decode_head=dict(type='FCNHead', pretrained='gone_head.pth'),
                auxiliary_head=[dict(init_cfg=dict(type='Pretrained',
                                                   checkpoint='https://x.org/w.pth'))])),
        load_from='gone_ckpt.pth')
    assert find_pretrained_files(cfg) == [
        ('model.model.backbone.init_cfg[1].checkpoint', 'here.pth'),
        ('model.model.decode_head.pretrained', 'gone_head.pth'),
        ('load_from', 'gone_ckpt.pth'),
    ]
    with pytest.raises(FileNotFoundError) as error:
        check_pretrained_files(cfg)
    message = str(error.value)
    assert 'gone_head.pth (set by model.model.decode_head.pretrained)' in message
    assert 'gone_ckpt.pth (set by load_from)' in message
    assert 'here.pth' not in message and 'https' not in message
    assert 'mit2mmseg' not in message  # not a MiT

    check_pretrained_files(dict(model=dict(type='EncoderDecoder'), load_from=None))


def _load_mit2mmseg():
    path = osp.join(osp.dirname(mmseg.__file__), '.mim/tools/model_converters/mit2mmseg.py')
    spec = importlib.util.spec_from_file_location('mit2mmseg', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _to_segformer_keys(state_dict: dict) -> OrderedDict:
    """mmseg's MiT keys -> the keys of SegFormer's released mit_b*.pth (inverse of mit2mmseg)."""
    out = OrderedDict()
    for key, value in state_dict.items():
        parts = key.split('.')
        stage, part, rest = int(parts[1]), parts[2], parts[3:]
        if part == '0':  # patch embedding
            name = '.'.join(rest).replace('projection.', 'proj.')
            out[f'patch_embed{stage + 1}.{name}'] = value
        elif part == '2':  # stage norm
            out[f'norm{stage + 1}.{".".join(rest)}'] = value
        else:
            prefix = f'block{stage + 1}.{rest[0]}'
            name = '.'.join(rest[1:])
            if name.startswith('attn.attn.in_proj_'):
                kind = name.rsplit('_', 1)[1]
                dims = value.shape[0] // 3
                out[f'{prefix}.attn.q.{kind}'] = value[:dims]
                out[f'{prefix}.attn.kv.{kind}'] = value[dims:]
            elif name.startswith('attn.attn.out_proj.'):
                out[f'{prefix}.attn.proj.{name.rsplit(".", 1)[1]}'] = value
            elif name.startswith('ffn.layers.'):
                index, param = name.split('.')[2:]
                layer = {'0': 'fc1', '1': 'dwconv.dwconv', '4': 'fc2'}[index]
                if layer != 'dwconv.dwconv' and param == 'weight':
                    value = value.flatten(1)  # nn.Linear in SegFormer
                out[f'{prefix}.mlp.{layer}.{param}'] = value
            else:  # norm1, norm2, attn.sr, attn.norm
                out[f'{prefix}.{name}'] = value
    out['head.weight'] = torch.zeros(1000, 64)  # the classifier mit2mmseg drops
    return out


def test_mit2mmseg_weights_load_through_init_cfg(tmp_path):
    torch.manual_seed(0)
    source = MODELS.build(TINY_MIT)
    expected = source.state_dict()
    converted = _load_mit2mmseg().convert_mit(_to_segformer_keys(expected))
    assert set(converted) == set(expected)

    path = str(tmp_path / 'mit_tiny.pth')
    torch.save(converted, path)
    loaded = MODELS.build(dict(TINY_MIT, init_cfg=dict(type='Pretrained', checkpoint=path)))
    assert not torch.equal(loaded.layers[0][0].projection.weight,
                           source.layers[0][0].projection.weight)
    loaded.init_weights()
    for key, value in loaded.state_dict().items():
        assert torch.equal(value, expected[key]), key
