"""tools/train.py --resume and load_from on faults: a checkpoint cut short by a kill, an empty
or stale last_checkpoint, nothing to resume, another config's checkpoint, another model's
weights. Each is one line; resume falls back to the newest checkpoint that loads.

Same regressor and in-process runs as test_reliability_training.py.
"""
import shutil
from collections import OrderedDict

import pytest
import torch

from mmseg_iccld.engine.checkpoint import checkpoint_problem, torch_load_checkpoint
from mmseg_iccld.engine.resume import ResumeError, choose_resume_checkpoint
from test_reliability_training import checkpoints, run_train, write_config

TWO_OPTIMIZERS = """
optim_wrapper = dict(
    constructor='MultiOptimWrapperConstructor',
    linear=dict(type='OptimWrapper', optimizer=dict(type='AdamW', lr=0.05)),
    scale=dict(type='OptimWrapper', optimizer=dict(type='SGD', lr=0.01)))
param_scheduler = dict(
    linear=[dict(type='LinearLR', start_factor=0.5, by_epoch=False, begin=0, end=4)],
    scale=[dict(type='ConstantLR', factor=1.0, by_epoch=False, begin=0, end=4)])
"""


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    """A work dir of 6 iterations: iter_2, iter_4, iter_6.pth and last_checkpoint."""
    root = tmp_path_factory.mktemp('trained')
    monkeypatch = pytest.MonkeyPatch()
    capture = _NoCapture()
    try:
        status, _, _ = run_train(monkeypatch, capture, write_config(root), '--work-dir',
                                 str(root / 'run'))
    finally:
        monkeypatch.undo()
    assert status == 0
    return root / 'run'


class _NoCapture:
    """``capsys`` for a module-scoped fixture: output goes to pytest's own capture."""

    def readouterr(self):
        return '', ''


@pytest.fixture
def work_dir(trained, tmp_path):
    copy = tmp_path / 'run'
    shutil.copytree(trained, copy)
    (copy / 'last_checkpoint').write_text(str(copy / 'iter_6.pth'))
    return copy


def truncate(path, size=None) -> None:
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2 if size is None else size])


def resumed_from(out: str) -> str:
    """The 'resumed epoch: 0, iter: N' line mmengine logs after a resume."""
    return next(line for line in out.splitlines() if 'resumed epoch' in line).split(' - ')[-1]


def test_a_checkpoint_cut_short_by_a_kill_falls_back_to_the_previous_one(
        work_dir, tmp_path, monkeypatch, capsys):
    truncate(work_dir / 'iter_6.pth')
    size = (work_dir / 'iter_6.pth').stat().st_size
    status, out, err = run_train(monkeypatch, capsys, write_config(tmp_path), '--work-dir',
                                 str(work_dir), '--resume')
    assert status == 0, err
    assert (f'resume: {work_dir}/iter_6.pth is truncated ({size} bytes, the end of its '
            f'archive is missing); resuming from {work_dir}/iter_4.pth, the newest checkpoint '
            f'that loads') in out
    assert resumed_from(out) == 'resumed epoch: 0, iter: 4'
    # the run re-made iteration 6, and its checkpoint is whole again
    assert checkpoint_problem(str(work_dir / 'iter_6.pth')) is None
    assert (work_dir / 'last_checkpoint').read_text() == str(work_dir / 'iter_6.pth')


def test_an_empty_last_checkpoint_falls_back_to_the_newest_checkpoint(
        work_dir, tmp_path, monkeypatch, capsys):
    (work_dir / 'last_checkpoint').write_text('')
    status, out, err = run_train(monkeypatch, capsys, write_config(tmp_path, max_iters=8),
                                 '--work-dir', str(work_dir), '--resume')
    assert status == 0, err
    assert (f'resume: {work_dir}/last_checkpoint is empty; resuming from '
            f'{work_dir}/iter_6.pth, the newest checkpoint that loads') in out
    assert resumed_from(out) == 'resumed epoch: 0, iter: 6'
    assert checkpoints(work_dir) == ['iter_2.pth', 'iter_4.pth', 'iter_6.pth', 'iter_8.pth']


def test_an_empty_checkpoint_given_to_resume_falls_back_to_an_older_one(
        work_dir, tmp_path, monkeypatch, capsys):
    truncate(work_dir / 'iter_6.pth', size=0)
    truncate(work_dir / 'iter_4.pth', size=2000)
    status, out, err = run_train(monkeypatch, capsys, write_config(tmp_path), '--work-dir',
                                 str(work_dir), '--resume', str(work_dir / 'iter_6.pth'))
    assert status == 0, err
    line = next(line for line in out.splitlines() if 'resume: ' in line)
    assert line.split(' - ')[-1].startswith(
        f'resume: {work_dir}/iter_6.pth is empty (0 bytes); {work_dir}/iter_4.pth is '
        f'truncated (2000 bytes, the end of its archive is missing); ')
    assert line.endswith(f'resuming from {work_dir}/iter_2.pth, the newest checkpoint that '
                         f'loads')
    assert resumed_from(out) == 'resumed epoch: 0, iter: 2'


def test_resume_with_nothing_to_resume_is_one_line(tmp_path, monkeypatch, capsys):
    work_dir = tmp_path / 'fresh'
    status, out, err = run_train(monkeypatch, capsys, write_config(tmp_path), '--work-dir',
                                 str(work_dir), '--resume')
    assert status == 1
    assert err.splitlines()[0] == (
        f'error: ResumeError: --resume: nothing to resume in {work_dir}: no last_checkpoint '
        f'file and no iter_*.pth (leave out --resume to train from scratch)')
    assert checkpoints(work_dir) == []


def test_no_checkpoint_that_loads_is_one_line(work_dir):
    for name in ('iter_2.pth', 'iter_4.pth', 'iter_6.pth'):
        truncate(work_dir / name, size=0)
    with pytest.raises(ResumeError) as error:
        choose_resume_checkpoint(str(work_dir))
    assert str(error.value) == (
        f'--resume: no checkpoint in {work_dir} loads: {work_dir}/iter_6.pth is empty '
        f'(0 bytes); {work_dir}/iter_4.pth is empty (0 bytes); {work_dir}/iter_2.pth is '
        f'empty (0 bytes)')
    with pytest.raises(ResumeError, match='--resume: .*/iter_9.pth does not exist$'):
        choose_resume_checkpoint(str(work_dir), str(work_dir / 'iter_9.pth'))


def test_resuming_another_configs_checkpoint_is_one_line(work_dir, tmp_path, monkeypatch,
                                                         capsys):
    config = write_config(tmp_path, name='two_optimizers', extra=TWO_OPTIMIZERS)
    status, _, err = run_train(monkeypatch, capsys, config, '--work-dir', str(work_dir),
                               '--resume', options=['train_cfg.max_iters=8'])
    assert status == 1
    assert err.splitlines()[0] == (
        f'error: CheckpointMismatchError: resume: {work_dir}/iter_6.pth is not a checkpoint '
        f'of the GuardedRegressor of this config: it holds the state of one optimizer, this '
        f'config trains 2 (linear, scale) (to start a new run from its weights, give it as '
        f'load_from without --resume)')
    # nothing was trained or written over
    assert checkpoints(work_dir) == ['iter_2.pth', 'iter_4.pth', 'iter_6.pth']
    assert torch_load_checkpoint(str(work_dir / 'iter_6.pth'))['meta']['iter'] == 6

    # the other way round, and another model
    status, _, err = run_train(monkeypatch, capsys, write_config(tmp_path), '--work-dir',
                               str(tmp_path / 'other'), '--resume', str(work_dir / 'iter_6.pth'),
                               options=['model.out_features=2', 'train_cfg.max_iters=8'])
    assert status == 1
    assert err.splitlines()[0].endswith(
        'is not a checkpoint of the GuardedRegressor of this config: 2 shape mismatches '
        '(linear.weight (1, 3) in the checkpoint, (2, 3) in the model, linear.bias (1,) in the '
        'checkpoint, (2,) in the model) (to start a new run from its weights, give it as '
        'load_from without --resume)')


def test_a_checkpoint_of_a_distributed_run_resumes_in_one_process(
        trained, tmp_path, monkeypatch, capsys):
    """MMSeparateDistributedDataParallel wraps each trainable child in DDP: its checkpoints
    name the weights linear.module.weight, ... The resume renames them to the model's."""
    results = {}
    for kind in ('single', 'distributed'):
        work_dir = tmp_path / kind
        shutil.copytree(trained, work_dir)
        path = work_dir / 'iter_6.pth'
        checkpoint = torch_load_checkpoint(str(path))
        if kind == 'distributed':
            checkpoint['state_dict'] = OrderedDict(
                (k.replace('.', '.module.', 1), v) for k, v in checkpoint['state_dict'].items())
            torch.save(checkpoint, path)
        status, out, err = run_train(monkeypatch, capsys, write_config(tmp_path, max_iters=8),
                                     '--work-dir', str(work_dir), '--resume', str(path))
        assert status == 0, err
        assert resumed_from(out) == 'resumed epoch: 0, iter: 6'
        assert 'missing keys' not in out and 'unexpected key' not in out
        results[kind] = torch_load_checkpoint(str(work_dir / 'iter_8.pth'))['state_dict']
    assert list(results['distributed']) == ['linear.weight', 'linear.bias', 'scale.weight']
    for key, value in results['single'].items():
        assert torch.equal(results['distributed'][key], value), key


def test_load_from_another_model_refuses_unless_load_strict_is_false(
        trained, tmp_path, monkeypatch, capsys):
    checkpoint = trained / 'iter_6.pth'
    work_dir = tmp_path / 'partial'
    options = ['model.out_features=2', f'load_from={checkpoint}']
    status, _, err = run_train(monkeypatch, capsys, write_config(tmp_path), '--work-dir',
                               str(work_dir), options=options)
    assert status == 1
    assert err.splitlines()[0] == (
        f'error: CheckpointMismatchError: load_from: {checkpoint} does not fit the '
        f'GuardedRegressor of this config: 2 shape mismatches (linear.weight (1, 3) in the '
        f'checkpoint, (2, 3) in the model, linear.bias (1,) in the checkpoint, (2,) in the '
        f'model) (--cfg-options load_strict=False loads the matching weights anyway)')
    assert checkpoints(work_dir) == []

    status, out, err = run_train(monkeypatch, capsys, write_config(tmp_path), '--work-dir',
                                 str(work_dir), options=options + ['load_strict=False'])
    assert status == 0, err
    assert (f'load_from: {checkpoint} fits the GuardedRegressor of this config only partly: '
            f'2 shape mismatches') in out
    assert checkpoints(work_dir) == ['iter_2.pth', 'iter_4.pth', 'iter_6.pth']


def test_load_from_a_fitting_checkpoint_needs_nothing(trained, tmp_path, monkeypatch, capsys):
    status, out, err = run_train(monkeypatch, capsys, write_config(tmp_path), '--work-dir',
                                 str(tmp_path / 'fine'),
                                 options=[f'load_from={trained / "iter_4.pth"}'])
    assert status == 0, err
    assert 'load_from:' not in out and 'Load checkpoint from' in out


def test_iccld_resumed_after_a_kill_ends_like_the_uninterrupted_run(synthetic_benchmark,
                                                                     tmp_path, monkeypatch,
                                                                     capsys):
    """The tiny ICCLD config (two optimizers, a schedule per optimizer, phase 2 from iteration
    2), killed while writing iter_6.pth: --resume passes over it and the checks, continues
    from iter_4.pth and writes the iter_6.pth the interrupted run would have written."""
    from test_reliability_resume import _config
    work_dir = tmp_path / 'iccld'
    _config(synthetic_benchmark, work_dir, 'iccld_tiny')
    config = f'{work_dir}.py'
    status, _, err = run_train(monkeypatch, capsys, config)
    assert status == 0, err
    expected = torch_load_checkpoint(str(work_dir / 'iter_6.pth'))['state_dict']
    truncate(work_dir / 'iter_6.pth')

    status, out, err = run_train(monkeypatch, capsys, config, '--resume')
    assert status == 0, err
    assert f'{work_dir}/iter_6.pth is truncated' in out
    assert resumed_from(out) == 'resumed epoch: 0, iter: 4'
    state = torch_load_checkpoint(str(work_dir / 'iter_6.pth'))['state_dict']
    assert state.keys() == expected.keys()
    for key, value in expected.items():
        assert torch.equal(state[key], value), key
