"""The ICCLD segmentor: the two phases and the training losses (its prediction:
test_iccld_predictor.py)."""
import pytest
import torch
from mmengine.config import ConfigDict
from mmengine.structures import PixelData

from mmseg.registry import MODELS
from mmseg.structures import SegDataSample
from mmseg_iccld.models.diffusion import DiffusionDraw
from mmseg_iccld.models.losses import loss_ldm
from tiny_models import tiny_iccld

NUM_CLASSES = 4


def build_model(phase: int = 1, model_args=None, diffusion_args=None, **test_cfg):
    """``tiny_iccld`` with a 3-level epsilon UNet, no dropout, and the given overrides."""
    torch.manual_seed(0)
    cfg = ConfigDict(tiny_iccld(NUM_CLASSES), phase=phase, test_cfg=dict(mode='whole', **test_cfg),
                     **(model_args or {}))
    cfg.diffusion.update(block_out_channels=(8, 16, 16), norm_num_groups=4,
                         prediction_type='epsilon')
    cfg.diffusion.update(diffusion_args or {})
    cfg.decode_head.dropout_ratio = 0.0
    model = MODELS.build(cfg)
    model.init_weights()
    return model


def train_mask_projection(model):
    """Give D's m_hat0 projection the non-zero weights phase 2 would teach it."""
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


def shared_draw(batch: int = 2, size: int = 8) -> DiffusionDraw:
    generator = torch.Generator().manual_seed(3)
    noise = torch.randn(batch, NUM_CLASSES, size, size, generator=generator)
    chain_noise = torch.randn(batch, NUM_CLASSES, size, size, generator=generator)
    return DiffusionDraw(noise, torch.tensor([10, 600])[:batch], chain_noise)


def grad_sum(module) -> float:
    return float(sum(p.grad.abs().sum() for p in module.parameters() if p.grad is not None))


def eq2_noise_prediction(model, inputs, samples, draw) -> torch.Tensor:
    """eps_hat of eq. 2 by hand: E, the projector, the label code on the latent grid, the
    forward diffusion with the draw, eps_theta."""
    with torch.no_grad():
        z0 = model.neck(model.backbone(inputs))[-1]
        labels = torch.stack([s.gt_sem_seg.data[0, ::4, ::4] for s in samples])
        m_t = model.diffusion.add_noise(model.diffusion.mask_latent(labels), draw.noise,
                                        draw.timesteps)
        return model.diffusion.denoise(m_t, z0, draw.timesteps)[0]


def predict_logits(model, inputs, samples):
    model.eval()
    with torch.no_grad():
        return torch.stack([s.seg_logits.data for s in model.predict(inputs, samples)])


# the two phases (more in test_iccld_phases.py)


def test_phase1_loss_has_no_diffusion_and_leaves_unet_untrained():
    model = build_model(phase=1).train()
    output = model.uda_loss(*make_batch())
    assert set(output.losses) == {'decode.loss_ce', 'decode.acc_seg'}
    assert output.draw is None and output.sample is None
    output.losses['decode.loss_ce'].backward()
    assert all(p.grad is None for p in model.diffusion.parameters())
    assert model.backbone.layers[0][0].projection.weight.grad.abs().sum() > 0


def test_phase2_loss_is_finite_and_reaches_backbone_unet_and_head():
    model = build_model(phase=2).train()
    train_mask_projection(model)
    draw = shared_draw()
    output = model.uda_loss(*make_batch(), draw=draw)
    assert set(output.losses) == {'decode.loss_ce', 'decode.acc_seg', 'loss_ldm'}
    # the draw handed back is the one that was used (the UDA wrapper shares it)
    assert output.draw is draw
    assert output.sample.shape == (2, NUM_CLASSES, 8, 8) and output.sample.requires_grad
    total = output.losses['decode.loss_ce'] + output.losses['loss_ldm']
    assert torch.isfinite(total)
    total.backward()
    for module in (model.backbone, model.diffusion.unet, model.diffusion.cond_proj,
                   model.neck.stage_embeds, model.decode_head.skip_joins,
                   model.decode_head.bottleneck):
        assert grad_sum(module) > 0


@pytest.mark.parametrize('prediction_type', ['epsilon', 'v_prediction'])
def test_phase2_loss_ldm_matches_eq2_on_the_shared_draw(prediction_type):
    model = build_model(phase=2, diffusion_args=dict(prediction_type=prediction_type)).train()
    inputs, samples = make_batch()
    draw = shared_draw()
    output = model.uda_loss(inputs, samples, draw=draw)
    # by hand: E, projector, mask code, forward diffusion, eps_theta's output read as eps
    z0 = model.neck(model.backbone(inputs))[-1]
    labels = torch.stack([s.gt_sem_seg.data[0, ::4, ::4] for s in samples])
    m0 = 2 * torch.nn.functional.one_hot(labels, NUM_CLASSES).permute(0, 3, 1, 2) - 1.0
    alpha_bar = model.diffusion.noise_scheduler.alphas_cumprod[draw.timesteps]
    alpha_bar = alpha_bar.view(-1, 1, 1, 1)
    m_t = alpha_bar.sqrt() * m0 + (1 - alpha_bar).sqrt() * draw.noise
    raw = model.diffusion.predict_output(m_t, z0, draw.timesteps)
    if prediction_type == 'epsilon':
        noise_pred = raw
    else:  # v = sqrt(a) eps - sqrt(1 - a) m0  =>  eps = sqrt(a) v + sqrt(1 - a) m_t
        noise_pred = alpha_bar.sqrt() * raw + (1 - alpha_bar).sqrt() * m_t
    assert output.losses['loss_ldm'].item() == pytest.approx(
        (noise_pred - draw.noise).pow(2).mean().item(), rel=1e-5)
    bad = DiffusionDraw(draw.noise[:, :, :4], draw.timesteps, draw.chain_noise)
    with pytest.raises(ValueError, match='draw.noise has shape'):
        model.uda_loss(inputs, samples, draw=bad)


def test_target_pass_skips_decoder_and_runs_the_chain():
    model = build_model(phase=2).train()
    output = model.uda_loss(*make_batch(), draw=shared_draw(), with_seg=False)
    assert set(output.losses) == {'loss_ldm'}
    assert output.sample.shape == (2, NUM_CLASSES, 8, 8) and output.sample.requires_grad
    output.losses['loss_ldm'].backward()
    assert all(p.grad is None for p in model.decode_head.parameters())


def test_seg_loss_reaches_unet_through_the_chain_d_reads():
    model = build_model(phase=2).train()
    train_mask_projection(model)
    output = model.uda_loss(*make_batch(), draw=shared_draw())
    output.losses['decode.loss_ce'].backward()
    assert grad_sum(model.diffusion.unet) > 0


def test_decoder_reads_the_sampled_chain(monkeypatch):
    inputs, samples = make_batch()
    draw = shared_draw()
    model = build_model(phase=2).train()
    read = []
    forward = model.decode_head.forward

    def record(stages, image_latent, mask_latent):
        read.append(mask_latent.detach())
        return forward(stages, image_latent, mask_latent)

    monkeypatch.setattr(model.decode_head, 'forward', record)
    model.uda_loss(inputs, samples, draw=draw)
    # by hand, in the same (training) mode: deterministic, no dropout
    with torch.no_grad():
        z0 = model.neck(model.backbone(inputs))[-1]
        expected = model.diffusion.sample(z0, draw.chain_noise, 3)
    assert len(read) == 1
    torch.testing.assert_close(read[0], expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize('chain_grad,steps_with_grad', [('all', 3), ('last', 1)])
def test_chain_grad_keeps_the_graph_of_the_last_steps(chain_grad, steps_with_grad,
                                                      monkeypatch):
    model = build_model(phase=2, model_args=dict(chain_grad=chain_grad)).train()
    calls = []
    predict = model.diffusion.predict_output

    def record(noisy_mask, image_latent, timesteps):
        calls.append((int(timesteps[0]), torch.is_grad_enabled()))
        return predict(noisy_mask, image_latent, timesteps)

    monkeypatch.setattr(model.diffusion, 'predict_output', record)
    model.uda_loss(*make_batch(), draw=shared_draw())
    # eq. 2's draw first (with grad), then the chain at the trailing timesteps 999, 666, 332
    assert [t for t, _ in calls[1:]] == [999, 666, 332]
    assert [g for _, g in calls[1:]] == [i >= 3 - steps_with_grad for i in range(3)]
    assert calls[0][1]


def test_seg_weight_and_ignored_pixels_weight_both_losses():
    model = build_model(phase=2).train()
    draw = shared_draw()
    inputs, samples = make_batch()
    plain = model.uda_loss(inputs, samples, draw=draw).losses
    _, halved = make_batch(weight=torch.full((1, 32, 32), 0.5))
    half = model.uda_loss(inputs, halved, draw=draw).losses
    for key in ('decode.loss_ce', 'loss_ldm'):
        assert half[key].item() == pytest.approx(0.5 * plain[key].item(), rel=1e-5)

    # ignored left half, weight 0.25 on the top rows: per latent pixel 0 / 0.25 / 1
    weight = torch.ones(1, 32, 32)
    weight[:, :16] = 0.25
    _, weighted = make_batch(weight=weight)
    for sample in weighted:
        sample.gt_sem_seg.data[:, :, :16] = 255
    output = model.uda_loss(inputs, weighted, draw=draw)
    noise_pred = eq2_noise_prediction(model, inputs, weighted, draw)
    latent_weight = torch.ones(2, 8, 8)
    latent_weight[:, :4] = 0.25
    latent_weight[:, :, :4] = 0
    expected = loss_ldm(noise_pred, draw.noise, latent_weight)
    assert output.losses['loss_ldm'].item() == pytest.approx(expected.item(), rel=1e-5)
    squared_error = (noise_pred - draw.noise).pow(2).mean(dim=1)
    by_hand = (0.25 * squared_error[:, :4, 4:].sum() + squared_error[:, 4:, 4:].sum()) / 128
    assert output.losses['loss_ldm'].item() == pytest.approx(by_hand.item(), rel=1e-5)


def test_forward_passes_keyword_arguments_to_uda_loss():
    model = build_model(phase=2).train()
    inputs, samples = make_batch()
    draw = shared_draw()
    via_forward = model(inputs, samples, mode='uda', draw=draw, with_seg=False)
    direct = model.uda_loss(inputs, samples, draw=draw, with_seg=False)
    assert torch.equal(via_forward.losses['loss_ldm'], direct.losses['loss_ldm'])
    as_dict = model(inputs, samples, mode='loss', draw=draw, with_seg=False)
    assert torch.equal(as_dict['loss_ldm'], direct.losses['loss_ldm'])
    with pytest.raises(TypeError, match='no keyword arguments'):
        model(inputs, samples, mode='predict', draw=draw)


# switching to phase 2


def test_phase2_starts_exactly_at_the_phase1_model():
    model = build_model(phase=1)
    inputs, samples = make_batch()
    draw = shared_draw()
    phase1_logits = predict_logits(model, inputs, samples)
    model.set_phase(2)
    assert model.num_inference_steps == 3
    assert torch.equal(predict_logits(model, inputs, samples), phase1_logits)

    # training (batch-statistics BN): the same L_seg, now with m_hat0 read by D
    model.set_phase(1)
    model.train()
    phase1_loss = model.uda_loss(inputs, samples).losses
    model.set_phase(2)
    phase2_loss = model.uda_loss(inputs, samples, draw=draw).losses
    assert torch.equal(phase2_loss['decode.loss_ce'], phase1_loss['decode.loss_ce'])


def test_k0_is_the_phase1_decode_and_k3_differs():
    model = build_model(phase=1)
    train_mask_projection(model)
    inputs, samples = make_batch()
    phase1 = predict_logits(model, inputs, samples)
    model.set_phase(2)
    model.test_cfg.num_inference_steps = 0
    assert torch.equal(predict_logits(model, inputs, samples), phase1)
    model.test_cfg.num_inference_steps = 3
    assert not torch.allclose(predict_logits(model, inputs, samples), phase1)


def test_phase2_loss_without_condition_grad_trains_only_unet():
    """condition_grad=False: eq. 2 reaches eps_theta but not E (backbone, projector)."""
    model = build_model(phase=2).train()
    output = model.uda_loss(*make_batch(), draw=shared_draw(), with_seg=False,
                            condition_grad=False)
    assert set(output.losses) == {'loss_ldm'}
    output.losses['loss_ldm'].backward()
    assert all(p.grad is None for p in model.backbone.parameters())
    assert all(p.grad is None for p in model.neck.parameters())
    assert grad_sum(model.diffusion.unet) > 0


def test_phase2_loss_draws_noise_timesteps_and_chain_noise_when_not_given():
    model = build_model(phase=2).train()
    output = model.uda_loss(*make_batch(), with_seg=False)
    draw = output.draw
    assert draw.noise.shape == draw.chain_noise.shape == (2, NUM_CLASSES, 8, 8)
    assert not torch.equal(draw.noise, draw.chain_noise)
    assert draw.timesteps.dtype == torch.long and draw.timesteps.shape == (2, )
    assert 0 <= int(draw.timesteps.min()) and int(draw.timesteps.max()) < 1000
    # reusing the returned draw reproduces eq. 2 exactly
    again = model.uda_loss(*make_batch(), with_seg=False, draw=draw)
    torch.testing.assert_close(again.losses['loss_ldm'], output.losses['loss_ldm'])


def test_chain_loss_is_the_weighted_error_of_the_chain_estimate():
    model = build_model(phase=2, model_args=dict(chain_loss_weight=0.5)).train()
    inputs, samples = make_batch()
    output = model.uda_loss(inputs, samples, draw=shared_draw())
    labels = torch.stack([s.gt_sem_seg.data[0, ::4, ::4] for s in samples])
    m0 = 2 * torch.nn.functional.one_hot(labels, NUM_CLASSES).permute(0, 3, 1, 2) - 1.0
    by_hand = 0.5 * (output.sample - m0).pow(2).mean()
    assert output.losses['loss_chain'].item() == pytest.approx(by_hand.item(), rel=1e-5)
    output.losses['loss_chain'].backward()
    assert grad_sum(model.diffusion.unet) > 0 and grad_sum(model.backbone) > 0
    # the target pass (no D) runs the chain and its loss too; off by default
    assert 'loss_chain' in model.uda_loss(inputs, samples, with_seg=False).losses
    assert 'loss_chain' not in build_model(phase=2).uda_loss(inputs, samples).losses
