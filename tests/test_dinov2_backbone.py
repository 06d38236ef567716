"""DINOv2 backbone: weights in the official, timm and transformers layouts against the official
ViT's forward written out in torch (tests/dinov2_reference.py), clear errors for a wrong
checkpoint, and the four levels' shapes at any input size."""
import pytest
import torch
from mmseg.registry import MODELS
from mmseg.utils import register_all_modules
from safetensors.torch import save_file

import mmseg_iccld  # noqa: F401
from dinov2_reference import chunked_layout, official_state_dict, reference_tokens, timm_layout
from mmseg_iccld.models.backbones.dinov2 import evenly_spaced_blocks

register_all_modules(init_default_scope=True)
torch.set_num_threads(1)

# a small DINOv2 through transformers' config fields; stored grid 56 / 14 = 4 x 4
SMALL = dict(hidden_size=32, num_hidden_layers=4, num_attention_heads=2)
IMG_SIZE = 56
GRID = IMG_SIZE // 14


def official(registers: bool = False, swiglu: bool = False, **kwargs) -> dict:
    return official_state_dict(SMALL['hidden_size'], SMALL['num_hidden_layers'], GRID,
                               registers=registers, swiglu=swiglu, **kwargs)


def backbone(registers: bool = False, checkpoint=None, arch: str = 'small', vit_cfg=SMALL,
             **kwargs):
    cfg = dict(type='DINOv2', arch=arch, registers=registers, img_size=IMG_SIZE,
               vit_cfg=vit_cfg, **kwargs)
    if checkpoint is not None:
        cfg['init_cfg'] = dict(type='Pretrained', checkpoint=str(checkpoint))
    model = MODELS.build(cfg)
    model.init_weights()
    return model.eval()


def vit_weights(model) -> dict:
    return {k: v.clone() for k, v in model.vit.state_dict().items()}


# ViT-S and ViT-g's SwiGLU FFN (arch 'giant' at the small size), with and without registers
VARIANTS = [('small', False), ('small', True), ('giant', False), ('giant', True)]


@pytest.mark.parametrize('arch,registers', VARIANTS)
def test_official_and_timm_layouts_give_the_official_vits_features(tmp_path, arch, registers):
    state = official(registers, swiglu=arch == 'giant')
    files = {'official': tmp_path / 'official.pth', 'timm': tmp_path / 'timm.pth'}
    torch.save(state, files['official'])
    torch.save(timm_layout(state), files['timm'])
    x = torch.randn(2, 3, IMG_SIZE, IMG_SIZE)
    prefix = 1 + 4 * registers
    with torch.no_grad():
        expected = reference_tokens(state, x, heads=SMALL['num_attention_heads'])
        for layout, path in files.items():
            model = backbone(registers, path, arch=arch)
            found = model.block_features(x)
            assert len(found) == 4
            for f, e in zip(found, expected):
                e = e[:, prefix:].transpose(1, 2).reshape(2, 32, GRID, GRID)
                torch.testing.assert_close(f, e, rtol=0, atol=1e-5, msg=layout)
            # the whole sequence (class token, registers, patches) of transformers' forward
            last = model.vit(pixel_values=x).last_hidden_state
            torch.testing.assert_close(last, expected[-1], rtol=0, atol=1e-5, msg=layout)


@pytest.mark.parametrize('registers', [False, True])
def test_official_timm_chunked_and_transformers_files_give_the_same_weights(tmp_path,
                                                                          registers):
    state = official(registers)
    torch.save(state, tmp_path / 'official.pth')
    torch.save(timm_layout(state), tmp_path / 'timm.pth')
    torch.save(chunked_layout(state, chunks=2), tmp_path / 'chunked.pth')
    loaded = vit_weights(backbone(registers, tmp_path / 'official.pth'))
    assert 'embeddings.mask_token' not in loaded
    assert ('embeddings.register_tokens' in loaded) == registers
    # Hugging Face's files keep the mask token, which the backbone has no use for
    hf = dict(loaded, **{'embeddings.mask_token': state['mask_token']})
    save_file(hf, str(tmp_path / 'model.safetensors'))
    for name in ('chunked.pth', 'model.safetensors', 'timm.pth'):
        found = vit_weights(backbone(registers, tmp_path / name))
        assert found.keys() == loaded.keys()
        if name == 'timm.pth' and registers:
            # timm adds the class token's position into cls_token: the same sum
            cls, pos = 'embeddings.cls_token', 'embeddings.position_embeddings'
            torch.testing.assert_close(found.pop(cls) + found[pos][:, :1],
                                       loaded.pop(cls) + loaded[pos][:, :1], rtol=0, atol=0)
            assert torch.equal(found.pop(pos)[:, 1:], loaded.pop(pos)[:, 1:])
        for key, value in found.items():
            assert torch.equal(value, loaded[key]), (name, key)


def test_block_features_are_transformers_own_hidden_states_at_any_grid():
    """Iterating the blocks gives what transformers' forward gives (position embeddings
    resampled from 4 x 4 to the 5 x 7 patches of a 70 x 98 input)."""
    model = backbone(registers=True)
    x = torch.randn(1, 3, 70, 98)
    with torch.no_grad():
        found = model.block_features(x)
        hidden = model.vit(pixel_values=x, output_hidden_states=True).hidden_states
    for f, i in zip(found, model.out_indices):
        tokens = model.vit.layernorm(hidden[i + 1])[:, 5:]
        torch.testing.assert_close(f, tokens.transpose(1, 2).reshape(1, 32, 5, 7), rtol=0,
                                   atol=1e-6)


def test_position_embeddings_of_another_grid_are_resampled(tmp_path):
    state = official()
    pos = torch.randn(1, 1 + 6 * 6, 32)
    pos[:, 1:] = torch.linspace(-1, 1, 32)  # the same vector at every grid cell
    state['pos_embed'] = pos
    torch.save(state, tmp_path / 'grid6.pth')
    loaded = backbone(checkpoint=tmp_path / 'grid6.pth').vit.embeddings.position_embeddings
    assert loaded.shape == (1, 1 + GRID * GRID, 32)
    assert torch.equal(loaded[:, 0], pos[:, 0])
    torch.testing.assert_close(loaded[:, 1:], pos[:, 1:2].expand(1, GRID * GRID, 32))


def test_pretrained_argument_is_short_for_the_init_cfg(tmp_path):
    path = tmp_path / 'w.pth'
    torch.save(official(), path)
    a = backbone(checkpoint=path)
    b = MODELS.build(dict(type='DINOv2', arch='small', img_size=IMG_SIZE, vit_cfg=SMALL,
                          pretrained=str(path)))
    b.init_weights()
    key = 'encoder.layer.2.attention.attention.key.weight'
    assert torch.equal(a.vit.state_dict()[key], b.vit.state_dict()[key])


def test_a_partial_checkpoint_fails_in_one_line_naming_the_keys(tmp_path):
    state = official()
    del state['blocks.3.mlp.fc2.bias'], state['norm.weight']
    state['decode_head.conv_seg.weight'] = torch.zeros(19, 32, 1, 1)
    path = tmp_path / 'partial.pth'
    torch.save(state, path)
    with pytest.raises(ValueError) as error:
        backbone(checkpoint=path)
    message = str(error.value)
    assert '\n' not in message and str(path) in message and 'official DINOv2 / timm' in message
    assert '2 missing key(s): encoder.layer.3.mlp.fc2.bias, layernorm.weight' in message
    assert '1 unexpected key(s): decode_head.conv_seg.weight' in message


def test_a_checkpoint_of_another_arch_fails_naming_the_keys(tmp_path):
    path = tmp_path / 'deeper.pth'
    torch.save(official(), path)  # 4 blocks of 32 channels, not 5 or 16
    with pytest.raises(ValueError) as error:
        MODELS.build(dict(type='DINOv2', arch='small', img_size=IMG_SIZE,
                          vit_cfg=dict(SMALL, num_hidden_layers=5),
                          init_cfg=dict(type='Pretrained', checkpoint=str(path)))).init_weights()
    message = str(error.value)
    assert '\n' not in message
    assert '18 missing key(s): encoder.layer.4.norm1.weight' in message
    assert 'and 10 more' in message
    with pytest.raises(ValueError, match=r"key\(s\) of another shape: embeddings.cls_token "
                                         r"\(\(1, 1, 32\) vs \(1, 1, 16\)\)"):
        MODELS.build(dict(type='DINOv2', arch='small', img_size=IMG_SIZE,
                          vit_cfg=dict(SMALL, hidden_size=16),
                          pretrained=str(path))).init_weights()
    with pytest.raises(ValueError, match=r'1 unexpected key\(s\): embeddings.register_tokens'):
        torch.save(official(registers=True), path)
        backbone(checkpoint=path)


def test_urls_and_missing_files_are_refused_before_any_download(tmp_path):
    with pytest.raises(ValueError, match='local file'):
        backbone(checkpoint='https://dl.fbaipublicfiles.com/dinov2/dinov2_vitb14_pretrain.pth')
    with pytest.raises(FileNotFoundError, match='nothere.pth'):
        backbone(checkpoint=tmp_path / 'nothere.pth')


@pytest.mark.parametrize('registers', [False, True])
@pytest.mark.parametrize('size', [(128, 128), (100, 150), (57, 43), (518, 224)])
def test_levels_have_the_strides_the_heads_expect_at_any_size(size, registers):
    model = backbone(registers)
    with torch.no_grad():
        levels = model(torch.randn(1, 3, *size))
    height, width = size
    assert [tuple(level.shape) for level in levels] == [
        (1, 32, -(-height // s), -(-width // s)) for s in (4, 8, 16, 32)]


def test_padding_keeps_the_tokens_of_the_image_aligned():
    """An input padded to a multiple of 14 by the backbone gives the tokens of the same image
    zero-padded by hand (the padding is at the bottom and right only)."""
    model = backbone()
    x = torch.randn(1, 3, 60, 75)
    padded = torch.zeros(1, 3, 70, 84)
    padded[..., :60, :75] = x
    captured = []
    handle = model.pyramid.register_forward_hook(lambda m, args, out: captured.append(args[0]))
    with torch.no_grad():
        model(x)
        expected = model.block_features(padded)
    handle.remove()
    for f, e in zip(captured[0], expected):
        torch.testing.assert_close(f, e, rtol=0, atol=1e-6)


def test_default_blocks_are_evenly_spaced_as_vit_adapter_takes_them():
    assert evenly_spaced_blocks(12) == (2, 5, 8, 11)
    assert evenly_spaced_blocks(24) == (5, 11, 17, 23)
    assert evenly_spaced_blocks(40) == (9, 19, 29, 39)
    assert backbone().out_indices == (0, 1, 2, 3)
    model = MODELS.build(dict(type='DINOv2', arch='base', img_size=28,
                              vit_cfg=dict(hidden_size=24, num_attention_heads=2)))
    assert model.out_indices == (2, 5, 8, 11) and model.num_layers == 12
    with pytest.raises(ValueError, match='four block indices'):
        backbone(out_indices=(0, 1, 4, 3))


def test_arch_sizes_and_unknown_vit_cfg_keys():
    giant = MODELS.build(dict(type='DINOv2', arch='giant', registers=True, img_size=28,
                              vit_cfg=dict(num_hidden_layers=1), out_indices=(0, 0, 0, 0)))
    config = giant.vit.config
    assert (config.hidden_size, config.num_attention_heads, config.patch_size) == (1536, 24, 14)
    assert config.use_swiglu_ffn and config.num_register_tokens == 4
    assert giant.vit.encoder.layer[0].mlp.weights_out.in_features == 4096  # as dinov2's w3
    # timm's argument names are refused rather than silently ignored
    with pytest.raises(ValueError, match='got depth, embed_dim'):
        backbone(vit_cfg=dict(embed_dim=48, depth=4))
    with pytest.raises(ValueError, match='got num_register_tokens'):
        backbone(vit_cfg=dict(SMALL, num_register_tokens=2))


def test_without_the_pyramid_the_rescaled_inputs_token_maps_come_out():
    """VFM-UDA's path: the input resized by 1.1 (64 -> 70, 5 x 5 patches), the last block's
    normalised token map, no pyramid."""
    model = backbone(pyramid=False, input_scale=1.1)
    assert model.out_indices == (3,) and model.pyramid is None
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        out = model(x)
        expected = model.block_features(torch.nn.functional.interpolate(
            x, size=(70, 70), mode='bilinear', align_corners=False))
    assert len(out) == 1 and out[0].shape == (1, 32, 5, 5)
    torch.testing.assert_close(out[0], expected[0], rtol=0, atol=1e-6)
    # without a scale the input is resized to the multiple of 14 below it: 60 x 75 -> 56 x 70
    assert backbone(pyramid=False)(torch.randn(1, 3, 60, 75))[0].shape == (1, 32, 4, 5)
    with pytest.raises(ValueError, match='pyramid=False only'):
        backbone(input_scale=1.1)
