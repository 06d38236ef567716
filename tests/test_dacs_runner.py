"""DACS in mmengine's Runner: train loop, validation, checkpoint and resume."""
import os
import os.path as osp

import cv2
import numpy as np
import torch
from mmengine.config import Config
from mmengine.runner import Runner

import mmseg_iccld  # noqa: F401

torch.set_num_threads(1)

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
CLASSES = tuple(f'c{i}' for i in range(19))


def _write_split(root: str, n: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    for i in range(n):
        image = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
        label = np.full((64, 64), 255, dtype=np.uint8)
        label[:32, :32], label[:32, 32:], label[32:, :32] = 13, 0, 11
        for sub, array in (('img', image), ('ann', label)):
            path = osp.join(root, sub, f'{i}.png')
            os.makedirs(osp.dirname(path), exist_ok=True)
            cv2.imwrite(path, array)


def _dataset(root: str) -> dict:
    return dict(
        type='BaseSegDataset', data_root=root, metainfo=dict(classes=CLASSES),
        data_prefix=dict(img_path='img', seg_map_path='ann'), img_suffix='.png',
        seg_map_suffix='.png',
        pipeline=[dict(type='LoadImageFromFile'), dict(type='LoadAnnotations'),
                   dict(type='PackSegInputs')])


def _config(tmp_path, max_iters: int) -> Config:
    source, target = str(tmp_path / 'source'), str(tmp_path / 'target')
    _write_split(source, 2, 0)
    _write_split(target, 2, 1)
    text = f"""
_base_ = ['{REPO}/configs/_base_/default_runtime.py',
          '{REPO}/configs/_base_/models/daformer_mit_tiny.py',
          '{REPO}/configs/_base_/uda/dacs.py',
          '{REPO}/configs/_base_/schedules/adamw_poly_40k.py']
model = dict(_base_.uda, _delete_=True, model=_base_.model, pseudo_margins=(0, 0, 0, 0))
train_dataloader = dict(batch_size=2, num_workers=0,
                        sampler=dict(type='InfiniteSampler', shuffle=False),
                        dataset=dict(type='UDADataset', source={_dataset(source)!r},
                                     target={_dataset(target)!r}))
val_dataloader = dict(batch_size=1, num_workers=0,
                      sampler=dict(type='DefaultSampler', shuffle=False),
                      dataset={_dataset(target)!r})
val_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU'])
test_dataloader = val_dataloader
test_evaluator = val_evaluator
train_cfg = dict(max_iters={max_iters}, val_interval={max_iters})
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval={max_iters}),
                     visualization=dict(type='SegVisualizationHook', draw=False))
env_cfg = dict(cudnn_benchmark=False, dist_cfg=dict(backend='gloo'))
work_dir = '{tmp_path / 'work'}'
"""
    path = tmp_path / 'dacs_runner.py'
    path.write_text(text)
    return Config.fromfile(str(path))


def test_runner_trains_validates_and_resumes_the_teacher(tmp_path):
    cfg = _config(tmp_path, max_iters=2)
    runner = Runner.from_cfg(cfg)
    runner.train()
    model = runner.model
    assert type(model).__name__ == 'DACS'
    assert int(model.teacher.steps) == 3  # the copy + one update per iteration
    scalars = runner.message_hub.log_scalars
    for key in ('train/src.decode.loss_ce', 'train/src.loss_feat_dist',
                'train/mix.decode.loss_ce', 'train/pseudo_weight', 'val/mIoU'):
        assert key in scalars, key
    checkpoint = tmp_path / 'work' / 'iter_2.pth'
    assert checkpoint.exists()
    teacher_after_2 = {k: v.clone() for k, v in model.teacher.module.state_dict().items()}
    frozen = {k: v.clone() for k, v in model.imnet_backbone.state_dict().items()}

    cfg = _config(tmp_path, max_iters=3)
    cfg.resume, cfg.load_from = True, str(checkpoint)
    resumed = Runner.from_cfg(cfg)
    resumed.train()
    model = resumed.model
    assert resumed.iter == 3
    assert int(model.teacher.steps) == 4  # resumed from 3: no second copy
    student = model.model.state_dict()
    for k, v in model.teacher.module.named_parameters():
        # the one update of iteration 2: alpha = min(1 - 1/4, 0.999) = 0.75
        assert torch.allclose(v, 0.75 * teacher_after_2[k] + 0.25 * student[k], atol=1e-6), k
    for k, v in model.imnet_backbone.state_dict().items():
        assert torch.equal(v, frozen[k]), k
