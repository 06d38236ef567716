"""Resume of runner-written checkpoints on torch >= 2.6 (mmengine 0.10.7 calls torch.load
without weights_only), the scope of the allowlist, what getattr may reach during a load, and
saves that a kill cannot leave half-written."""
import pickle

import numpy as np
import pytest
import torch
import torch.nn as nn
from mmengine.logging import HistoryBuffer
from mmengine.model import BaseModel
from mmengine.runner import Runner

import mmseg_iccld  # noqa: F401
from mmseg_iccld.engine.checkpoint import (CheckpointReadError, checkpoint_problem,
                                           torch_load_checkpoint)


class _Regressor(BaseModel):

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(3, 1)

    def forward(self, inputs, data_samples=None, mode='tensor'):
        out = self.linear(inputs)
        if mode == 'loss':
            return {'loss': (out - inputs.sum(1, keepdim=True)).pow(2).mean()}
        return out


class _Data(torch.utils.data.Dataset):

    def __len__(self):
        return 16

    def __getitem__(self, index):
        generator = torch.Generator().manual_seed(index)
        return dict(inputs=torch.randn(3, generator=generator))


def _runner(work_dir, max_iters, **kwargs):
    torch.manual_seed(0)
    return Runner(
        model=_Regressor(),
        work_dir=str(work_dir),
        train_dataloader=dict(
            dataset=_Data(), batch_size=4, collate_fn=dict(type='default_collate'),
            sampler=dict(type='DefaultSampler', shuffle=True, seed=0)),
        optim_wrapper=dict(optimizer=dict(type='AdamW', lr=0.05)),
        param_scheduler=dict(type='LinearLR', start_factor=0.5, by_epoch=False, begin=0,
                             end=6),
        train_cfg=dict(by_epoch=False, max_iters=max_iters),
        default_hooks=dict(
            checkpoint=dict(type='CheckpointHook', interval=2, by_epoch=False),
            logger=dict(type='LoggerHook', interval=1)),
        randomness=dict(seed=0),
        experiment_name=f'{work_dir.parent.name}-{work_dir.name}',
        **kwargs)


def test_stock_torch_load_rejects_runner_checkpoints(tmp_path):
    """The problem the plugin works around is real on this torch."""
    runner = _runner(tmp_path / 'a', max_iters=2)
    runner.train()
    with pytest.raises(pickle.UnpicklingError, match='HistoryBuffer'):
        torch.load(tmp_path / 'a' / 'iter_2.pth')
    checkpoint = torch_load_checkpoint(str(tmp_path / 'a' / 'iter_2.pth'))
    assert checkpoint['meta']['iter'] == 2
    assert 'message_hub' in checkpoint and 'optimizer' in checkpoint


def test_resume_continues_like_an_uninterrupted_run(tmp_path):
    straight = _runner(tmp_path / 'straight', max_iters=6)
    straight.train()

    interrupted = _runner(tmp_path / 'interrupted', max_iters=4)
    interrupted.train()
    resumed = _runner(tmp_path / 'resumed', max_iters=6, resume=True,
                      load_from=str(tmp_path / 'interrupted' / 'iter_4.pth'))
    resumed.train()

    assert resumed.iter == 6
    for name, value in straight.model.state_dict().items():
        torch.testing.assert_close(resumed.model.state_dict()[name], value, rtol=0, atol=0)
    # the learning-rate schedule and the optimizer moments came back as well
    assert resumed.optim_wrapper.get_lr() == straight.optim_wrapper.get_lr()


def test_allowlist_is_scoped_to_checkpoint_loading(tmp_path):
    """The allowlist applies only while mmengine loads a checkpoint, not process-wide, and a
    refused file is one line without torch's advice to load it unsafely."""
    path = tmp_path / 'linear.pth'
    torch.save({'f': getattr(nn.Linear(1, 1), 'forward')}, path)
    with pytest.raises(pickle.UnpicklingError):
        torch.load(path)
    with pytest.raises(CheckpointReadError) as error:
        torch_load_checkpoint(str(path))
    assert str(error.value) == (f'checkpoint {path} refused: it holds '
                                'torch.nn.modules.linear.Linear, which a checkpoint may not '
                                'contain')
    assert isinstance(error.value, ValueError)  # the tools print it as one line


class _GetAttr:
    """Pickles as ``getattr(owner, name)``, as HistoryBuffer's statistics methods do."""

    def __init__(self, owner, name):
        self.owner, self.name = owner, name

    def __reduce__(self):
        return getattr, (self.owner, self.name)


@pytest.mark.parametrize('owner, name, shown', [
    (getattr, '__self__', 'getattr'),  # the builtins module, and through it eval
    (HistoryBuffer, '_statistics_methods', 'HistoryBuffer'),  # a dict the unpickler could fill
    (HistoryBuffer, 'register_statistics', 'HistoryBuffer'),
    (np.ndarray, '__class__', 'ndarray'),
])
def test_getattr_in_a_checkpoint_reaches_nothing_but_history_buffer_statistics(
        tmp_path, owner, name, shown):
    path = tmp_path / 'crafted.pth'
    torch.save({'state_dict': {}, 'x': _GetAttr(owner, name)}, path)
    with pytest.raises(CheckpointReadError) as error:
        torch_load_checkpoint(str(path))
    assert str(error.value) == (f'checkpoint {path} refused: getattr({shown}, {name!r}) is '
                                'not part of an mmengine checkpoint')
    assert 'weights_only' not in str(error.value)


@pytest.mark.parametrize('name', ['mean', 'max', 'min', 'current'])
def test_getattr_in_a_checkpoint_reaches_every_history_buffer_statistic(tmp_path, name):
    # runner checkpoints pickle the statistics methods their message hub used
    path = tmp_path / 'hub.pth'
    torch.save({'state_dict': {}, 'x': _GetAttr(HistoryBuffer, name)}, path)
    assert torch_load_checkpoint(str(path))['x'] is getattr(HistoryBuffer, name)


def test_history_buffers_keep_their_statistics(tmp_path):
    runner = _runner(tmp_path / 'a', max_iters=2)
    runner.train()
    hub = torch_load_checkpoint(str(tmp_path / 'a' / 'iter_2.pth'))['message_hub']
    loss = hub['log_scalars']['train/loss']
    assert loss.statistics('mean') == runner.message_hub.get_scalar('train/loss').mean()
    assert loss.mean is not None and loss.current() == loss.data[0][-1]


class _Killed(BaseException):
    """What a kill during the write amounts to: the write stops half way."""


def _dying_open(*args, **kwargs):
    f = open(*args, **kwargs)
    if 'w' not in f.mode and 'x' not in f.mode:
        return f
    write = f.write

    def half_write(data):
        write(bytes(data)[:len(data) // 2])
        f.close()
        raise _Killed()

    f.write = half_write
    return f


def test_a_kill_during_a_save_leaves_no_half_file_under_the_checkpoints_name(
        tmp_path, monkeypatch):
    import mmengine.fileio.backends.local_backend as local_backend

    import mmseg_iccld.engine.local_backend as engine_backend
    work_dir = tmp_path / 'a'
    runner = _runner(work_dir, max_iters=2)
    runner.train()
    saved = (work_dir / 'iter_2.pth').read_bytes()
    with monkeypatch.context() as patch:
        for module in (local_backend, engine_backend):
            patch.setattr(module, 'open', _dying_open, raising=False)
        for name in ('iter_2.pth', 'iter_4.pth'):  # over an earlier one, and a new one
            with pytest.raises(_Killed):
                runner.save_checkpoint(str(work_dir), name)
    assert (work_dir / 'iter_2.pth').read_bytes() == saved
    assert not (work_dir / 'iter_4.pth').exists()
    assert checkpoint_problem(str(work_dir / 'iter_2.pth')) is None
    assert sorted(p.name for p in work_dir.glob('*.pth')) == ['iter_2.pth']
    # a complete save replaces the file
    runner.save_checkpoint(str(work_dir), 'iter_4.pth')
    assert torch_load_checkpoint(str(work_dir / 'iter_4.pth'))['meta']['iter'] == 2
    assert sorted(p.name for p in work_dir.iterdir() if p.name.startswith('.')) == []
