"""ICCLD's UDA wrapper: phase 2 iterations, gradient isolation between generator and
discriminator, the shared draw, and the phase-switch hook."""
from types import SimpleNamespace

import pytest
import torch
from mmengine.config import ConfigDict
from mmengine.optim import OptimWrapper, OptimWrapperDict, build_optim_wrapper
from mmseg.registry import MODELS
from mmseg.utils import register_all_modules

import mmseg_iccld  # noqa: F401
from tiny_models import MEAN, STD, random_uda_batch, tiny_iccld
from mmseg_iccld.engine.hooks.iccld_phase_hook import ICCLDPhaseHook
from mmseg_iccld.models.diffusion import DiffusionDraw
from mmseg_iccld.models.losses import loss_adv_generator

register_all_modules(init_default_scope=True)

SIZE = 64
NUM_CLASSES = 19


def build_uda(**kwargs):
    torch.manual_seed(0)
    cfg = dict(
        type='ICCLDUDA',
        model=tiny_iccld(NUM_CLASSES),
        discriminator=dict(type='DomainDiscriminator', in_channels=NUM_CLASSES,
                           channels=(8, 16)),
        data_preprocessor=dict(type='UDADataPreprocessor', mean=MEAN, std=STD,
                               bgr_to_rgb=True, size_divisor=32, seg_pad_val=255),
        pseudo_margins=(0, 0, 0, 0))
    cfg.update(kwargs)
    uda = MODELS.build(ConfigDict(cfg))
    uda.init_weights()
    return uda.train()


def build_optim(uda):
    return build_optim_wrapper(
        uda,
        dict(constructor='MultiOptimWrapperConstructor',
             model=dict(type='OptimWrapper', optimizer=dict(type='AdamW', lr=1e-3)),
             discriminator=dict(type='OptimWrapper',
                                optimizer=dict(type='Adam', lr=1e-3, betas=(0.5, 0.999)))))


def uda_batch(n: int = 2, seed: int = 0) -> dict:
    label = torch.zeros(n, 1, SIZE, SIZE, dtype=torch.long)
    label[:, :, :SIZE // 2] = 10  # sky over road, a car in the middle, a person
    label[:, :, 24:40, 16:48] = 13
    label[:, :, 40:56, 50:58] = 11
    return random_uda_batch(label, seed)


def params(module):
    return {name: p.detach().clone() for name, p in module.named_parameters()}


def changed(before, module):
    return {name for name, p in module.named_parameters() if not torch.equal(before[name], p)}


def test_step1_is_dacs_and_leaves_unet_and_discriminator_alone():
    uda = build_uda()
    optim = build_optim(uda)
    unet, disc = params(uda.model.diffusion.unet), params(uda.discriminator)
    log = uda.train_step(uda_batch(), optim)
    assert 'tgt.loss_ldm' not in log and 'dis.loss' not in log
    assert {'src.decode.loss_ce', 'mix.decode.loss_ce', 'pseudo_weight'} <= set(log)
    assert not changed(unet, uda.model.diffusion.unet)
    assert not changed(disc, uda.discriminator)


def test_step2_iteration_trains_every_part_and_logs_every_term():
    uda = build_uda()
    optim = build_optim(uda)
    uda.train_step(uda_batch(seed=1), optim)  # iteration 0: teacher copies the student
    uda.set_phase(2, lambda_adv=0.5)
    assert uda.student.in_phase2 and uda.teacher.module.in_phase2
    before = dict(unet=params(uda.model.diffusion.unet), disc=params(uda.discriminator),
                  backbone=params(uda.model.backbone), head=params(uda.model.decode_head))
    log = uda.train_step(uda_batch(seed=2), optim)

    expected = {'loss', 'src.decode.loss_ce', 'src.loss_ldm', 'src.loss_adv_gen',
                'src.loss_feat_dist', 'mix.decode.loss_ce', 'mix.loss_ldm',
                'mix.loss_adv_gen', 'tgt.loss_ldm', 'tgt.loss_adv_gen', 'dis.loss',
                'dis.acc_src', 'dis.acc_mix', 'dis.acc_tgt', 'pseudo_weight', 'lambda_adv'}
    assert expected <= set(log)
    assert all(torch.isfinite(v).all() for v in log.values())
    assert log['lambda_adv'].item() == pytest.approx(0.5)
    # the discriminator's loss is the mean CE over three domains: log 3 for a blind one
    assert 0 < log['dis.loss'].item() < 5
    assert changed(before['unet'], uda.model.diffusion.unet)
    assert changed(before['disc'], uda.discriminator)
    assert changed(before['backbone'], uda.model.backbone)
    assert changed(before['head'], uda.model.decode_head)


def test_generator_loss_gives_no_gradient_to_the_discriminator():
    uda = build_uda()
    noise_pred = torch.randn(2, NUM_CLASSES, 16, 16, requires_grad=True)
    loss = loss_adv_generator(uda.discriminate_without_grad(noise_pred))
    loss.backward()
    assert all(p.grad is None for p in uda.discriminator.parameters())
    assert noise_pred.grad is not None and noise_pred.grad.abs().sum() > 0
    # and the value is the discriminator's own output
    with torch.no_grad():
        direct = loss_adv_generator(uda.discriminator(noise_pred))
    torch.testing.assert_close(loss.detach(), direct)


def test_discriminator_loss_gives_no_gradient_to_the_student():
    """In train_step's order: the generator terms backward first (the generator graph holds
    detached views of the discriminator's weights, so f_dis may only step afterwards), then
    the discriminator's step leaves the student's gradients exactly as they were."""
    uda = build_uda()
    optim = build_optim(uda)
    uda.set_phase(2, lambda_adv=1.0)
    with torch.no_grad():  # give D's mask projection the weights phase 2 would teach it
        uda.model.decode_head.mask_latent_proj.weight.normal_(std=2.0)
    output = uda.source_losses(*_preprocessed_source(uda), mode='uda')
    it = SimpleNamespace(adv_inputs=[])
    uda.with_generator_loss(output, it)
    adv_inputs = it.adv_inputs
    assert not adv_inputs[0].requires_grad
    output.losses['loss_adv_gen'].backward()
    student_grads = {n: p.grad.clone() for n, p in uda.model.named_parameters()
                     if p.grad is not None}
    # the generator term does reach eps_theta and the encoder
    for prefix in ('diffusion.unet.', 'backbone.'):
        assert sum(g.abs().sum() for n, g in student_grads.items() if n.startswith(prefix)) > 0

    disc_before = params(uda.discriminator)
    uda.discriminator_step(optim['discriminator'], adv_inputs * 3)
    assert changed(disc_before, uda.discriminator)  # the discriminator did learn
    for name, p in uda.model.named_parameters():
        if name in student_grads:
            assert torch.equal(p.grad, student_grads[name]), name
        else:
            assert p.grad is None, name


def test_discriminator_targets_and_accuracy_per_domain():
    uda = build_uda()
    optim = OptimWrapper(torch.optim.SGD(uda.discriminator.parameters(), lr=0.0))
    inputs = [torch.randn(2, NUM_CLASSES, 8, 8) for _ in range(3)]
    with torch.no_grad():
        logits = [uda.discriminator(x) for x in inputs]
    assert logits[0].shape == (2, 3, 2, 2)
    log = uda.discriminator_step(optim, inputs)
    # by hand: every one of the 2x2 patches is one decision
    flat = [l.permute(0, 2, 3, 1).reshape(-1, 3) for l in logits]
    expected_loss = sum(torch.nn.functional.cross_entropy(l, torch.full((len(l), ), d))
                        for d, l in enumerate(flat)) / 3
    assert log['dis.loss'].item() == pytest.approx(expected_loss.item(), rel=1e-5)
    for d, name in enumerate(('src', 'mix', 'tgt')):
        accuracy = (flat[d].argmax(1) == d).float().mean().item()
        assert log[f'dis.acc_{name}'].item() == pytest.approx(accuracy)


def test_one_draw_serves_all_three_domains(monkeypatch):
    uda = build_uda()
    optim = build_optim(uda)
    uda.train_step(uda_batch(), optim)
    uda.set_phase(2, lambda_adv=0.1)
    seen = []
    student_loss = type(uda.student).uda_loss

    def spy(self, inputs, data_samples, **kwargs):
        output = student_loss(self, inputs, data_samples, **kwargs)
        seen.append((output.draw, kwargs))
        return output

    monkeypatch.setattr(type(uda.student), 'uda_loss', spy)
    uda.train_step(uda_batch(seed=3), optim)
    assert len(seen) == 3
    (draw, source_kwargs), mixed, target = seen
    assert source_kwargs.get('draw') is None  # the source pass draws
    assert isinstance(draw, DiffusionDraw) and draw.chain_noise is not None
    for other_draw, kwargs in (mixed, target):
        assert other_draw is draw and kwargs['draw'] is draw
    assert target[1]['with_seg'] is False and target[1]['condition_grad'] is True


def test_adversarial_input_is_the_scaled_chain_estimate_without_margins():
    uda = build_uda(adv_margins=(4, 12, 0, 5))  # image pixels; latent stride 4
    output = SimpleNamespace(sample=torch.arange(2 * NUM_CLASSES * 16 * 16.0).view(
        2, NUM_CLASSES, 16, 16), losses={})
    uda.student.diffusion.mask_scale = 2.0
    it = SimpleNamespace(adv_inputs=[])
    assert uda.with_generator_loss(output, it) == {}  # lambda_adv = 0: no term, an input
    # rows: ceil(4 / 4) = 1 from the top, ceil(12 / 4) = 3 from the bottom; columns:
    # ceil(5 / 4) = 2 from the right
    torch.testing.assert_close(it.adv_inputs[0], output.sample[:, :, 1:13, 0:14] / 2.0)
    # a phase-1 pass (no chain) gives f_dis nothing
    assert uda.with_generator_loss(SimpleNamespace(sample=None, losses={}), it) == {}
    assert len(it.adv_inputs) == 1
    uda.adv_margins = (0, 64, 0, 0)
    with pytest.raises(ValueError, match='leave nothing'):
        uda.with_generator_loss(output, it)


@pytest.mark.parametrize('chain_loss_weight', [0.0, 1.0])
def test_every_phase2_pass_runs_the_chain_for_eq3_and_its_loss(chain_loss_weight):
    model = tiny_iccld(NUM_CLASSES)
    model['chain_loss_weight'] = chain_loss_weight
    uda = build_uda(model=model)
    optim = build_optim(uda)
    uda.train_step(uda_batch(), optim)
    uda.set_phase(2, lambda_adv=0.1)
    log = uda.train_step(uda_batch(seed=4), optim)
    for domain in ('src', 'mix', 'tgt'):
        assert (f'{domain}.loss_chain' in log) is (chain_loss_weight > 0), domain
        assert f'{domain}.loss_adv_gen' in log, domain
    assert 'dis.loss' in log


def test_generator_term_in_a_step(monkeypatch):
    uda = build_uda()
    uda.set_phase(2, lambda_adv=0.5)
    logits = torch.tensor([[2.0, 0.0, -1.0]])
    monkeypatch.setattr(uda, 'discriminate_without_grad', lambda x: logits)
    output = SimpleNamespace(sample=torch.zeros(1, NUM_CLASSES, 8, 8), losses={})
    uda.with_generator_loss(output, SimpleNamespace(adv_inputs=[]))
    p = logits.softmax(dim=1)[0]
    # KL(p || U) = sum p log p + log 3
    expected = (p * p.log()).sum() + torch.log(torch.tensor(3.0))
    assert output.losses['loss_adv_gen'].item() == pytest.approx(0.5 * expected.item(),
                                                                 rel=1e-5)


def test_target_pass_without_condition_grad_keeps_the_encoder_out():
    uda = build_uda(target_condition_grad=False)
    uda.set_phase(2, lambda_adv=1.0)
    inputs, samples = _preprocessed_source(uda)
    draw = DiffusionDraw(torch.randn(2, NUM_CLASSES, 16, 16), torch.tensor([5, 500]),
                         torch.randn(2, NUM_CLASSES, 16, 16))
    output = uda.target_losses(inputs, samples, draw)
    uda.with_generator_loss(output, SimpleNamespace(adv_inputs=[]))
    (output.losses['loss_ldm'] + output.losses['loss_adv_gen']).backward()
    assert all(p.grad is None for p in uda.model.backbone.parameters())
    assert sum(p.grad.abs().sum() for p in uda.model.diffusion.unet.parameters()
               if p.grad is not None) > 0


def test_step2_without_a_discriminator_optimizer_is_a_clear_error():
    uda = build_uda()
    uda.set_phase(2, lambda_adv=0.1)
    wrapper = OptimWrapper(torch.optim.SGD(uda.model.parameters(), lr=0.1))
    before = params(uda.model)
    with pytest.raises(KeyError, match='discriminator'):
        uda.train_step(uda_batch(), OptimWrapperDict(model=wrapper))
    assert not changed(before, uda.model)  # refused before the student's step


def test_phase_hook_switches_at_the_configured_iteration_and_ramps_lambda():
    hook = ICCLDPhaseHook(switch_iter=10, lambda_adv=0.2, lambda_adv_ramp_iters=4)
    assert [hook.phase_at(i) for i in (0, 9, 10, 11)] == [1, 1, 2, 2]
    assert [hook.lambda_adv_at(i) for i in (9, 10, 11, 13, 50)] == pytest.approx(
        [0.0, 0.05, 0.1, 0.2, 0.2])
    delayed = ICCLDPhaseHook(switch_iter=10, lambda_adv=0.2, lambda_adv_ramp_iters=4,
                            lambda_adv_delay_iters=5)
    assert [delayed.lambda_adv_at(i) for i in (10, 14, 15, 16, 18, 19)] == pytest.approx(
        [0.0, 0.0, 0.05, 0.1, 0.2, 0.2])
    with pytest.raises(ValueError, match='>= 0'):
        ICCLDPhaseHook(switch_iter=10, lambda_adv_delay_iters=-1)

    uda = build_uda()
    runner = SimpleNamespace(model=uda, iter=9, logger=SimpleNamespace(info=lambda msg: None))
    hook.before_train_iter(runner, batch_idx=0)
    assert not uda.student.in_phase2 and uda.lambda_adv == 0
    runner.iter = 10
    hook.before_train_iter(runner, batch_idx=0)
    assert uda.student.in_phase2 and uda.teacher.module.in_phase2
    assert uda.lambda_adv == pytest.approx(0.05)


def test_phase_hook_refuses_a_model_without_phases():
    hook = ICCLDPhaseHook(switch_iter=1)
    runner = SimpleNamespace(model=torch.nn.Linear(1, 1), iter=0)
    with pytest.raises(TypeError, match='ICCLD UDA model'):
        hook.before_train_iter(runner, batch_idx=0)


def _preprocessed_source(uda):
    data = uda.data_preprocessor(uda_batch(), True)
    return data['inputs'], data['data_samples']


def test_switching_phases_leaves_the_teachers_dropout_and_drop_path_off():
    from mmcv.cnn.bricks import DropPath
    from torch.nn.modules.dropout import _DropoutNd
    uda = build_uda()
    teacher = uda.teacher.module
    stochastic = [m for m in teacher.modules() if isinstance(m, (_DropoutNd, DropPath))]
    assert stochastic and not any(m.training for m in stochastic)
    for phase in (2, 2, 1, 2):  # the phase hook sets the phase every iteration
        uda.set_phase(phase, lambda_adv=0.1)
        assert not any(m.training for m in stochastic)
    # the student's dropout is untouched
    assert any(m.training for m in uda.student.modules() if isinstance(m, _DropoutNd))
