"""tools/train.py on faults and bad input: misspelt config keys, an unwritable work dir, and
non-finite losses under nonfinite='skip' each end in one line, before anything is lost.

The runs use a linear regressor that trains like the UDA models (its train_step runs the
non-finite loss guard), on 16 random vectors, for a few iterations on CPU; tools/train.py runs
in this process (its exit status and output captured).
"""
import sys
from itertools import count

import pytest
import torch
import torch.nn as nn
from mmengine.config import Config
from mmengine.logging import MessageHub
from mmengine.model import BaseModel
from mmengine.optim import OptimWrapperDict
from mmengine.registry import DATASETS, MODELS

from mmseg_iccld.engine.checkpoint import torch_load_checkpoint
from mmseg_iccld.engine.config_check import check_config
from mmseg_iccld.models.uda.loss_guard import NonFiniteLossGuard
from tools import train as train_tool

_RUNS = count()


@MODELS.register_module(force=True)
class GuardedRegressor(BaseModel):
    """``y = sum(x)`` learnt by a linear layer (and a scalar ``scale``), with the loss guard.

    Args:
        out_features: Outputs of the linear layer (another value: another model).
        nonfinite: The guard's policy, as the UDA models' ``nonfinite``.
        nan_iters: Iterations (0-based) whose loss is made NaN.
    """

    instances = 0

    def __init__(self, out_features: int = 1, nonfinite='raise', nan_iters=()):
        super().__init__()
        GuardedRegressor.instances += 1
        self.linear = nn.Linear(3, out_features)
        self.scale = nn.Linear(1, 1, bias=False)
        self.loss_guard = NonFiniteLossGuard(nonfinite)
        self.nan_iters = set(nan_iters)

    def forward(self, inputs, data_samples=None, mode='tensor'):
        out = self.scale(self.linear(inputs).sum(1, keepdim=True))
        if mode == 'loss':
            return {'loss': (out - inputs.sum(1, keepdim=True)).pow(2).mean()}
        return out

    def train_step(self, data, optim_wrapper):
        self.loss_guard.begin(self)
        losses = self(**self.data_preprocessor(data, True), mode='loss')
        if MessageHub.get_current_instance().get_info('iter') in self.nan_iters:
            losses['loss'] = losses['loss'] * float('nan')
        self.loss_guard.check(losses)
        loss, log_vars = self.parse_losses(losses)
        wrappers = list(optim_wrapper.optim_wrappers.values()) \
            if isinstance(optim_wrapper, OptimWrapperDict) else [optim_wrapper]
        loss.backward()
        skip = self.loss_guard.skip_step()
        for wrapper in wrappers:
            if not skip:
                wrapper.step()
            wrapper.zero_grad()
        log_vars.update(self.loss_guard.log_vars())
        return log_vars


@DATASETS.register_module(force=True)
class RandomVectors(torch.utils.data.Dataset):

    def __len__(self):
        return 16

    def __getitem__(self, index):
        return dict(inputs=torch.randn(3, generator=torch.Generator().manual_seed(index)))


def write_config(tmp_path, max_iters: int = 6, name: str = 'regressor', extra: str = '') -> str:
    """A config of the regressor: AdamW, a warm-up, a checkpoint every 2 iterations."""
    path = tmp_path / f'{name}.py'
    path.write_text(f"""
default_scope = 'mmseg'
model = dict(type='GuardedRegressor')
train_dataloader = dict(
    dataset=dict(type='RandomVectors'), batch_size=4, num_workers=0,
    collate_fn=dict(type='default_collate'),
    sampler=dict(type='DefaultSampler', shuffle=True, seed=0))
optim_wrapper = dict(optimizer=dict(type='AdamW', lr=0.05))
param_scheduler = dict(type='LinearLR', start_factor=0.5, by_epoch=False, begin=0, end=4)
train_cfg = dict(by_epoch=False, max_iters={max_iters})
default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=2, by_epoch=False),
                     logger=dict(type='LoggerHook', interval=1))
randomness = dict(seed=0)
{extra}
""")
    return str(path)


def run_train(monkeypatch, capsys, config: str, *args: str, options=()):
    """Run tools/train.py; returns (exit status, stdout, stderr)."""
    options = [f'experiment_name=run{next(_RUNS)}', *options]
    monkeypatch.setattr(sys, 'argv',
                        ['tools/train.py', config, *args, '--cfg-options', *options])
    capsys.readouterr()
    try:
        train_tool.main()
        status = 0
    except SystemExit as exit:
        status = exit.code
    out, err = capsys.readouterr()
    return status, out, err


def checkpoints(work_dir) -> list:
    return sorted(p.name for p in work_dir.glob('*.pth')) if work_dir.exists() else []


# misspelt keys


@pytest.mark.parametrize('option, line', [
    ('default_hooks.checkpoint.intervl=2',
     'default_hooks.checkpoint.intervl is not an argument of CheckpointHook (did you mean '
     'interval?)'),
    ('train_cfg.max_iter=3',
     'train_cfg.max_iter is not an argument of IterBasedTrainLoop (did you mean max_iters?)'),
    ('model.nonfinte=skip',
     'model.nonfinte is not an argument of GuardedRegressor (did you mean nonfinite?)'),
    ('train_cfgg.max_iters=3', 'unknown top-level key train_cfgg (did you mean train_cfg?)'),
    ('optim_wrapper.clip_grd.max_norm=1',
     'optim_wrapper.clip_grd is not an argument of OptimWrapper (did you mean clip_grad?)'),
])
def test_a_misspelt_key_stops_before_the_model_is_built(tmp_path, monkeypatch, capsys, option,
                                                        line):
    config = write_config(tmp_path)
    built = GuardedRegressor.instances
    status, _, err = run_train(monkeypatch, capsys, config, '--work-dir',
                               str(tmp_path / 'run'), options=[option])
    assert status == 1
    assert err.splitlines()[0] == f'error: ConfigKeyError: config {config}: {line}'
    assert GuardedRegressor.instances == built  # nothing was built, nothing trained
    assert not (tmp_path / 'run').exists()


def test_every_misspelt_key_is_named_in_the_one_line(tmp_path, monkeypatch, capsys):
    config = write_config(tmp_path)
    status, _, err = run_train(monkeypatch, capsys, config, '--work-dir', str(tmp_path / 'run'),
                               options=['train_cfg.max_iter=3', 'load_form=x.pth'])
    assert status == 1
    assert err.splitlines()[0] == (
        f'error: ConfigKeyError: config {config}: unknown top-level key load_form (did you '
        f'mean load_from?); train_cfg.max_iter is not an argument of IterBasedTrainLoop (did '
        f'you mean max_iters?)')


# the work dir


def test_a_work_dir_under_a_file_is_one_line_before_the_model_is_built(tmp_path, monkeypatch,
                                                                       capsys):
    (tmp_path / 'results').write_text('a file where a folder is expected')
    work_dir = tmp_path / 'results' / 'run'
    built = GuardedRegressor.instances
    status, out, err = run_train(monkeypatch, capsys, write_config(tmp_path), '--work-dir',
                                 str(work_dir))
    assert status == 1
    assert err.splitlines()[0] == (f'error: WorkDirError: work dir {work_dir} cannot be '
                                   f'created: {tmp_path / "results"} is a file, not a folder')
    assert GuardedRegressor.instances == built
    assert (tmp_path / 'results').read_text() == 'a file where a folder is expected'


# non-finite losses


def test_skipping_stops_past_the_limit_with_one_line(tmp_path, monkeypatch, capsys):
    """28 of 30 iterations NaN: the run stops at the 11th skipped one (10 of 100 allowed)."""
    work_dir = tmp_path / 'run'
    status, out, err = run_train(
        monkeypatch, capsys, write_config(tmp_path, max_iters=30), '--work-dir', str(work_dir),
        options=['model.nonfinite=skip',
                 f'model.nan_iters=({",".join(map(str, range(2, 30)))})'])
    assert status == 1
    assert ('FloatingPointError: non-finite loss loss at iteration 12: 11 of the last 100 '
            'iterations had a non-finite loss (nonfinite max_skips=10); training stopped, no '
            'update used a non-finite loss') in out
    assert err == ''
    # the checkpoints written before the stop; all hold the weights of iter_2.pth
    assert checkpoints(work_dir) == [f'iter_{i}.pth' for i in (10, 12, 2, 4, 6, 8)]
    first, last = (torch_load_checkpoint(str(work_dir / f'iter_{i}.pth'))['state_dict']
                   for i in (2, 12))
    assert all(torch.equal(first[k], last[k]) for k in first)


def test_the_limit_and_window_come_from_the_config(tmp_path, monkeypatch, capsys):
    status, out, _ = run_train(
        monkeypatch, capsys, write_config(tmp_path, max_iters=8), '--work-dir',
        str(tmp_path / 'run'),
        options=['model.nonfinite.policy=skip', 'model.nonfinite.max_skips=1',
                 'model.nonfinite.window=3', 'model.nan_iters=(1,4,6)'])
    # 1 and 4 are 3 apart (one skip per window), 4 and 6 are not
    assert status == 1
    assert ('non-finite loss loss at iteration 6: 2 of the last 3 iterations had a '
            'non-finite loss (nonfinite max_skips=1)') in out


def test_a_run_with_skipped_iterations_ends_with_a_warning(tmp_path, monkeypatch, capsys):
    work_dir = tmp_path / 'run'
    status, out, _ = run_train(monkeypatch, capsys, write_config(tmp_path), '--work-dir',
                               str(work_dir),
                               options=['model.nonfinite=skip', 'model.nan_iters=(3,4)'])
    assert status == 0
    warning = ("2 of the 6 iterations of this run were skipped for a non-finite loss "
               "(nonfinite='skip'); the log names the iteration and the loss terms of each")
    assert warning in out
    assert out.rindex(warning) > out.rindex('Saving checkpoint at 6 iterations')
    assert checkpoints(work_dir) == ['iter_2.pth', 'iter_4.pth', 'iter_6.pth']

    status, out, _ = run_train(monkeypatch, capsys, write_config(tmp_path), '--work-dir',
                               str(tmp_path / 'clean'), options=['model.nonfinite=skip'])
    assert status == 0 and 'skipped for a non-finite loss' not in out


def test_help_documents_load_strict(monkeypatch, capsys):
    monkeypatch.setattr(sys, 'argv', ['tools/train.py', '--help'])
    with pytest.raises(SystemExit):
        train_tool.parse_args()
    text = capsys.readouterr().out
    assert 'load_strict=False' in text and 'newest' in text


def test_the_config_check_leaves_the_config_unchanged(tmp_path):
    cfg = Config.fromfile(write_config(tmp_path))
    before = cfg.pretty_text
    check_config(cfg, cfg.filename)
    assert cfg.pretty_text == before
