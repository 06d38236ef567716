# ICCLD's optimisation: phase 1 (DACS on E and D) for 40k iterations, then phase 2 (latent
# diffusion + adversarial alignment) for 40k more, in one run.
# - The segmentor (E, eps_theta, D) has DAFormer's AdamW settings; one linear warm-up and one
#   polynomial decay span both steps. The parts with no ImageNet weights learn at the decode
#   head's 10x (DAFormer's rule for new modules): the latent projector E (`neck`), new and
#   random from iteration 0, and eps_theta (UNet and condition projection), random at the
#   switch.
# - The discriminator has its own Adam (AdaptSegNet's and ADVENT's betas) at a constant
#   learning rate, used from the switch on.
# - ICCLDPhaseHook switches to phase 2 at 40k, keeps lambda_adv at 0 for 2k iterations (the
#   discriminator learns the domains first), then ramps it over 4k.
switch_iter = 40000
max_iters = 80000
optim_wrapper = dict(
    constructor='MultiOptimWrapperConstructor',
    model=dict(
        type='OptimWrapper',
        optimizer=dict(type='AdamW', lr=6e-05, betas=(0.9, 0.999), weight_decay=0.01),
        paramwise_cfg=dict(
            custom_keys=dict(
                head=dict(lr_mult=10.0),
                neck=dict(lr_mult=10.0),
                diffusion=dict(lr_mult=10.0),
                pos_block=dict(decay_mult=0.0),
                norm=dict(decay_mult=0.0),
                # mmseg 1.x names MiT's stage-final LayerNorms layers.<i>.2
                **{f'backbone.layers.{i}.2.': dict(decay_mult=0.0) for i in range(4)}))),
    discriminator=dict(
        type='OptimWrapper', optimizer=dict(type='Adam', lr=2.5e-4, betas=(0.9, 0.99))))
# mmengine schedulers stop one step before `end` (see adamw_poly_40k.py): `end + 1` gives
# mmcv's poly-with-warm-up exactly, as DAFormer trained.
param_scheduler = dict(
    model=[
        dict(type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0, end=1501),
        dict(type='PolyLR', power=1.0, eta_min=0.0, by_epoch=False, begin=0,
             end=max_iters + 1),
    ],
    discriminator=[dict(type='ConstantLR', factor=1.0, by_epoch=False, begin=0, end=1)])
custom_hooks = [
    dict(type='ICCLDPhaseHook', switch_iter=switch_iter, lambda_adv=0.1,
         lambda_adv_delay_iters=2000, lambda_adv_ramp_iters=4000),
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=4000)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=4000),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    # RNG states in checkpoints: --resume continues exactly as an uninterrupted run
    rng_state=dict(type='RNGStateHook'),
    visualization=dict(type='SegVisualizationHook'))
