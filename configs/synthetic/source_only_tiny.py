# Source-only baseline on the generated synthetic benchmark: the tiny DAFormer network of
# configs/synthetic/daformer_tiny.py trained on the source set alone, same schedule.
_base_ = [
    '../_base_/default_runtime.py',
    '../_base_/models/daformer_mit_tiny.py',
    '../_base_/datasets/synthetic_source_only.py',
    '../_base_/schedules/adamw_poly_40k.py',
]
max_iters = 2000
warmup_iters = 75  # DAFormer's 1500 of 40000, scaled
optim_wrapper = dict(optimizer=dict(lr=6e-4))
# as in adamw_poly_40k.py: mmengine schedulers end one step before `end`
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0, end=warmup_iters + 1),
    dict(type='PolyLR', power=1.0, eta_min=0.0, by_epoch=False, begin=0, end=max_iters + 1),
]
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
default_hooks = dict(checkpoint=dict(interval=max_iters))
