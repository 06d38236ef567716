# Runtime shared by every config of the project (mmseg 1.x defaults + the plugin import).
default_scope = 'mmseg'
custom_imports = dict(imports=['mmseg_iccld'], allow_failed_imports=False)
env_cfg = dict(
    cudnn_benchmark=True,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    # tools/train.py switches to gloo when no GPU is present
    dist_cfg=dict(backend='nccl'),
)
vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(type='SegLocalVisualizer', vis_backends=vis_backends, name='visualizer')
log_processor = dict(by_epoch=False)
# Each rank draws its own augmentation, ClassMix, dropout and diffusion noise, as the samples
# of one single-process batch do; with one shared seed, sample i of every rank would get the
# same draws (docs/method.md, "Reproducibility and distributed training"). The model's weights
# still start equal: the runner broadcasts them from rank 0 after init_weights.
randomness = dict(seed=None, diff_rank_seed=True)
log_level = 'INFO'
load_from = None
resume = False
tta_model = dict(type='SegTTAModel')
