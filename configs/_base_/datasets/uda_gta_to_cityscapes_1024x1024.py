# GTA5 (source, labelled) -> Cityscapes (target, unlabelled) at HRDA's resolution:
# GTA5 resized to 2560x1440, Cityscapes to 2048x1024, 1024x1024 crops; validation on
# Cityscapes val at 2048x1024 (the model config chooses whole or slide inference).
# DAFormer's resolution (uda_gta_to_cityscapes_512x512.py) with every scale and crop doubled.
_base_ = ['./uda_gta_to_cityscapes_512x512.py']
crop_size = (1024, 1024)
source_train_pipeline = [
    dict(t, scale=(2560, 1440)) if t.type == 'Resize' else
    dict(t, crop_size=crop_size) if t.type == 'RandomCrop' else t
    for t in _base_.source_train_pipeline]
# HRDA's pseudo-label margins (top, bottom, left, right) on the full 2048x1024 target, before
# the crop: a crop loses pseudo-labels only where it touches the image border
# (mmseg_iccld/datasets/pseudo_label_margins.py); the UDA configs then set no crop margins
target_train_pipeline = [
    dict(type='LoadImageFromFileChecked'),
    dict(type='LoadAnnotationsChecked'),
    dict(type='Resize', scale=(2048, 1024), keep_ratio=True),
    dict(type='PseudoLabelMargins', margins=(30, 240, 30, 30)),
    dict(type='RandomCrop', crop_size=crop_size),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackUDATargetInputs'),
]
test_pipeline = [dict(t, scale=(2048, 1024)) if t.type == 'Resize' else t
                 for t in _base_.test_pipeline]
train_dataloader = dict(
    dataset=dict(
        source=dict(pipeline=source_train_pipeline),
        target=dict(pipeline=target_train_pipeline),
        # HRDA's rare-class crops may be larger than the crop (context view)
        rare_class_sampling=dict(min_crop_ratio=2.0)))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
