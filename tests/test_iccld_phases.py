"""ICCLD's two training phases: the checkpointed phase buffer (and its earlier name), eq. 2
in phase 1 on a detached z0, and modules frozen in phase 2."""
import pytest
import torch

from test_iccld_model import build_model, grad_sum, make_batch, shared_draw


def test_phase_is_a_checkpointed_buffer():
    model = build_model()
    assert int(model.phase) == 1 and not model.in_phase2
    model.set_phase(2)
    state = model.state_dict()
    assert int(state['phase']) == 2
    fresh = build_model()
    fresh.load_state_dict(state)
    assert fresh.in_phase2 and fresh.current_phase == 2
    with pytest.raises(ValueError, match='1 or 2'):
        model.set_phase(3)


def test_earlier_phase_names_still_load():
    # checkpoints and dumped configs written when the phase was called 'diffusion_stage'
    model = build_model()
    model.set_phase(2)
    state = model.state_dict()
    state['diffusion_stage'] = state.pop('phase')
    fresh = build_model()
    fresh.load_state_dict(state)
    assert fresh.in_phase2 and int(fresh.phase) == 2
    old_config = build_model(model_args=dict(diffusion_stage=2))
    assert old_config.in_phase2


def test_earlier_hook_name_builds_the_phase_hook():
    from mmseg.registry import HOOKS
    with pytest.warns(DeprecationWarning, match='ICCLDPhaseHook'):
        hook = HOOKS.build(dict(type='ICCLDStepHook', switch_iter=5, lambda_adv=0.2))
    assert [hook.phase_at(i) for i in (4, 5)] == [1, 2] and hook.lambda_adv_at(5) == 0.2


# eq. 2 in phase 1


def test_phase1_ldm_is_eq2_on_the_detached_latent_and_trains_only_eps_theta():
    inputs, samples = make_batch()
    plain = build_model(phase=1).eval()  # eval: the encoder draws no random numbers
    weighted = build_model(phase=1, model_args=dict(phase1_ldm_weight=0.5)).eval()
    weighted.load_state_dict(plain.state_dict())
    # the draw phase 1 makes for itself, reproduced from the same generator state
    torch.manual_seed(7)
    _, image_latent = weighted.encode(inputs)
    draw = weighted.diffusion.draw(image_latent)
    torch.manual_seed(7)
    output = weighted.uda_loss(inputs, samples)
    assert output.draw is None and output.sample is None
    reference = build_model(phase=2).eval()
    reference.load_state_dict(plain.state_dict(), strict=False)
    reference.set_phase(2)
    eq2 = reference.uda_loss(inputs, samples, draw=draw).losses['loss_ldm']
    torch.testing.assert_close(output.losses['loss_ldm'], 0.5 * eq2)
    # L_seg is phase 1's, untouched
    assert torch.equal(output.losses['decode.loss_ce'],
                       plain.uda_loss(inputs, samples).losses['decode.loss_ce'])
    output.losses['loss_ldm'].backward()
    assert grad_sum(weighted.diffusion) > 0
    assert grad_sum(weighted.backbone) == 0 and grad_sum(weighted.neck) == 0
    assert grad_sum(weighted.decode_head) == 0


# modules frozen in phase 2


def test_phase2_frozen_modules_get_no_gradient_and_stay_in_eval_mode():
    model = build_model(phase=1, model_args=dict(phase2_frozen=('backbone', 'neck'))).train()
    assert all(p.requires_grad for p in model.backbone.parameters())
    model.set_phase(2)
    model.train()
    assert not any(p.requires_grad for p in model.backbone.parameters())
    assert not any(p.requires_grad for p in model.neck.parameters())
    assert not model.backbone.training and not model.neck.training
    assert model.decode_head.training and model.diffusion.training
    output = model.uda_loss(*make_batch(), draw=shared_draw())
    sum(v for k, v in output.losses.items() if 'loss' in k).backward()
    assert all(p.grad is None for p in model.backbone.parameters())
    assert all(p.grad is None for p in model.neck.parameters())
    assert grad_sum(model.diffusion) > 0 and grad_sum(model.decode_head) > 0
    model.set_phase(1)
    assert all(p.requires_grad for p in model.backbone.parameters()) and model.backbone.training


def test_phase2_frozen_modules_stay_frozen_after_loading_a_phase2_checkpoint():
    model = build_model(phase=2)
    fresh = build_model(phase=1, model_args=dict(phase2_frozen=('decode_head', ))).train()
    fresh.load_state_dict(model.state_dict())  # resuming inside phase 2
    assert not any(p.requires_grad for p in fresh.decode_head.parameters())
    assert not fresh.decode_head.training and fresh.backbone.training


def test_phase2_frozen_names_must_be_submodules():
    with pytest.raises(ValueError, match="'encoder', which is not a submodule"):
        build_model(model_args=dict(phase2_frozen=('encoder', )))
