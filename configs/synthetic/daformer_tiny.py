# DAFormer's DACS on the generated synthetic benchmark with a tiny MiT, for CPU minutes.
# Everything but the sizes is DAFormer's: EMA teacher, pseudo-label weight, ClassMix with
# color jitter and blur, thing-class feature distance.
_base_ = [
    '../_base_/default_runtime.py',
    '../_base_/models/daformer_mit_tiny.py',
    '../_base_/datasets/uda_synthetic.py',
    '../_base_/uda/dacs.py',
    '../_base_/schedules/adamw_poly_40k.py',
]
# The model trains from scratch, so the "ImageNet" backbone of the feature distance is the
# frozen initial (random) backbone: the term then only keeps the thing-class features near
# their starting point. It is kept so that this config runs the whole DAFormer loop.
# The margins are off: they exist for Cityscapes' rectification border and ego-vehicle hood.
model = dict(_base_.uda, _delete_=True, model=_base_.model, pseudo_margins=(0, 0, 0, 0))

max_iters = 2000
warmup_iters = 75  # DAFormer's 1500 of 40000, scaled
# A from-scratch tiny model needs a larger step than fine-tuning a pretrained MiT-B5.
optim_wrapper = dict(optimizer=dict(lr=6e-4))
# as in adamw_poly_40k.py: mmengine schedulers end one step before `end`
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0, end=warmup_iters + 1),
    dict(type='PolyLR', power=1.0, eta_min=0.0, by_epoch=False, begin=0, end=max_iters + 1),
]
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
default_hooks = dict(checkpoint=dict(interval=max_iters))
