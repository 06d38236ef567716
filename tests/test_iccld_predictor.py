"""ICCLD's prediction: the DDIM loop by hand, seeded draws, the S-draw uncertainty, whole and
slide inference."""
import math

import torch

from test_iccld_model import (NUM_CLASSES, build_model, make_batch, predict_logits,
                              train_mask_projection)


# DDIM inference


def test_ddim_loop_by_hand_for_two_steps():
    model = build_model(phase=2).eval()
    alpha_bar = model.diffusion.noise_scheduler.alphas_cumprod
    z0 = torch.randn(1, 16, 8, 8)
    m_t = torch.randn(1, NUM_CLASSES, 8, 8)
    with torch.no_grad():
        result = model.diffusion.sample(z0, m_t, num_steps=2)
        # trailing timesteps 999, 499; eta 0; x0 clamped to [-1, 1]; step 499 -> -1 is a_prev 1
        eps = model.diffusion.predict_output(m_t, z0, torch.tensor([999]))
        x0 = ((m_t - (1 - alpha_bar[999]).sqrt() * eps) / alpha_bar[999].sqrt()).clamp(-1, 1)
        m_499 = alpha_bar[499].sqrt() * x0 + (1 - alpha_bar[499]).sqrt() * eps
        eps = model.diffusion.predict_output(m_499, z0, torch.tensor([499]))
        x0 = ((m_499 - (1 - alpha_bar[499]).sqrt() * eps) / alpha_bar[499].sqrt()).clamp(-1, 1)
    assert torch.allclose(result, x0, atol=1e-5)


def test_ddim_loop_by_hand_for_two_steps_with_v_prediction():
    model = build_model(phase=2, diffusion_args=dict(prediction_type='v_prediction')).eval()
    alpha_bar = model.diffusion.noise_scheduler.alphas_cumprod
    z0 = torch.randn(1, 16, 8, 8)
    m_t = torch.randn(1, NUM_CLASSES, 8, 8)
    with torch.no_grad():
        result = model.diffusion.sample(z0, m_t, num_steps=2)
        m = m_t
        for t, t_prev in ((999, 499), (499, None)):
            a = alpha_bar[t]
            v = model.diffusion.predict_output(m, z0, torch.tensor([t]))
            x0 = (a.sqrt() * m - (1 - a).sqrt() * v).clamp(-1, 1)
            eps = a.sqrt() * v + (1 - a).sqrt() * m
            if t_prev is not None:
                m = alpha_bar[t_prev].sqrt() * x0 + (1 - alpha_bar[t_prev]).sqrt() * eps
    assert torch.allclose(result, x0, atol=1e-5)
    # the x0-estimate at t = 999 is well conditioned: -v (times ~1), not v / 5e-5
    with torch.no_grad():
        v = model.diffusion.predict_output(m_t, z0, torch.tensor([999]))
        _, estimate = model.diffusion.denoise(m_t, z0, torch.tensor([999]))
    assert torch.allclose(estimate, (-v).clamp(-1, 1), atol=1e-3)


def test_same_seed_same_prediction_other_seed_differs():
    model = build_model(phase=2, num_inference_steps=2, seed=5)
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
    model = build_model(phase=2, num_inference_steps=1, num_samples=2)
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
    model = build_model(phase=2, num_inference_steps=2, num_samples=2, seed=7)
    train_mask_projection(model)
    inputs, samples = make_batch(batch=1)
    model.eval()
    with torch.no_grad():
        result = model.predict(inputs, samples)[0]
        feats = model.backbone(inputs)
        z0 = model.neck(feats)[-1]
        noise = torch.randn(2, 1, NUM_CLASSES, 8, 8, generator=torch.Generator().manual_seed(7))
        probs = [
            model.decode_head.predict((feats, z0, model.diffusion.sample(z0, n, 2)),
                                      [samples[0].metainfo], model.test_cfg).softmax(dim=1)
            for n in noise
        ]
    mean = (probs[0] + probs[1]) / 2
    entropy = -(mean * mean.log()).sum(dim=1)
    assert not torch.allclose(probs[0], probs[1])
    assert torch.allclose(result.uncertainty.data, entropy, atol=1e-5)
    assert torch.equal(result.pred_sem_seg.data, mean.argmax(dim=1))


def test_whole_inference_with_non_divisible_latent():
    model = build_model(phase=2, num_samples=2)
    inputs, samples = make_batch(height=36, width=44)  # latent 9x11, UNet needs multiples of 4
    model.eval()
    with torch.no_grad():
        results = model.predict(inputs, samples)
    assert results[0].pred_sem_seg.data.shape == (1, 36, 44)
    uncertainty = results[1].uncertainty.data
    assert uncertainty.shape == (1, 36, 44)
    assert uncertainty.min() >= 0 and uncertainty.max() <= math.log(NUM_CLASSES) + 1e-6


def test_slide_inference_without_overlap_is_per_window_whole_inference():
    model = build_model(phase=2, num_inference_steps=2, num_samples=2)
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
    model = build_model(phase=2, num_samples=2)
    inputs, samples = make_batch(height=40, width=52, batch=1)
    model.test_cfg.update(mode='slide', crop_size=(32, 32), stride=(20, 20))
    model.eval()
    with torch.no_grad():
        result = model.predict(inputs, samples)[0]
    assert result.pred_sem_seg.data.shape == (1, 40, 52)
    assert result.uncertainty.data.shape == (1, 40, 52)
    assert torch.isfinite(result.seg_logits.data).all()


def test_tensor_mode_returns_decoder_logits():
    model = build_model(phase=2).eval()
    inputs, _ = make_batch()
    with torch.no_grad():
        assert model(inputs, mode='tensor').shape == (2, NUM_CLASSES, 8, 8)
