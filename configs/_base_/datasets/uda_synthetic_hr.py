# The synthetic benchmark at HRDA's resolution: the same generated data and loaders as
# uda_synthetic.py, resized to twice its size (source 512x288, target 512x256), as HRDA doubles
# DAFormer's 1280x720 / 1024x512; 256x256 crops (HRDA: 1024x1024) for tiny CPU models;
# validation on the target val split at 512x256.
_base_ = ['./uda_synthetic.py']
crop_size = (256, 256)
gta_train_pipeline = [
    dict(type='LoadImageFromFileChecked'),
    dict(type='LoadAnnotationsChecked'),
    dict(type='Resize', scale=(512, 288), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs'),
]
# Target labels are loaded for inspection only; the UDA wrappers never train on them.
cityscapes_train_pipeline = [
    dict(type='LoadImageFromFileChecked'),
    dict(type='LoadAnnotationsChecked'),
    dict(type='Resize', scale=(512, 256), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFileChecked'),
    dict(type='Resize', scale=(512, 256), keep_ratio=True),
    dict(type='LoadAnnotationsChecked'),
    dict(type='PackSegInputs'),
]
train_dataloader = dict(
    dataset=dict(
        source=dict(pipeline=gta_train_pipeline),
        target=dict(pipeline=cityscapes_train_pipeline),
        # HRDA's min_pixels=3000 is for 1024x1024 crops; scaled by the crop area:
        # 3000 * (256 * 256) / (1024 * 1024) = 187.5 -> 188 (as uda_synthetic.py's 128x128
        # crops of DAFormer's 512x512), with HRDA's min_crop_ratio 2.0.
        rare_class_sampling=dict(min_pixels=188, min_crop_ratio=2.0)))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
