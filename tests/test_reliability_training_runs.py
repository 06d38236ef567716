"""tools/train.py on faults around the run itself: a second run into a work dir in use, a
partial checkpoint left by a kill, a save onto a full disk, a resume with nothing left to
train or with edited learning rates, and a distributed launcher that did not start the process.

Same regressor and in-process runs as test_reliability_training.py.
"""
import errno
import os
import signal
import subprocess
import sys

import pytest
import torch

from mmseg_iccld.engine import checkpoint as checkpoint_module
from mmseg_iccld.engine import local_backend
from mmseg_iccld.engine.launcher import LAUNCHER_VARIABLES
from mmseg_iccld.engine.resume_schedule import optimizer_setting_differences
from mmseg_iccld.engine.work_dir_lock import LOCK_NAME, PARTIAL_CHECKPOINT
from test_reliability_training import checkpoints, run_train, write_config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def error_line(err: str) -> str:
    """The line the tool ends with on a user error (``error: Type: message``)."""
    return next(line for line in err.splitlines() if line.startswith('error: '))


# one run per work dir


def hold_work_dir(work_dir) -> subprocess.Popen:
    """Another process holding ``work_dir`` as a training run does, until it is killed."""
    code = ('import sys; from mmseg_iccld.engine.work_dir_lock import lock_work_dir; '
            'lock_work_dir(sys.argv[1]); print("held", flush=True); sys.stdin.read()')
    env = {k: v for k, v in os.environ.items() if k not in ('RANK', 'SLURM_PROCID')}
    holder = subprocess.Popen([sys.executable, '-c', code, str(work_dir)], cwd=ROOT, env=env,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == 'held'
    return holder


def test_a_second_run_into_a_work_dir_in_use_is_refused_in_one_line(tmp_path, monkeypatch,
                                                                     capsys):
    work_dir = tmp_path / 'run'
    work_dir.mkdir()
    holder = hold_work_dir(work_dir)
    try:
        status, out, err = run_train(monkeypatch, capsys, write_config(tmp_path), '--work-dir',
                                     str(work_dir))
    finally:
        holder.kill()
        holder.wait()
    assert status == 1
    assert error_line(err) == (
        f'error: WorkDirError: work dir {work_dir} is in use by another training run '
        f'(process {holder.pid} on {os.uname().nodename}): give this run another --work-dir, '
        f'or wait for that one to end')
    assert checkpoints(work_dir) == [] and sorted(os.listdir(work_dir)) == [LOCK_NAME]


def test_a_killed_run_leaves_its_work_dir_free(tmp_path, monkeypatch, capsys):
    work_dir = tmp_path / 'run'
    work_dir.mkdir()
    holder = hold_work_dir(work_dir)
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    status, _, _ = run_train(monkeypatch, capsys, write_config(tmp_path, max_iters=2),
                             '--work-dir', str(work_dir))
    assert status == 0 and checkpoints(work_dir) == ['iter_2.pth']


def test_one_process_may_train_into_its_work_dir_again(tmp_path, monkeypatch, capsys):
    config = write_config(tmp_path, max_iters=2)
    for max_iters, resume in ((2, ()), (4, ('--resume', ))):
        status, _, _ = run_train(monkeypatch, capsys, config, '--work-dir',
                                 str(tmp_path / 'run'), *resume,
                                 options=[f'train_cfg.max_iters={max_iters}'])
        assert status == 0
    assert checkpoints(tmp_path / 'run') == ['iter_2.pth', 'iter_4.pth']


# partial checkpoints and a full disk


def test_the_partial_checkpoint_of_a_killed_save_is_removed_with_a_note(tmp_path, monkeypatch,
                                                                        capsys):
    work_dir = tmp_path / 'run'
    work_dir.mkdir()
    partial = work_dir / '.iter_4.pth.4242.0123abcd.tmp'
    partial.write_bytes(b'PK\x03\x04 half a checkpoint')
    mine = work_dir / '.notes.tmp'  # not a name the checkpoint writer uses
    mine.write_text('kept')
    assert PARTIAL_CHECKPOINT.match(partial.name) and not PARTIAL_CHECKPOINT.match(mine.name)
    status, out, _ = run_train(monkeypatch, capsys, write_config(tmp_path, max_iters=2),
                               '--work-dir', str(work_dir))
    assert status == 0
    assert (f'removed 1 partial checkpoint file(s) that a killed save left: {partial}'
            in out)
    assert not partial.exists() and mine.read_text() == 'kept'


def test_a_full_disk_during_a_save_stops_the_run_in_one_line_and_keeps_the_checkpoints(
        tmp_path, monkeypatch, capsys):
    """The second save (iteration 4) finds no space left: the run stops there with one line,
    iter_2.pth and last_checkpoint stay as they were, and no temporary file is left."""
    real_fsync = os.fsync

    def fsync(descriptor):
        if os.path.basename(os.readlink(f'/proc/self/fd/{descriptor}')).startswith(
                '.iter_4.pth'):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_fsync(descriptor)

    monkeypatch.setattr(local_backend.os, 'fsync', fsync)
    work_dir = tmp_path / 'run'
    status, out, err = run_train(monkeypatch, capsys, write_config(tmp_path), '--work-dir',
                                 str(work_dir))
    assert status == 1
    line = (f'CheckpointWriteError: cannot write {work_dir}/iter_4.pth: No space left on '
            f'device; training stopped, and every file written before is intact (the newest '
            f'checkpoint is {work_dir}/iter_2.pth): make room, then continue with --resume')
    assert line in out
    assert checkpoints(work_dir) == ['iter_2.pth']
    assert (work_dir / 'last_checkpoint').read_text() == f'{work_dir}/iter_2.pth'
    assert not [name for name in os.listdir(work_dir) if name.endswith('.tmp')]
    assert checkpoint_module.checkpoint_problem(str(work_dir / 'iter_2.pth')) is None

    monkeypatch.setattr(local_backend.os, 'fsync', real_fsync)
    status, out, _ = run_train(monkeypatch, capsys, write_config(tmp_path), '--work-dir',
                               str(work_dir), '--resume')
    assert status == 0 and 'resumed epoch: 0, iter: 2' in out
    assert checkpoints(work_dir) == ['iter_2.pth', 'iter_4.pth', 'iter_6.pth']


# resume


@pytest.fixture
def trained_to_4(tmp_path, monkeypatch, capsys):
    """A work dir trained for 4 iterations (checkpoints at 2 and 4) and its config."""
    config = write_config(tmp_path, max_iters=4)
    status, _, _ = run_train(monkeypatch, capsys, config, '--work-dir', str(tmp_path / 'run'))
    assert status == 0
    return config, tmp_path / 'run'


@pytest.mark.parametrize('max_iters', [2, 4])
def test_resume_with_nothing_left_to_train_is_one_line(trained_to_4, monkeypatch, capsys,
                                                       max_iters):
    config, work_dir = trained_to_4
    status, _, err = run_train(monkeypatch, capsys, config, '--work-dir', str(work_dir),
                               '--resume', options=[f'train_cfg.max_iters={max_iters}'])
    assert status == 1
    assert error_line(err) == (
        f'error: ResumeError: --resume: {work_dir}/iter_4.pth is at iteration 4 and '
        f'train_cfg.max_iters is {max_iters}: nothing to train (raise train_cfg.max_iters '
        f'above 4 to train on)')
    assert checkpoints(work_dir) == ['iter_2.pth', 'iter_4.pth']


def test_resume_says_which_edited_learning_rate_it_does_not_use(trained_to_4, monkeypatch,
                                                                capsys):
    config, work_dir = trained_to_4
    status, out, _ = run_train(monkeypatch, capsys, config, '--work-dir', str(work_dir),
                               '--resume', options=['train_cfg.max_iters=6',
                                                    'optim_wrapper.optimizer.lr=0.2'])
    assert status == 0
    checkpoint = f'{work_dir}/iter_4.pth'
    assert (f"resume: the config's optimizer settings differ from those {checkpoint} was "
            f"trained with (optimizer group 0 lr: 0.05 in the checkpoint, 0.2 in the config); "
            f"the run continues with the checkpoint's, as --resume does. To train with the "
            f"config's, start a new run from its weights: --cfg-options "
            f"load_from={checkpoint} without --resume") in out
    # and it does continue with the checkpoint's: the schedule's rate at iteration 4 is 0.05
    state = torch.load(work_dir / 'iter_6.pth', weights_only=False)['optimizer']
    assert state['param_groups'][0]['initial_lr'] == 0.05


def test_resume_with_the_same_settings_says_nothing_of_them(trained_to_4, monkeypatch, capsys):
    config, work_dir = trained_to_4
    status, out, _ = run_train(monkeypatch, capsys, config, '--work-dir', str(work_dir),
                               '--resume', options=['train_cfg.max_iters=6'])
    assert status == 0 and 'optimizer settings differ' not in out


def test_setting_differences_name_each_group_and_setting():
    first, second = torch.nn.Parameter(torch.zeros(1)), torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.AdamW([dict(params=[first]), dict(params=[second])],
                                  lr=0.1, weight_decay=0.01)
    for group in optimizer.param_groups:
        group['initial_lr'] = group['lr']
    saved = optimizer.state_dict()
    saved['param_groups'][1].update(initial_lr=0.3, lr=0.0, weight_decay=0.02)

    class Wrapper:
        pass

    wrapper = Wrapper()
    wrapper.optimizer = optimizer
    # the scheduled lr (0.0 here) is not a setting: initial_lr is
    assert optimizer_setting_differences(saved, wrapper) == [
        'optimizer group 1 lr: 0.3 in the checkpoint, 0.1 in the config',
        'optimizer group 1 weight_decay: 0.02 in the checkpoint, 0.01 in the config']
    assert optimizer_setting_differences(optimizer.state_dict(), wrapper) == []


# distributed launchers


@pytest.mark.parametrize('launcher, script', [
    ('pytorch', 'tools/dist_train.sh CONFIG NUM_PROCESSES (or tools/dist_test.sh), which runs '
                'torchrun'),
    ('slurm', 'tools/slurm_train.sh (or tools/slurm_test.sh), which runs srun')])
def test_a_launcher_that_did_not_start_the_process_is_one_line(tmp_path, monkeypatch, capsys,
                                                               launcher, script):
    for key in LAUNCHER_VARIABLES[launcher]:
        monkeypatch.delenv(key, raising=False)
    status, _, err = run_train(monkeypatch, capsys, write_config(tmp_path), '--work-dir',
                               str(tmp_path / 'run'), '--launcher', launcher)
    assert status == 1
    missing = ', '.join(LAUNCHER_VARIABLES[launcher])
    assert error_line(err) == (
        f'error: LauncherError: --launcher {launcher}: this process was not started by its '
        f'launcher ({missing} not set); start distributed runs with {script}, or leave out '
        f'--launcher to run in one process')
    assert not (tmp_path / 'run').exists()
