"""Resume of runner-written checkpoints on torch >= 2.6 (mmengine 0.10.7 calls torch.load
without weights_only) and the scope of the allowlist."""
import pickle

import pytest
import torch
import torch.nn as nn
from mmengine.model import BaseModel
from mmengine.runner import Runner

import mmseg_iccld  # noqa: F401
from mmseg_iccld.engine.checkpoint import torch_load_checkpoint


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
    """getattr is only allowed while mmengine loads a checkpoint, not process-wide."""
    path = tmp_path / 'getattr.pth'
    torch.save({'f': getattr(nn.Linear(1, 1), 'forward')}, path)
    with pytest.raises(pickle.UnpicklingError):
        torch.load(path)
    # Our loader allows getattr but still refuses the class it would need (nn.Linear).
    with pytest.raises(pickle.UnpicklingError, match='torch.nn.modules.linear.Linear'):
        torch_load_checkpoint(str(path))
