"""The ICCLD segmentor: the two steps, the training losses and DDIM inference."""
import math

import pytest
import torch
from mmengine.config import ConfigDict
from mmengine.structures import PixelData

from mmseg.registry import MODELS
from mmseg.structures import SegDataSample
from mmseg_iccld.models.losses import loss_ldm

NUM_CLASSES = 4


def build_model(stage: int = 1, **test_cfg):
    torch.manual_seed(0)
    cfg = ConfigDict(
        type='ICCLD',
        diffusion_stage=stage,
        backbone=dict(
            type='MixVisionTransformer',
            embed_dims=8,
            num_layers=[1, 1, 1, 1],
            num_heads=[1, 2, 5, 8]),
        neck=dict(
            type='DiffusionLatentNeck',
            in_channels=[8, 16, 40, 64],
            num_classes=NUM_CLASSES,
            latent_channels=16,
            cond_channels=8,
            block_out_channels=(8, 16, 16),
            norm_num_groups=4),
        decode_head=dict(
            type='InterCoderHead',
            in_channels=[8, 16, 40, 64],
            channels=16,
            latent_channels=16,
            num_classes=NUM_CLASSES,
            dropout_ratio=0.0,
            norm_cfg=dict(type='BN')),
        test_cfg=dict(mode='whole', **test_cfg))
    model = MODELS.build(cfg)
    model.init_weights()
    return model


def train_mask_projection(model):
    """Give D's m_hat0 projection the non-zero weights step 2 would teach it."""
    with torch.no_grad():
        model.decode_head.mask_latent_proj.weight.normal_(std=2.0)


def make_batch(height: int = 32, width: int = 32, batch: int = 2, weight=None):
    torch.manual_seed(1)
    inputs = torch.randn(batch, 3, height, width)
    samples = []
    for _ in range(batch):
        sample = SegDataSample()
        sample.gt_sem_seg = PixelData(data=torch.randint(0, NUM_CLASSES, (1, height, width)))
        if weight is not None:
            sample.seg_weight = PixelData(data=weight.clone())
        shape = (height, width)
        sample.set_metainfo(dict(img_shape=shape, ori_shape=shape, pad_shape=shape))
        samples.append(sample)
    return inputs, samples


def shared_draw(batch: int = 2, size: int = 8):
    generator = torch.Generator().manual_seed(3)
    noise = torch.randn(batch, NUM_CLASSES, size, size, generator=generator)
    return noise, torch.tensor([10, 600])[:batch]


def predict_logits(model, inputs, samples):
    model.eval()
    with torch.no_grad():
        return torch.stack([s.seg_logits.data for s in model.predict(inputs, samples)])


# the two steps


def test_diffusion_stage_is_a_checkpointed_buffer():
    model = build_model()
    assert int(model.diffusion_stage) == 1 and not model.in_stage2
    model.set_diffusion_stage(2)
    state = model.state_dict()
    assert int(state['diffusion_stage']) == 2
    fresh = build_model()
    fresh.load_state_dict(state)
    assert fresh.in_stage2
    with pytest.raises(ValueError, match='1 or 2'):
        model.set_diffusion_stage(3)


def test_stage1_loss_has_no_diffusion_and_leaves_unet_untrained():
    model = build_model(stage=1).train()
    losses = model.loss(*make_batch())
    assert set(losses) == {'decode.loss_ce', 'decode.acc_seg'}
    losses['decode.loss_ce'].backward()
    assert all(p.grad is None for p in model.neck.unet.parameters())
    assert model.backbone.layers[0][0].projection.weight.grad.abs().sum() > 0


def test_stage2_loss_is_finite_and_reaches_backbone_unet_and_head():
    model = build_model(stage=2).train()
    noise, timesteps = shared_draw()
    losses = model.loss(*make_batch(), noise=noise, timesteps=timesteps,
                        return_noise_pred=True)
    assert set(losses) == {'decode.loss_ce', 'decode.acc_seg', 'loss_ldm', 'noise_pred',
                           'noise', 'timesteps'}
    # the draw handed back is the one that was used (the UDA wrapper shares it)
    assert losses.pop('noise') is noise and losses.pop('timesteps') is timesteps
    noise_pred = losses.pop('noise_pred')
    assert noise_pred.shape == (2, NUM_CLASSES, 8, 8) and noise_pred.requires_grad
    total = losses['decode.loss_ce'] + losses['loss_ldm']
    assert torch.isfinite(total)
    total.backward()
    for module in (model.backbone, model.neck.unet, model.neck.stage_embeds,
                   model.decode_head.skip_joins, model.decode_head.bottleneck):
        grads = [p.grad for p in module.parameters() if p.grad is not None]
        assert grads and sum(g.abs().sum() for g in grads) > 0


def test_stage2_loss_ldm_matches_eq2_on_the_shared_draw():
    model = build_model(stage=2).train()
    inputs, samples = make_batch()
    noise, timesteps = shared_draw()
    losses = model.loss(inputs, samples, noise=noise, timesteps=timesteps,
                        return_noise_pred=True)
    # by hand: E, projector, mask code, forward diffusion, eps_theta
    z0 = model.neck(model.backbone(inputs))
    labels = torch.stack([s.gt_sem_seg.data[0, ::4, ::4] for s in samples])
    m_t = model.neck.add_noise(model.neck.mask_latent(labels), noise, timesteps)
    noise_pred = model.neck.predict_noise(m_t, z0, timesteps)
    assert torch.allclose(losses['noise_pred'], noise_pred, atol=1e-5)
    assert losses['loss_ldm'].item() == pytest.approx(
        (noise_pred - noise).pow(2).mean().item(), rel=1e-5)
    with pytest.raises(ValueError, match='noise has shape'):
        model.loss(inputs, samples, noise=noise[:, :, :4], timesteps=timesteps)


def test_target_pass_skips_decoder():
    model = build_model(stage=2).train()
    noise, timesteps = shared_draw()
    losses = model.loss(*make_batch(), noise=noise, timesteps=timesteps, with_seg=False,
                        return_noise_pred=True)
    assert set(losses) == {'loss_ldm', 'noise_pred', 'noise', 'timesteps'}
    losses['loss_ldm'].backward()
    assert all(p.grad is None for p in model.decode_head.parameters())


@pytest.mark.parametrize('detach', [True, False])
def test_seg_loss_reaches_unet_only_without_detach(detach):
    model = build_model(stage=2).train()
    model.detach_mask_estimate = detach
    train_mask_projection(model)
    noise, timesteps = shared_draw()
    losses = model.loss(*make_batch(), noise=noise, timesteps=timesteps, with_ldm=False)
    assert set(losses) == {'decode.loss_ce', 'decode.acc_seg'}
    losses['decode.loss_ce'].backward()
    grads = [p.grad for p in model.neck.unet.parameters()]
    if detach:
        assert all(g is None for g in grads)
    else:
        assert sum(g.abs().sum() for g in grads if g is not None) > 0


def test_seg_weight_and_ignored_pixels_weight_both_losses():
    model = build_model(stage=2).train()
    noise, timesteps = shared_draw()
    inputs, samples = make_batch()
    plain = model.loss(inputs, samples, noise=noise, timesteps=timesteps)
    _, halved = make_batch(weight=torch.full((1, 32, 32), 0.5))
    half = model.loss(inputs, halved, noise=noise, timesteps=timesteps)
    for key in ('decode.loss_ce', 'loss_ldm'):
        assert half[key].item() == pytest.approx(0.5 * plain[key].item(), rel=1e-5)

    # ignored left half, weight 0.25 on the top rows: per latent pixel 0 / 0.25 / 1
    weight = torch.ones(1, 32, 32)
    weight[:, :16] = 0.25
    _, weighted = make_batch(weight=weight)
    for sample in weighted:
        sample.gt_sem_seg.data[:, :, :16] = 255
    losses = model.loss(inputs, weighted, noise=noise, timesteps=timesteps,
                        return_noise_pred=True)
    latent_weight = torch.ones(2, 8, 8)
    latent_weight[:, :4] = 0.25
    latent_weight[:, :, :4] = 0
    expected = loss_ldm(losses['noise_pred'], noise, latent_weight)
    assert losses['loss_ldm'].item() == pytest.approx(expected.item(), rel=1e-6)
    squared_error = (losses['noise_pred'] - noise).pow(2).mean(dim=1)
    by_hand = (0.25 * squared_error[:, :4, 4:].sum() + squared_error[:, 4:, 4:].sum()) / 128
    assert losses['loss_ldm'].item() == pytest.approx(by_hand.item(), rel=1e-5)


def test_forward_passes_keyword_arguments_to_loss():
    model = build_model(stage=2).train()
    inputs, samples = make_batch()
    noise, timesteps = shared_draw()
    via_forward = model(inputs, samples, mode='loss', noise=noise, timesteps=timesteps,
                        with_seg=False)
    direct = model.loss(inputs, samples, noise=noise, timesteps=timesteps, with_seg=False)
    assert torch.equal(via_forward['loss_ldm'], direct['loss_ldm'])
    with pytest.raises(TypeError, match='no keyword arguments'):
        model(inputs, samples, mode='predict', noise=noise)


# switching to step 2


def test_step2_starts_exactly_at_the_step1_model():
    model = build_model(stage=1)
    inputs, samples = make_batch()
    noise, timesteps = shared_draw()
    stage1_logits = predict_logits(model, inputs, samples)
    model.set_diffusion_stage(2)
    assert model.num_inference_steps == 3
    assert torch.equal(predict_logits(model, inputs, samples), stage1_logits)

    # training (batch-statistics BN): the same L_seg, now with m_hat0 read by D
    model.set_diffusion_stage(1)
    model.train()
    stage1_loss = model.loss(inputs, samples, noise=noise, timesteps=timesteps)
    model.set_diffusion_stage(2)
    stage2_loss = model.loss(inputs, samples, noise=noise, timesteps=timesteps)
    assert torch.equal(stage2_loss['decode.loss_ce'], stage1_loss['decode.loss_ce'])


def test_k0_is_the_step1_decode_and_k3_differs():
    model = build_model(stage=1)
    train_mask_projection(model)
    inputs, samples = make_batch()
    stage1 = predict_logits(model, inputs, samples)
    model.set_diffusion_stage(2)
    model.test_cfg.num_inference_steps = 0
    assert torch.equal(predict_logits(model, inputs, samples), stage1)
    model.test_cfg.num_inference_steps = 3
    assert not torch.allclose(predict_logits(model, inputs, samples), stage1)


# DDIM inference


def test_ddim_loop_by_hand_for_two_steps():
    model = build_model(stage=2).eval()
    alpha_bar = model.neck.noise_scheduler.alphas_cumprod
    z0 = torch.randn(1, 16, 8, 8)
    m_t = torch.randn(1, NUM_CLASSES, 8, 8)
    with torch.no_grad():
        result = model.sample_mask_latent(z0, m_t, num_steps=2)
        # trailing timesteps 999, 499; eta 0; x0 clamped to [-1, 1]; step 499 -> -1 is a_prev 1
        eps = model.neck.predict_noise(m_t, z0, torch.tensor([999]))
        x0 = ((m_t - (1 - alpha_bar[999]).sqrt() * eps) / alpha_bar[999].sqrt()).clamp(-1, 1)
        m_499 = alpha_bar[499].sqrt() * x0 + (1 - alpha_bar[499]).sqrt() * eps
        eps = model.neck.predict_noise(m_499, z0, torch.tensor([499]))
        x0 = ((m_499 - (1 - alpha_bar[499]).sqrt() * eps) / alpha_bar[499].sqrt()).clamp(-1, 1)
    assert torch.allclose(result, x0, atol=1e-5)


def test_same_seed_same_prediction_other_seed_differs():
    model = build_model(stage=2, num_inference_steps=2, seed=5)
    train_mask_projection(model)
    inputs, samples = make_batch()
    first = predict_logits(model, inputs, samples)
    assert torch.equal(predict_logits(model, inputs, samples), first)
    # every image gets the same draws: a prediction does not depend on its batch
    alone = predict_logits(model, inputs[1:], samples[1:])[0]
    assert torch.allclose(alone, first[1], atol=1e-6)  # batched kernels round differently
    model.test_cfg.seed = 6
    assert not torch.allclose(predict_logits(model, inputs, samples), first)


def test_uncertainty_is_entropy_of_mean_softmax_by_hand(monkeypatch):
    model = build_model(stage=2, num_inference_steps=1, num_samples=2)
    inputs, samples = make_batch(batch=1)
    # two draws whose class probabilities are (0.9, 0.1, 0, 0) and (0.7, 0.3, 0, 0) at
    # every pixel: mean (0.8, 0.2), entropy -(0.8 ln 0.8 + 0.2 ln 0.2)
    draws = iter([
        torch.tensor([math.log(0.9), math.log(0.1), -1e4, -1e4]),
        torch.tensor([math.log(0.7), math.log(0.3), -1e4, -1e4]),
    ])
    monkeypatch.setattr(
        model.decode_head, 'predict',
        lambda inputs, metas, cfg: next(draws).view(1, 4, 1, 1).expand(1, 4, 32, 32).clone())
    model.eval()
    with torch.no_grad():
        result = model.predict(inputs, samples)[0]
    expected = -(0.8 * math.log(0.8) + 0.2 * math.log(0.2))
    assert result.uncertainty.data.shape == (1, 32, 32)
    assert torch.allclose(result.uncertainty.data, torch.full((1, 32, 32), expected), atol=1e-6)
    assert torch.allclose(result.seg_logits.data[:2, 0, 0],
                          torch.tensor([math.log(0.8), math.log(0.2)]), atol=1e-6)
    assert torch.all(result.pred_sem_seg.data == 0)


def test_uncertainty_from_the_model_s2_matches_manual_draws():
    model = build_model(stage=2, num_inference_steps=2, num_samples=2, seed=7)
    train_mask_projection(model)
    inputs, samples = make_batch(batch=1)
    model.eval()
    with torch.no_grad():
        result = model.predict(inputs, samples)[0]
        feats = model.backbone(inputs)
        z0 = model.neck(feats)
        noise = torch.randn(2, 1, NUM_CLASSES, 8, 8, generator=torch.Generator().manual_seed(7))
        probs = [
            model.decode_head.predict((feats, z0, model.sample_mask_latent(z0, n, 2)),
                                      [samples[0].metainfo], model.test_cfg).softmax(dim=1)
            for n in noise
        ]
    mean = (probs[0] + probs[1]) / 2
    entropy = -(mean * mean.log()).sum(dim=1)
    assert not torch.allclose(probs[0], probs[1])
    assert torch.allclose(result.uncertainty.data, entropy, atol=1e-5)
    assert torch.equal(result.pred_sem_seg.data, mean.argmax(dim=1))


def test_whole_inference_with_non_divisible_latent():
    model = build_model(stage=2, num_samples=2)
    inputs, samples = make_batch(height=36, width=44)  # latent 9x11, UNet needs multiples of 4
    model.eval()
    with torch.no_grad():
        results = model.predict(inputs, samples)
    assert results[0].pred_sem_seg.data.shape == (1, 36, 44)
    uncertainty = results[1].uncertainty.data
    assert uncertainty.shape == (1, 36, 44)
    assert uncertainty.min() >= 0 and uncertainty.max() <= math.log(NUM_CLASSES) + 1e-6


def test_slide_inference_without_overlap_is_per_window_whole_inference():
    model = build_model(stage=2, num_inference_steps=2, num_samples=2)
    train_mask_projection(model)
    inputs, samples = make_batch(height=32, width=64, batch=1)
    model.eval()
    with torch.no_grad():
        model.test_cfg.update(mode='slide', crop_size=(32, 32), stride=(32, 32))
        slide = model.predict(inputs, samples)[0]
        model.test_cfg.mode = 'whole'
        windows = []
        for x in (0, 32):
            _, window_samples = make_batch(height=32, width=32, batch=1)
            windows.append(model.predict(inputs[:, :, :, x:x + 32], window_samples)[0])
    for key in ('uncertainty', 'seg_logits', 'pred_sem_seg'):
        whole = torch.cat([getattr(w, key).data for w in windows], dim=2)
        assert torch.allclose(getattr(slide, key).data, whole, atol=1e-5), key


def test_slide_inference_with_overlap_runs():
    model = build_model(stage=2, num_samples=2)
    inputs, samples = make_batch(height=40, width=52, batch=1)
    model.test_cfg.update(mode='slide', crop_size=(32, 32), stride=(20, 20))
    model.eval()
    with torch.no_grad():
        result = model.predict(inputs, samples)[0]
    assert result.pred_sem_seg.data.shape == (1, 40, 52)
    assert result.uncertainty.data.shape == (1, 40, 52)
    assert torch.isfinite(result.seg_logits.data).all()


def test_tensor_mode_returns_decoder_logits():
    model = build_model(stage=2).eval()
    inputs, _ = make_batch()
    with torch.no_grad():
        assert model(inputs, mode='tensor').shape == (2, NUM_CLASSES, 8, 8)


def test_stage2_loss_without_condition_grad_trains_only_unet():
    """condition_grad=False: eq. 2 reaches eps_theta but not E (backbone, projector)."""
    model = build_model(stage=2).train()
    noise, timesteps = shared_draw()
    losses = model.loss(*make_batch(), noise=noise, timesteps=timesteps, with_seg=False,
                        condition_grad=False)
    assert set(losses) == {'loss_ldm'}
    losses['loss_ldm'].backward()
    assert all(p.grad is None for p in model.backbone.parameters())
    assert all(p.grad is None for p in model.neck.stage_embeds.parameters())
    assert sum(p.grad.abs().sum() for p in model.neck.unet.parameters()
               if p.grad is not None) > 0


def test_stage2_loss_draws_noise_and_timesteps_when_not_given():
    model = build_model(stage=2).train()
    losses = model.loss(*make_batch(), with_seg=False, return_noise_pred=True)
    noise, timesteps = losses['noise'], losses['timesteps']
    assert noise.shape == losses['noise_pred'].shape
    assert timesteps.dtype == torch.long and timesteps.shape == (2, )
    assert 0 <= int(timesteps.min()) and int(timesteps.max()) < 1000
    # reusing the returned draw reproduces eq. 2 exactly
    again = model.loss(*make_batch(), with_seg=False, noise=noise, timesteps=timesteps)
    torch.testing.assert_close(again['loss_ldm'], losses['loss_ldm'])
