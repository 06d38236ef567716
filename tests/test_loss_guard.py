"""The non-finite loss guard: 'raise' stops before any update, 'skip' drops the iteration."""
import os.path as osp

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from mmengine.logging import MessageHub
from mmengine.registry import DefaultScope

import mmseg_iccld.models.uda.iccld_uda as iccld_uda
import mmseg_iccld.models.uda.loss_guard as loss_guard
from mmseg_iccld.models.uda.loss_guard import NonFiniteLossGuard, nonfinite_terms
from test_dacs_train_step import build_dacs, optim_wrapper, uda_batch
from test_iccld_uda import build_optim, build_uda
from test_iccld_uda import uda_batch as iccld_batch

torch.set_num_threads(1)
NAN = float('nan')


@pytest.fixture(autouse=True)
def mmseg_scope():
    """Build the models from mmseg's registries, whichever runner (and default scope) a
    test before this one created."""
    with DefaultScope.overwrite_default_scope('mmseg'):
        yield


def state(module) -> dict:
    """Parameters and buffers, cloned."""
    return {k: v.detach().clone() for k, v in module.state_dict(keep_vars=True).items()}


def assert_unchanged(before: dict, module) -> None:
    after = module.state_dict(keep_vars=True)
    assert set(after) == set(before)
    for key, value in before.items():
        assert torch.equal(value, after[key].detach()), key


def poison(target, method: str, key: str, monkeypatch) -> None:
    """Make ``target.<method>`` return its losses with ``key`` turned into NaN (graph kept)."""
    original = getattr(target, method)

    def poisoned(*args, **kwargs):
        output = original(*args, **kwargs)
        losses = output if isinstance(output, dict) else output.losses  # ICCLD's passes
        losses[key] = losses[key] * NAN
        return output

    monkeypatch.setattr(target, method, poisoned)


def set_iteration(iteration: int) -> None:
    MessageHub.get_instance('test_loss_guard').update_info('iter', iteration)


def test_only_loss_terms_are_checked_and_all_offenders_named():
    losses = {'src.decode.loss_ce': torch.tensor(NAN), 'src.decode.acc_seg': torch.tensor(NAN),
              'src.loss_feat_dist': torch.tensor(1.0),
              'mix.loss_list': [torch.tensor(1.0), torch.tensor([2.0, float('inf')])]}
    assert nonfinite_terms(losses) == ['src.decode.loss_ce', 'mix.loss_list']
    assert nonfinite_terms({'a.loss': torch.ones(3)}) == []
    with pytest.raises(ValueError, match="nonfinite must be one of"):
        NonFiniteLossGuard('ignore')


def test_raise_names_term_and_iteration_before_any_update(monkeypatch):
    torch.manual_seed(0)
    dacs = build_dacs(nonfinite='raise')
    wrapper = optim_wrapper(dacs)
    set_iteration(0)
    log = dacs.train_step(uda_batch(seed=0), wrapper)
    assert 'nonfinite_skipped' not in log  # the default policy adds nothing to the log
    params = {k: p.detach().clone() for k, p in dacs.named_parameters()}
    poison(dacs, 'mixed_losses', 'decode.loss_ce', monkeypatch)
    set_iteration(41)
    with pytest.raises(FloatingPointError) as info:
        dacs.train_step(uda_batch(seed=1), wrapper)
    message = str(info.value)
    assert message.startswith('non-finite loss mix.decode.loss_ce = nan at iteration 41;')
    assert "nonfinite='skip'" in message
    for name, p in dacs.named_parameters():  # student, teacher: no step, no EMA update
        assert torch.equal(p.detach(), params[name]), name
    assert int(dacs.teacher.steps) == 2


def test_skip_drops_the_iteration_and_training_goes_on(monkeypatch):
    torch.manual_seed(0)
    dacs = build_dacs(nonfinite='skip')
    wrapper = optim_wrapper(dacs)
    warnings = []
    monkeypatch.setattr(loss_guard, 'print_log', lambda msg, **kw: warnings.append(msg))
    set_iteration(0)
    assert dacs.train_step(uda_batch(seed=0), wrapper)['nonfinite_skipped'].item() == 0
    before = state(dacs)
    adam_steps = [s['step'].clone() for s in wrapper.optimizer.state.values()]

    with monkeypatch.context() as patch:
        poison(dacs, 'source_losses', 'loss_feat_dist', patch)
        set_iteration(1)
        log = dacs.train_step(uda_batch(seed=1), wrapper)
    assert log['nonfinite_skipped'].item() == 1
    assert torch.isnan(log['src.loss_feat_dist'])  # the log shows what happened
    # weights, BN statistics, teacher (and its step count): all as before the iteration
    assert_unchanged(before, dacs)
    assert all(p.grad is None or not p.grad.any() for p in dacs.parameters())
    assert [s['step'] for s in wrapper.optimizer.state.values()] == adam_steps
    assert warnings == ['iteration 1: non-finite loss src.loss_feat_dist; the iteration\'s '
                        'updates are skipped (1 skipped iterations so far)']

    # the next iteration trains, and the teacher's decay is that of its 2nd update: 2/3
    teacher0 = {k: v.clone() for k, v in dacs.teacher.module.named_parameters()}
    set_iteration(2)
    log = dacs.train_step(uda_batch(seed=2), wrapper)
    assert log['nonfinite_skipped'].item() == 1 and torch.isfinite(log['loss'])
    student = dict(dacs.model.named_parameters())
    assert any(not torch.equal(student[k], before[f'model.{k}']) for k in student)
    for k, v in dacs.teacher.module.named_parameters():
        expected = 2 / 3 * teacher0[k] + 1 / 3 * student[k].detach()
        assert torch.allclose(v, expected, atol=1e-6), k


def _skip_at(guard: NonFiniteLossGuard, module, iterations) -> None:
    """Run ``guard`` through ``iterations``, each with a NaN loss."""
    for iteration in iterations:
        set_iteration(iteration)
        guard.begin(module)
        guard.check({'src.loss': torch.tensor(NAN)})
        assert guard.skip_step()


def test_skipping_is_limited_within_a_window_of_recent_iterations(monkeypatch):
    monkeypatch.setattr(loss_guard, 'print_log', lambda *a, **k: None)
    module = torch.nn.BatchNorm1d(2)
    guard = NonFiniteLossGuard('skip')  # the default: 10 within 100 iterations
    assert (guard.max_skips, guard.window) == (10, 100)
    _skip_at(guard, module, range(2, 12))
    set_iteration(12)
    guard.begin(module)
    guard.check({'src.loss': torch.tensor(NAN)})
    with pytest.raises(FloatingPointError) as error:
        guard.skip_step()
    assert str(error.value) == (
        'non-finite loss src.loss at iteration 12: 11 of the last 100 iterations had a '
        'non-finite loss (nonfinite max_skips=10); training stopped, no update used a '
        'non-finite loss')

    # old skips leave the window: 3 per 10 iterations go on for ever
    guard = NonFiniteLossGuard(dict(policy='skip', max_skips=3, window=10))
    _skip_at(guard, module,
             [i for start in range(0, 100, 10) for i in (start, start + 1, start + 9)])
    assert guard.skipped == 30 and guard.steps == 30
    with pytest.raises(FloatingPointError, match='4 of the last 10 iterations'):
        _skip_at(guard, module, [100, 101, 102, 103])


def test_nonfinite_settings_are_checked():
    with pytest.raises(ValueError) as error:
        NonFiniteLossGuard(dict(policy='skip', max_skip=3))
    assert str(error.value) == ("nonfinite: unknown key 'max_skip' (did you mean "
                                "'max_skips'?); the keys are max_skips, policy, window")
    with pytest.raises(ValueError, match='max_skips must be >= 0 and window >= 1'):
        NonFiniteLossGuard(dict(policy='skip', window=0))
    assert NonFiniteLossGuard(dict(policy='raise')).policy == 'raise'


def test_dacs_passes_the_limit_to_its_guard(monkeypatch):
    """nonfinite=dict(...) reaches the guard through DACS: with max_skips=0 the first
    non-finite iteration stops the run, before any update."""
    torch.manual_seed(0)
    dacs = build_dacs(nonfinite=dict(policy='skip', max_skips=0))
    wrapper = optim_wrapper(dacs)
    set_iteration(0)
    dacs.train_step(uda_batch(seed=0), wrapper)
    before = state(dacs)
    monkeypatch.setattr(loss_guard, 'print_log', lambda *a, **k: None)
    poison(dacs, 'mixed_losses', 'decode.loss_ce', monkeypatch)
    set_iteration(1)
    with pytest.raises(FloatingPointError, match=r'^non-finite loss mix\.decode\.loss_ce at '
                       r'iteration 1: 1 of the last 100 iterations'):
        dacs.train_step(uda_batch(seed=1), wrapper)
    assert_unchanged(before, dacs)


def test_iccld_step2_skip_leaves_student_discriminator_and_teacher(monkeypatch):
    uda = build_uda(nonfinite='skip')
    optim = build_optim(uda)
    uda.train_step(iccld_batch(seed=1), optim)  # iteration 0: the teacher copies the student
    uda.set_phase(2, lambda_adv=0.5)
    before = state(uda)
    poison(uda, 'target_losses', 'loss_ldm', monkeypatch)
    monkeypatch.setattr(loss_guard, 'print_log', lambda *a, **k: None)
    log = uda.train_step(iccld_batch(seed=2), optim)
    assert log['nonfinite_skipped'].item() == 1
    assert torch.isnan(log['tgt.loss_ldm']) and torch.isfinite(log['dis.loss'])
    assert_unchanged(before, uda)  # the discriminator did not step either
    assert all(p.grad is None or not p.grad.any() for p in uda.parameters())


def test_iccld_nonfinite_discriminator_loss_is_named(monkeypatch):
    uda = build_uda()
    optim = build_optim(uda)
    uda.train_step(iccld_batch(seed=1), optim)
    uda.set_phase(2, lambda_adv=0.5)
    discriminator = state(uda.discriminator)
    monkeypatch.setattr(iccld_uda, 'loss_adv_discriminator',
                        lambda logits, domain: (logits * 0).sum() + float('inf'))
    set_iteration(5)
    with pytest.raises(FloatingPointError,
                       match=r'^non-finite loss dis\.loss = inf at iteration 5;'):
        uda.train_step(iccld_batch(seed=2), optim)
    assert_unchanged(discriminator, uda.discriminator)


# two CPU processes: a NaN on one rank takes both ranks the same way


def _worker(rank: int, init_file: str, result_dir: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group('gloo', init_method=f'file://{init_file}', rank=rank,
                            world_size=2)
    from mmengine.model import MMSeparateDistributedDataParallel
    results = {}
    bad = {'src.loss': torch.tensor(NAN if rank == 1 else 1.0)}
    try:
        NonFiniteLossGuard('raise').check(bad)
    except FloatingPointError as error:
        results['raise'] = str(error)

    torch.manual_seed(0)
    dacs = build_dacs(nonfinite='skip')
    model = MMSeparateDistributedDataParallel(module=dacs, broadcast_buffers=False,
                                              find_unused_parameters=True)
    wrapper = optim_wrapper(dacs)
    model.train_step(uda_batch(seed=rank), wrapper)  # a normal first iteration
    before = torch.cat([p.detach().flatten() for p in dacs.parameters()])
    if rank == 1:
        original = dacs.mixed_losses

        def poisoned(*args, **kwargs):
            losses = original(*args, **kwargs)
            losses['decode.loss_ce'] = losses['decode.loss_ce'] * NAN
            return losses

        dacs.mixed_losses = poisoned
    log = model.train_step(uda_batch(seed=10 + rank), wrapper)
    results['skipped'] = log['nonfinite_skipped'].item()
    results['unchanged'] = torch.equal(
        before, torch.cat([p.detach().flatten() for p in dacs.parameters()]))
    torch.save(results, osp.join(result_dir, f'{rank}.pt'))
    dist.destroy_process_group()


def test_a_nonfinite_loss_on_one_rank_stops_or_skips_every_rank(tmp_path):
    mp.spawn(_worker, args=(str(tmp_path / 'init'), str(tmp_path)), nprocs=2, join=True)
    rank0, rank1 = (torch.load(tmp_path / f'{r}.pt') for r in range(2))
    assert rank0['raise'].startswith('non-finite loss on another process at iteration')
    assert rank1['raise'].startswith('non-finite loss src.loss = nan at iteration')
    for results in (rank0, rank1):
        assert results['skipped'] == 1 and results['unchanged']
