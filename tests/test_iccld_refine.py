"""A chain that refines D's own prediction (``refine_strength``): SDEdit's start on the
schedule, the start code from D's m_hat0 = 0 decode, in training, at test time and in
ICCLD-HR's context view."""
import pytest
import torch

from test_iccld_hr import samples, tiny_segmentor
from test_iccld_model import NUM_CLASSES, build_model, grad_sum, make_batch


def record_sampler(monkeypatch, diffusion) -> list:
    """Patch ``sample`` to record the keyword arguments of every chain it runs."""
    calls = []
    sample = diffusion.sample
    monkeypatch.setattr(diffusion, 'sample', lambda *a, **kw: calls.append((a, kw)) or
                        sample(*a, **kw))
    return calls


def d_own_code(head, stages, image_latent, eval_mode: bool = True):
    """By hand: ``2 * softmax(D(stages, z0, 0)) - 1`` (mask scale 1), by default as D
    decodes at test time (eval mode)."""
    was_training = head.training
    head.train(not eval_mode)
    with torch.no_grad():
        code = 2 * head(stages, image_latent, None).softmax(dim=1) - 1
    head.train(was_training)
    return code


def test_refining_chain_starts_from_the_noised_start_at_the_last_k_of_k_over_s_steps(
        monkeypatch):
    model = build_model(phase=2, diffusion_args=dict(prediction_type='v_prediction')).eval()
    alpha_bar = model.diffusion.noise_scheduler.alphas_cumprod
    z0 = torch.randn(1, 16, 8, 8)
    start = torch.rand(1, NUM_CLASSES, 8, 8) * 2 - 1
    noise = torch.randn(1, NUM_CLASSES, 8, 8)
    seen = []
    predict = model.diffusion.predict_output
    monkeypatch.setattr(model.diffusion, 'predict_output',
                        lambda m, z, t: seen.append((m, int(t[0]))) or predict(m, z, t))
    with torch.no_grad():
        result = model.diffusion.sample(z0, noise, 3, start=start, strength=0.5)
    # 6 trailing steps 999, 832, 666, 499, 332, 166; the last 3 are taken
    assert [t for _, t in seen] == [499, 332, 166]
    a = alpha_bar[499]
    assert torch.allclose(seen[0][0], a.sqrt() * start + (1 - a).sqrt() * noise, atol=1e-6)
    # the rest is DDIM as from noise: the last step's clamped x0-estimate is returned
    a = alpha_bar[166]
    with torch.no_grad():
        v = predict(seen[-1][0], z0, torch.tensor([166]))
    assert torch.allclose(result, (a.sqrt() * seen[-1][0] - (1 - a).sqrt() * v).clamp(-1, 1),
                          atol=1e-5)


def test_start_code_and_strength_come_together():
    model = build_model(phase=2)
    z0, noise = torch.randn(1, 16, 8, 8), torch.randn(1, NUM_CLASSES, 8, 8)
    with pytest.raises(ValueError, match='strength'):
        model.diffusion.sample(z0, noise, 2, start=noise)
    with pytest.raises(ValueError, match='strength'):
        model.diffusion.sample(z0, noise, 2, strength=0.5)
    with pytest.raises(ValueError, match='refine_strength'):
        build_model(phase=2, model_args=dict(refine_strength=1.0))


def test_training_chain_refines_d_own_test_time_decode_unless_its_graph_is_kept(
        monkeypatch):
    for strength, with_grad in ((None, False), (0.5, False), (0.5, True)):
        model = build_model(phase=2, model_args=dict(
            refine_strength=strength, refine_start_grad=with_grad,
            chain_loss_weight=1.0)).train()
        calls = record_sampler(monkeypatch, model.diffusion)
        inputs, data_samples = make_batch()
        stages, z0 = model.encode(inputs)
        expected = d_own_code(model.decode_head, stages, z0, eval_mode=not with_grad)
        output = model.uda_loss(inputs, data_samples)
        ((args, kwargs), ) = calls
        if strength is None:
            assert kwargs == {}
        else:
            assert kwargs['strength'] == 0.5 and args[1] is output.draw.chain_noise
            assert torch.allclose(kwargs['start'], expected, atol=1e-5)
            # the test-time decode (running statistics) is not the training-mode one
            other = d_own_code(model.decode_head, stages, z0, eval_mode=with_grad)
            assert not torch.allclose(kwargs['start'], other, atol=1e-3)
        assert model.decode_head.training
        model.zero_grad()
        output.losses['loss_chain'].backward()
        # the chain's loss reaches D's classifier only through a start kept with its graph
        assert (grad_sum(model.decode_head.conv_seg) > 0) == with_grad


def test_prediction_refines_the_k0_decode_with_the_seeded_draw(monkeypatch):
    model = build_model(phase=2, model_args=dict(refine_strength=0.5),
                        num_inference_steps=2, seed=7).eval()
    calls = record_sampler(monkeypatch, model.diffusion)
    inputs, data_samples = make_batch()
    with torch.no_grad():
        model.predict(inputs, data_samples)
        stages, z0 = model.encode(inputs)
        noise = model.diffusion.seeded_noise(z0, 1, 7)[0]
    ((args, kwargs), ) = calls
    assert args[2] == 2 and torch.equal(args[1], noise) and kwargs['strength'] == 0.5
    assert torch.allclose(kwargs['start'], d_own_code(model.decode_head, stages, z0), atol=1e-5)


def test_hr_refines_the_context_view_own_decode(monkeypatch):
    model = tiny_segmentor()
    model.refine_strength = 0.5
    model.train()
    for module in model.modules():  # the same decode in the pass and by hand
        if isinstance(module, torch.nn.Dropout2d):
            module.p = 0.0
        if hasattr(module, 'drop_prob'):  # the backbone's DropPath
            module.drop_prob = 0.0
    calls = record_sampler(monkeypatch, model.diffusion)
    inputs = torch.randn(2, 3, 256, 256)
    torch.manual_seed(0)
    stages, z0 = model.encode(inputs)  # the context view, 32 x 32 latent cells
    expected = d_own_code(model.decode_head.head, stages, z0)
    model.uda_loss(inputs, samples(2, 256))
    ((_, kwargs), ) = calls
    assert kwargs['start'].shape == (2, 19, 32, 32)
    assert torch.allclose(kwargs['start'], expected, atol=1e-5)


def test_hr_refuses_a_refining_chain_with_detail_chains():
    from mmseg.registry import MODELS

    from test_iccld_hr import load
    cfg = load('_base_/models/iccld_hr_mit_tiny.py').model
    cfg.update(refine_strength=0.5, detail_chain=True)
    with pytest.raises(ValueError, match='detail_chain and refine_strength'):
        MODELS.build(cfg)
