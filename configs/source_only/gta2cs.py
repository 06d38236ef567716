# Source-only baseline: DAFormer's network (MiT-B5 + DAFormerHead) trained on GTA5 alone,
# evaluated on Cityscapes, with DAFormer's schedule. A plain EncoderDecoder, so mmengine's
# default DDP wrapper applies.
_base_ = [
    '../_base_/default_runtime.py',
    '../_base_/models/daformer_mitb5.py',
    '../_base_/datasets/uda_gta_to_cityscapes_512x512.py',
    '../_base_/schedules/adamw_poly_40k.py',
]
# The source half of the UDA dataset (same GTA5 pipeline), without target images or rare
# class sampling; validation and test stay those of the UDA config.
train_dataloader = dict(
    sampler=dict(_delete_=True, type='InfiniteSampler', shuffle=True),
    dataset=dict(_base_.train_dataloader.dataset.source, _delete_=True))
