"""ICCLD's latent projector (z0), mask diffusion (code, eps_theta), decoder D and domain
discriminator."""
import math

import pytest
import torch
import torch.nn.functional as F
from diffusers.models.attention_processor import Attention
from mmengine.structures import PixelData

from mmseg.registry import MODELS
from mmseg.structures import SegDataSample
from references import loss_seg

STAGE_CHANNELS = [8, 16, 40, 64]
NUM_CLASSES = 3


def build_neck(**overrides):
    cfg = dict(type='LatentProjector', in_channels=STAGE_CHANNELS, latent_channels=16)
    cfg.update(overrides)
    return MODELS.build(cfg)


def build_diffusion(**overrides):
    cfg = dict(
        type='MaskDiffusion',
        num_classes=NUM_CLASSES,
        latent_channels=16,
        cond_channels=8,
        mask_scale=2.0,
        block_out_channels=(8, 16, 16),
        norm_num_groups=4)
    cfg.update(overrides)
    return MODELS.build(cfg)


def build_head(**overrides):
    cfg = dict(
        type='InterCoderHead',
        in_channels=STAGE_CHANNELS,
        channels=16,
        latent_channels=16,
        num_classes=NUM_CLASSES,
        dropout_ratio=0.0,
        norm_cfg=dict(type='BN'))
    cfg.update(overrides)
    return MODELS.build(cfg)


def stages(height: int, width: int, batch: int = 2):
    """Random backbone stages at strides 4, 8, 16, 32 (MiT rounds up)."""
    return [
        torch.randn(batch, c, math.ceil(height / s), math.ceil(width / s))
        for c, s in zip(STAGE_CHANNELS, (4, 8, 16, 32))
    ]


# neck


@pytest.mark.parametrize('stride,expected', [(4, (9, 11)), (8, (5, 6))])
def test_image_latent_grid(stride, expected):
    neck = build_neck(latent_stride=stride)
    features = stages(36, 44)
    *passed, z0 = neck(features)
    assert z0.shape == (2, 16, *expected)
    assert all(a is b for a, b in zip(passed, features)) and len(passed) == 4


def test_mask_latent_is_scaled_analog_onehot():
    diffusion = build_diffusion()
    label = torch.tensor([[[0, 2], [255, 1]]])
    m0 = diffusion.mask_latent(label)
    expected = torch.tensor([[[2.0, -2.0], [0.0, -2.0]],   # class 0
                             [[-2.0, -2.0], [0.0, 2.0]],   # class 1
                             [[-2.0, 2.0], [0.0, -2.0]]])  # class 2
    assert torch.equal(m0[0], expected)


def test_downsample_to_latent_is_nearest():
    diffusion = build_diffusion()
    label = torch.arange(16).reshape(1, 1, 4, 4)
    assert torch.equal(diffusion.downsample_to_latent(label, (2, 2)), torch.tensor([[[0, 2],
                                                                                  [8, 10]]]))


def test_add_noise_and_clean_estimate_invert_each_other():
    diffusion = build_diffusion()
    alpha_bar = diffusion.noise_scheduler.alphas_cumprod
    m0 = diffusion.mask_latent(torch.tensor([[[0, 1], [2, 255]]])).repeat(2, 1, 1, 1)
    noise = torch.randn_like(m0)
    t = torch.tensor([0, 400])
    m_t = diffusion.add_noise(m0, noise, t)
    by_hand = alpha_bar[t].sqrt().view(2, 1, 1, 1) * m0 + (
        1 - alpha_bar[t]).sqrt().view(2, 1, 1, 1) * noise
    assert torch.allclose(m_t, by_hand, atol=1e-6)
    # an exact noise prediction gives m0 back (epsilon form); a wrong one is clamped to the
    # code's range [-2, 2]
    exact = lambda *args: noise  # noqa: E731
    diffusion.predict_output = exact
    assert torch.allclose(diffusion.denoise(m_t, None, t)[1], m0, atol=1e-4)
    diffusion.predict_output = lambda *args: noise - 5.0
    estimate = diffusion.denoise(m_t, None, torch.tensor([900, 900]))[1]
    assert estimate.max().item() == 2.0


@pytest.mark.parametrize('prediction_type', ['epsilon', 'v_prediction'])
def test_clean_estimate_matches_ddim_scheduler(prediction_type):
    """Training reads the same clamped x0-estimate that the DDIM sampler steps from, and
    eq. 2's eps_hat is the noise diffusers' DDPM scheduler defines for that output."""
    diffusion = build_diffusion(prediction_type=prediction_type)
    scheduler = diffusion.sample_scheduler
    scheduler.set_timesteps(3)
    m_t, out = 3 * torch.randn(1, NUM_CLASSES, 4, 4), torch.randn(1, NUM_CLASSES, 4, 4)
    diffusion.predict_output = lambda *args: out
    for t in scheduler.timesteps.tolist():
        expected = scheduler.step(out, t, m_t).pred_original_sample
        noise_pred, estimate = diffusion.denoise(m_t, None, torch.tensor([t]))
        assert torch.allclose(estimate, expected, atol=1e-5)
        if prediction_type == 'v_prediction':
            # diffusers' velocity of (m0, eps) is the UNet's target: v(x0_hat, eps_hat) = out
            # wherever the estimate is not clamped
            velocity = diffusion.noise_scheduler.get_velocity(estimate, noise_pred,
                                                              torch.tensor([t]))
            inside = estimate.abs() < 2.0
            assert torch.allclose(velocity[inside], out[inside], atol=1e-4)
        else:
            assert torch.equal(noise_pred, out)
    assert scheduler.timesteps.tolist() == [999, 666, 332]  # 'trailing': starts at T - 1


def test_predict_output_pads_and_crops_non_divisible_latents():
    diffusion = build_diffusion().eval()
    assert diffusion.size_divisor == 4
    z0 = torch.randn(2, 16, 9, 11)
    m_t = torch.randn(2, NUM_CLASSES, 9, 11)
    t = torch.tensor([10, 700])
    with torch.no_grad():
        eps = diffusion.predict_output(m_t, z0, t)
        sample = torch.cat([m_t, diffusion.cond_proj(z0)], dim=1)
        by_hand = diffusion.unet(F.pad(sample, (0, 1, 0, 3), mode='replicate'), t).sample
    assert eps.shape == (2, NUM_CLASSES, 9, 11)
    assert torch.allclose(eps, by_hand[:, :, :9, :11], atol=1e-6)
    # divisible sizes go straight through
    with torch.no_grad():
        z0, m_t = z0[:, :, :8, :8], m_t[:, :, :8, :8]
        direct = diffusion.unet(torch.cat([m_t, diffusion.cond_proj(z0)], dim=1), t).sample
        assert torch.allclose(diffusion.predict_output(m_t, z0, t), direct, atol=1e-6)


def test_unet_is_light_by_default():
    diffusion = MODELS.build(dict(type='MaskDiffusion', num_classes=19))
    unet = diffusion.unet
    assert unet.config.in_channels == 19 + 64 and unet.config.out_channels == 19
    assert not any(isinstance(m, Attention) for m in unet.modules())
    assert not diffusion.noise_scheduler.config.clip_sample
    assert diffusion.noise_scheduler.config.beta_schedule == 'squaredcos_cap_v2'
    with pytest.raises(ValueError, match='prediction_type'):
        MODELS.build(dict(type='MaskDiffusion', num_classes=19, prediction_type='sample'))


# decoder D


def test_head_output_and_long_skips_from_every_stage():
    head = build_head()
    feats = [f.requires_grad_() for f in stages(32, 40)]
    z0 = torch.randn(2, 16, 8, 10, requires_grad=True)
    logits = head(feats, z0, torch.randn(2, NUM_CLASSES, 8, 10))
    assert logits.shape == (2, NUM_CLASSES, 8, 10)
    logits.square().sum().backward()
    for x in feats + [z0]:
        assert x.grad.abs().sum() > 0


def test_head_reads_latent_at_stride_8():
    head = build_head()
    logits = head(stages(32, 40), torch.randn(2, 16, 4, 5), torch.randn(2, NUM_CLASSES, 4, 5))
    assert logits.shape == (2, NUM_CLASSES, 8, 10)


def test_zero_mask_projection_makes_head_ignore_the_mask():
    head = build_head().eval()
    head.init_weights()
    assert head.mask_latent_proj.weight.abs().sum() == 0
    feats, z0 = stages(32, 32), torch.randn(2, 16, 8, 8)
    reference = head(feats, z0, None)
    assert torch.equal(head(feats, z0, torch.randn(2, NUM_CLASSES, 8, 8)), reference)
    with torch.no_grad():
        head.mask_latent_proj.weight.normal_()
    assert not torch.allclose(head(feats, z0, torch.randn(2, NUM_CLASSES, 8, 8)), reference)


def test_head_loss_honours_seg_weight_as_eq1():
    head = build_head()
    assert head.supports_seg_weight
    logits = torch.randn(2, NUM_CLASSES, 4, 4)
    samples = []
    for i in range(2):
        sample = SegDataSample()
        label = torch.randint(0, NUM_CLASSES, (1, 16, 16))
        label[0, :3] = 255
        sample.gt_sem_seg = PixelData(data=label)
        if i == 1:  # the first sample has no weight and weighs 1
            sample.seg_weight = PixelData(data=torch.rand(1, 16, 16))
        samples.append(sample)
    losses = head.loss_by_feat(logits, samples)
    up = F.interpolate(logits, size=(16, 16), mode='bilinear', align_corners=False)
    label = torch.stack([s.gt_sem_seg.data[0] for s in samples])
    weight = torch.stack([torch.ones(16, 16), samples[1].seg_weight.data[0]])
    assert losses['loss_ce'].item() == pytest.approx(
        loss_seg(up, label, weight).item(), rel=1e-5)
    assert set(losses) == {'loss_ce', 'acc_seg'}


# discriminator f_dis


def test_domain_discriminator_hand_values():
    disc = MODELS.build(dict(type='DomainDiscriminator', in_channels=1, channels=(2, )))
    conv, classifier = disc.features[0], disc.classifier
    with torch.no_grad():
        conv.weight.copy_(torch.stack([torch.ones(1, 3, 3), -torch.ones(1, 3, 3)]))
        conv.bias.zero_()
        classifier.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])[:, :, None,
                                                                                      None])
        classifier.bias.copy_(torch.tensor([0.0, 0.0, 0.5]))
    estimate = torch.tensor([[[[1.0, -1.0], [2.0, 0.0]]]])
    # stride-2 3x3 conv on 2x2 sees all four values once: channel sums 2 and -2;
    # LeakyReLU(0.2): 2 and -0.4; the 1x1 classifier on the single patch
    expected = torch.tensor([[2.0, -0.4, 2.0 - 0.4 + 0.5]])[:, :, None, None]
    assert torch.allclose(disc(estimate), expected, atol=1e-6)


def test_domain_discriminator_decides_per_patch():
    disc = MODELS.build(dict(type='DomainDiscriminator', in_channels=19))
    # three stride-2 3x3 convolutions with padding 1: 32 -> 16 -> 8 -> 4
    assert disc(torch.randn(4, 19, 32, 29)).shape == (4, 3, 4, 4)
    # one patch's logits depend on its receptive field only: a change far away leaves it
    x = torch.randn(1, 19, 32, 32)
    far = x.clone()
    far[:, :, 24:, 24:] += 1
    torch.testing.assert_close(disc(x)[..., 0, 0], disc(far)[..., 0, 0])
