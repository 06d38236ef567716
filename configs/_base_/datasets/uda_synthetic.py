# The embedded synthetic benchmark (tools/make_synthetic_uda.py): a GTA5-like source
# (data/synthetic/gta, 256x144) and a Cityscapes-like target (data/synthetic/cityscapes,
# 256x128), 128x128 crops for tiny CPU models; validation on the target val split.
gta_data_root = 'data/synthetic/gta'
cityscapes_data_root = 'data/synthetic/cityscapes'
crop_size = (128, 128)
gta_train_pipeline = [
    dict(type='LoadImageFromFileChecked'),
    dict(type='LoadAnnotationsChecked'),
    dict(type='Resize', scale=(256, 144), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs'),
]
# Target labels are loaded for inspection only; the UDA wrappers never train on them.
cityscapes_train_pipeline = [
    dict(type='LoadImageFromFileChecked'),
    dict(type='LoadAnnotationsChecked'),
    dict(type='Resize', scale=(256, 128), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFileChecked'),
    dict(type='Resize', scale=(256, 128), keep_ratio=True),
    dict(type='LoadAnnotationsChecked'),
    dict(type='PackSegInputs'),
]
train_dataloader = dict(
    batch_size=2,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type='UDADataset',
        source=dict(
            type='GTA5Dataset',
            data_root=gta_data_root,
            data_prefix=dict(img_path='images', seg_map_path='labels'),
            pipeline=gta_train_pipeline),
        target=dict(
            type='CityscapesDataset',
            data_root=cityscapes_data_root,
            data_prefix=dict(img_path='leftImg8bit/train', seg_map_path='gtFine/train'),
            pipeline=cityscapes_train_pipeline),
        # DAFormer's min_pixels=3000 is for 512x512 crops; scaled by the crop area:
        # 3000 * (128 * 128) / (512 * 512) = 187.5 -> 188 (min_crop_ratio kept at 0.5).
        rare_class_sampling=dict(class_temp=0.01, min_pixels=188, min_crop_ratio=0.5)))
val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type='CityscapesDataset',
        data_root=cityscapes_data_root,
        data_prefix=dict(img_path='leftImg8bit/val', seg_map_path='gtFine/val'),
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU'])
test_evaluator = val_evaluator
