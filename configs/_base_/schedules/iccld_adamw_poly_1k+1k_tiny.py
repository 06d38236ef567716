# The tiny ICCLD's optimisation on the generated benchmark: iccld_adamw_poly_40k+40k.py at the
# tiny models' scale (adamw_poly_2k_tiny.py): 1000 phase-1 + 1000 phase-2 iterations, the
# same total as the tiny DACS configs, with their warm-up and step size.
_base_ = ['./iccld_adamw_poly_40k+40k.py']
max_iters = 2000
switch_iter = 1000
warmup_iters = 75  # DAFormer's 1500 of 40000, scaled
# a from-scratch tiny model needs a larger step than fine-tuning a pretrained MiT-B5
optim_wrapper = dict(model=dict(optimizer=dict(lr=6e-4)))
param_scheduler = dict(
    model=[
        dict(type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0,
             end=warmup_iters + 1),
        dict(type='PolyLR', power=1.0, eta_min=0.0, by_epoch=False, begin=0,
             end=max_iters + 1),
    ])
custom_hooks = [
    dict(type='ICCLDPhaseHook', switch_iter=switch_iter, lambda_adv=0.1,
         lambda_adv_delay_iters=100, lambda_adv_ramp_iters=200),
]
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
default_hooks = dict(checkpoint=dict(interval=max_iters))
