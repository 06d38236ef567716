# The tiny models' optimisation on the generated benchmark: DAFormer's (adamw_poly_40k.py)
# scaled to 2000 iterations, with a larger step for a model trained from scratch.
_base_ = ['./adamw_poly_40k.py']
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
