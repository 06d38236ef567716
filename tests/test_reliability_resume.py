"""Resume is exact: a run interrupted inside ICCLD's phase 2 (or DACS training) and resumed
from its checkpoint ends with the same weights and optimizer states as an uninterrupted run.

The runs use the project's tiny synthetic configs as they are (rare class sampling, random
crop and flip, ClassMix, color jitter, blur, dropout, drop path, the diffusion draws), shrunk
to 6 iterations with a checkpoint every 2 and a validation every 2, on CPU. ICCLD loads its
data in the main process (``num_workers=0``: the data pipeline then shares the generators of
the training step), DACS with two persistent workers, as the configs train.
"""
import os.path as osp
import random
from types import SimpleNamespace

import numpy as np
import torch
from mmengine.config import Config
from mmengine.runner import Runner

import mmseg_iccld  # noqa: F401
from mmseg_iccld.engine.checkpoint import torch_load_checkpoint
from mmseg_iccld.engine.hooks.rng_state_hook import RNGStateHook
from mmseg_iccld.models.uda.dacs import DACS

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
MAX_ITERS, SWITCH_ITER, INTERVAL, RESUME_ITER = 6, 2, 2, 4


def _config(benchmark, work_dir, name: str, rng_hook: bool = True,
            num_workers: int = 0) -> Config:
    """The synthetic config ``name`` (``iccld_tiny`` or ``daformer_tiny``), shrunk; without
    the schedules' ``RNGStateHook`` when ``rng_hook`` is False."""
    schedule = dict(
        iccld_tiny=f"""
param_scheduler = dict(
    model=[dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=3),
           dict(type='PolyLR', power=1.0, eta_min=0.0, by_epoch=False, begin=0,
                end={MAX_ITERS + 1})],
    discriminator=[dict(type='PolyLR', power=1.0, eta_min=0.0, by_epoch=False,
                        begin={SWITCH_ITER}, end={MAX_ITERS + 1})])
custom_hooks = [dict(type='ICCLDPhaseHook', switch_iter={SWITCH_ITER}, lambda_adv=0.1,
                     lambda_adv_ramp_iters=2)]
""",
        daformer_tiny=f"""
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=3),
    dict(type='PolyLR', power=1.0, eta_min=0.0, by_epoch=False, begin=0,
         end={MAX_ITERS + 1})]
""")[name]
    text = f"""
_base_ = ['{REPO}/configs/synthetic/{name}.py']
train_dataloader = dict(
    batch_size=2, num_workers={num_workers}, persistent_workers={num_workers > 0},
    dataset=dict(source=dict(data_root='{benchmark.gta_root}'),
                 target=dict(data_root='{benchmark.cityscapes_root}')))
val_dataloader = dict(num_workers=0, persistent_workers=False,
                      dataset=dict(data_root='{benchmark.cityscapes_root}'))
test_dataloader = val_dataloader
train_cfg = dict(max_iters={MAX_ITERS}, val_interval={INTERVAL})
default_hooks = dict(checkpoint=dict(interval={INTERVAL}))
randomness = dict(seed=0, deterministic=True)
env_cfg = dict(cudnn_benchmark=False, dist_cfg=dict(backend='gloo'))
work_dir = '{work_dir}'
{schedule}
"""
    path = f'{work_dir}.py'
    with open(path, 'w') as f:
        f.write(text)
    cfg = Config.fromfile(path)
    # the project's schedules enable the hook for every config
    assert cfg.default_hooks.rng_state == dict(type='RNGStateHook')
    if not rng_hook:
        cfg.default_hooks.pop('rng_state')
    return cfg


def _train(benchmark, work_dir, name, resume_from=None, **kwargs) -> Runner:
    cfg = _config(benchmark, work_dir, name, **kwargs)
    if resume_from is not None:
        cfg.resume, cfg.load_from = True, str(resume_from)
    cfg.experiment_name = osp.basename(str(work_dir))
    runner = Runner.from_cfg(cfg)
    runner.train()
    return runner


def _assert_same_state(actual: dict, expected: dict, what: str) -> None:
    assert actual.keys() == expected.keys(), what
    for key, value in expected.items():
        if isinstance(value, dict):
            _assert_same_state(actual[key], value, f'{what}.{key}')
        elif isinstance(value, (list, tuple)):
            assert len(actual[key]) == len(value), f'{what}.{key}'
            for i, item in enumerate(value):
                _assert_same_state({i: actual[key][i]}, {i: item}, f'{what}.{key}')
        elif isinstance(value, torch.Tensor):
            assert torch.equal(actual[key], value), f'{what}.{key}'
        else:
            assert actual[key] == value, f'{what}.{key}'


def _differs(actual: dict, expected: dict) -> bool:
    return any(not torch.equal(actual[k], v) for k, v in expected.items())


def test_iccld_resumed_inside_step2_ends_like_the_uninterrupted_run(synthetic_benchmark,
                                                                     tmp_path):
    straight = _train(synthetic_benchmark, tmp_path / 'straight', 'iccld_tiny')
    checkpoint_path = tmp_path / 'straight' / f'iter_{RESUME_ITER}.pth'

    # what a phase-2 checkpoint holds
    checkpoint = torch_load_checkpoint(str(checkpoint_path))
    assert checkpoint['meta']['iter'] == RESUME_ITER
    state = checkpoint['state_dict']
    assert int(state['model.phase']) == 2
    assert int(state['teacher.module.phase']) == 2
    assert int(state['teacher.steps']) == RESUME_ITER + 1  # the copy + one update per step
    assert any(k.startswith('discriminator.') for k in state)
    assert any(k.startswith('imnet_backbone.') for k in state)
    optimizers = checkpoint['optimizer']
    assert set(optimizers) == {'model', 'discriminator'}
    # the discriminator has stepped in iterations 2 and 3: Adam moments exist
    assert optimizers['discriminator']['state'] and optimizers['model']['state']
    assert set(checkpoint['param_schedulers']) == {'model', 'discriminator'}
    assert len(checkpoint['rng_state']) == 1

    resumed = _train(synthetic_benchmark, tmp_path / 'resumed', 'iccld_tiny',
                     resume_from=checkpoint_path)
    assert resumed.iter == MAX_ITERS
    model, reference = resumed.model, straight.model
    assert model.student.in_phase2
    # student, teacher, ImageNet backbone, discriminator: every parameter and buffer
    _assert_same_state(model.state_dict(), reference.state_dict(), 'model')
    _assert_same_state(resumed.optim_wrapper.state_dict(), straight.optim_wrapper.state_dict(),
                       'optimizer')
    assert resumed.optim_wrapper.get_lr() == straight.optim_wrapper.get_lr()

    # without the generator states the same resume diverges: the check above can fail
    unseeded = _train(synthetic_benchmark, tmp_path / 'unseeded', 'iccld_tiny',
                      resume_from=checkpoint_path, rng_hook=False)
    assert _differs(unseeded.model.state_dict(), reference.state_dict())


def test_dacs_resume_restores_the_teacher_and_ends_like_the_uninterrupted_run(
        synthetic_benchmark, tmp_path, monkeypatch):
    """DAFormer's config, with two persistent dataloader workers as the configs train."""
    straight = _train(synthetic_benchmark, tmp_path / 'straight', 'daformer_tiny',
                      num_workers=2)
    checkpoint_path = tmp_path / 'straight' / f'iter_{RESUME_ITER}.pth'
    checkpoint = torch_load_checkpoint(str(checkpoint_path))
    saved_teacher = {k[len('teacher.'):]: v for k, v in checkpoint['state_dict'].items()
                     if k.startswith('teacher.')}
    assert int(saved_teacher['steps']) == RESUME_ITER + 1

    # the teacher the first resumed iteration starts from is the saved one, exactly
    first_teacher = []
    train_step = DACS.train_step

    def recording_train_step(self, data, optim_wrapper):
        if not first_teacher:
            first_teacher.append({k: v.clone() for k, v in self.teacher.state_dict().items()})
        return train_step(self, data, optim_wrapper)

    monkeypatch.setattr(DACS, 'train_step', recording_train_step)
    resumed = _train(synthetic_benchmark, tmp_path / 'resumed', 'daformer_tiny',
                     resume_from=checkpoint_path, num_workers=2)
    _assert_same_state(first_teacher[0], saved_teacher, 'teacher')
    assert resumed.iter == MAX_ITERS
    _assert_same_state(resumed.model.state_dict(), straight.model.state_dict(), 'model')
    _assert_same_state(resumed.optim_wrapper.state_dict(), straight.optim_wrapper.state_dict(),
                       'optimizer')


def test_generator_states_come_back_on_resume_only(tmp_path):
    hook = RNGStateHook()
    checkpoint = dict(meta=dict(iter=4))
    hook.before_save_checkpoint(None, checkpoint)
    expected = (torch.rand(4), np.random.rand(4), random.random())
    path = str(tmp_path / 'checkpoint.pth')
    torch.save(checkpoint, path)
    loaded = torch_load_checkpoint(path)  # the states pass the safe unpickler

    # load_from without resume: the loop starts at 0 and the generators go on as they are
    hook.after_load_checkpoint(None, loaded)
    hook.before_train(SimpleNamespace(iter=0, train_loop=SimpleNamespace()))
    assert not torch.equal(torch.rand(4), expected[0])

    # resume (the loop continues at the checkpoint's iteration): the saved states return
    hook.after_load_checkpoint(None, loaded)
    hook.before_train(SimpleNamespace(iter=4, train_loop=SimpleNamespace()))
    assert torch.equal(torch.rand(4), expected[0])
    assert np.array_equal(np.random.rand(4), expected[1])
    assert random.random() == expected[2]
