# HRDA on the generated synthetic benchmark with a tiny MiT, for CPU minutes: the benchmark
# at twice the size of uda_synthetic.py (as HRDA doubles DAFormer's resolution), 256x256
# crops with a 128x128 detail crop, evaluation in 256x256 windows. Everything else is
# daformer_tiny.py's (same DACS settings, schedule and total iterations).
_base_ = [
    '../_base_/default_runtime.py',
    '../_base_/models/hrda_mit_tiny.py',
    '../_base_/datasets/uda_synthetic_hr.py',
    '../_base_/uda/dacs.py',
    '../_base_/schedules/adamw_poly_40k.py',
]
# as in daformer_tiny.py: margins off (no rectification border in generated images); the
# feature distance compares with the frozen initial backbone (trained from scratch)
model = dict(_base_.uda, _delete_=True, model=_base_.model, pseudo_margins=(0, 0, 0, 0))

max_iters = 2000
warmup_iters = 75  # DAFormer's 1500 of 40000, scaled
# a from-scratch tiny model needs a larger step than fine-tuning a pretrained MiT-B5
optim_wrapper = dict(optimizer=dict(lr=6e-4))
# as in adamw_poly_40k.py: mmengine schedulers end one step before `end`
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0, end=warmup_iters + 1),
    dict(type='PolyLR', power=1.0, eta_min=0.0, by_epoch=False, begin=0, end=max_iters + 1),
]
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
default_hooks = dict(checkpoint=dict(interval=max_iters))
