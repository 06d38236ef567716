# DAFormer's optimisation: AdamW, lr 6e-5 (decode head x10), no weight decay on norms,
# 1500-iteration linear warm-up and polynomial (power 1) decay over 40k iterations.
optimizer = dict(type='AdamW', lr=6e-05, betas=(0.9, 0.999), weight_decay=0.01)
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=optimizer,
    paramwise_cfg=dict(
        custom_keys=dict(
            head=dict(lr_mult=10.0),
            pos_block=dict(decay_mult=0.0),
            norm=dict(decay_mult=0.0),
            # mmseg 1.x names MiT's stage-final LayerNorms layers.<i>.2 (DAFormer's MiT:
            # norm1..norm4), which the 'norm' key misses.
            **{f'backbone.layers.{i}.2.': dict(decay_mult=0.0) for i in range(4)})))
# Both schedulers run from iteration 0 and multiply, which reproduces mmcv's poly policy
# with linear warm-up that DAFormer trained with: lr(t) = 6e-5 * (1 - t / 40000) *
# (1e-6 + (1 - 1e-6) * min(t, 1500) / 1500). mmengine's schedulers take end - begin - 1
# steps, hence the ends one past 1500 and 40000. (A PolyLR starting after the warm-up would
# hold 3.75% more learning rate from iteration 1500 on.)
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0, end=1501),
    dict(type='PolyLR', power=1.0, eta_min=0.0, by_epoch=False, begin=0, end=40001),
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=40000, val_interval=4000)
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
