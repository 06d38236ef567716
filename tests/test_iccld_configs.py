"""The ICCLD model configs build, and the tiny one trains and predicts on 128x128 crops."""
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.structures import PixelData

import mmseg_iccld  # noqa: F401  (registers the modules)
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

CONFIGS = osp.join(osp.dirname(__file__), '..', 'configs', '_base_', 'models')


def load(name: str) -> Config:
    return Config.fromfile(osp.join(CONFIGS, name))


def test_mitb5_config_is_segformer_mit_b5_with_iccld_parts():
    cfg = load('iccld_mitb5.py')
    backbone = cfg.model.backbone
    assert (backbone.type, backbone.embed_dims) == ('MixVisionTransformerSDPA', 64)
    assert backbone.num_layers == [3, 6, 40, 3] and backbone.num_heads == [1, 2, 5, 8]
    assert backbone.init_cfg == dict(type='Pretrained', checkpoint='pretrained/mit_b5.pth')
    assert cfg.model.data_preprocessor is None
    assert cfg.model.test_cfg == dict(mode='whole', num_inference_steps=3, num_samples=1,
                                      seed=0)
    model = MODELS.build(cfg.model)
    assert type(model).__name__ == 'ICCLD' and not model.in_phase2
    assert model.decode_head.num_classes == 19 and model.neck.latent_stride == 4
    assert model.diffusion.unet.config.block_out_channels == (32, 64, 128)
    assert model.diffusion.unet.config.in_channels == 19 + 64
    assert model.diffusion.prediction_type == 'v_prediction'
    assert model.chain_grad == 'all' and model.chain_loss_weight == 1.0


def test_tiny_config_trains_and_predicts_on_128_crops():
    cfg = load('iccld_mit_tiny.py')
    assert cfg.model.backbone.get('init_cfg') is None
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.set_phase(2)
    inputs = torch.randn(2, 3, 128, 128)
    samples = []
    for _ in range(2):
        sample = SegDataSample()
        sample.gt_sem_seg = PixelData(data=torch.randint(0, 19, (1, 128, 128)))
        sample.set_metainfo(dict(img_shape=(128, 128), ori_shape=(128, 128),
                                 pad_shape=(128, 128)))
        samples.append(sample)

    model.train()
    output = model.uda_loss(inputs, samples)
    losses = output.losses
    assert output.sample.shape == (2, 19, 32, 32)
    assert output.draw.noise.shape == output.draw.chain_noise.shape == (2, 19, 32, 32)
    assert output.draw.timesteps.shape == (2, )
    total = losses['decode.loss_ce'] + losses['loss_ldm']
    total.backward()
    # a fresh head predicts near-uniform classes: L_seg about log 19
    assert losses['decode.loss_ce'].item() == pytest.approx(torch.tensor(19.0).log().item(),
                                                            rel=0.1)
    assert losses['loss_ldm'].item() > 0

    model.eval()
    with torch.no_grad():
        results = model.predict(inputs, samples)
    assert results[0].pred_sem_seg.data.shape == (1, 128, 128)


@pytest.mark.parametrize('name', ['iccld_tiny.py', 'iccld_hr_tiny.py'])
def test_the_schedule_gives_every_module_without_imagenet_weights_the_heads_rate(name):
    """DAFormer's rule for new modules: E (`neck`), eps_theta (`diffusion`) and D (the decode
    head) learn at 10x the encoder's rate; the discriminator has its own optimizer."""
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import init_default_scope
    cfg = Config.fromfile(osp.join(CONFIGS, '..', '..', 'synthetic', name))
    init_default_scope('mmseg')
    uda = MODELS.build(cfg.model)
    wrappers = build_optim_wrapper(uda, cfg.optim_wrapper)
    base = cfg.optim_wrapper.model.optimizer.lr
    lr_of = {id(p): g['lr'] for g in wrappers['model'].optimizer.param_groups
             for p in g['params']}
    expected = dict(backbone=base, neck=10 * base, diffusion=10 * base, decode_head=10 * base)
    for name, param in uda.model.named_parameters():
        assert lr_of[id(param)] == pytest.approx(expected[name.split('.')[0]]), name
    assert {n.split('.')[0] for n, _ in uda.model.named_parameters()} == set(expected)
    discriminator = {id(p) for g in wrappers['discriminator'].optimizer.param_groups
                     for p in g['params']}
    assert discriminator == {id(p) for p in uda.discriminator.parameters()}
