# The synthetic benchmark at HRDA's resolution: the same generated data as uda_synthetic.py,
# resized to twice its size (source 512x288, target 512x256), as HRDA doubles DAFormer's
# 1280x720 / 1024x512; 256x256 crops (HRDA: 1024x1024) for tiny CPU models; validation on the
# target val split at 512x256.
gta_data_root = 'data/synthetic/gta'
cityscapes_data_root = 'data/synthetic/cityscapes'
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
        # HRDA's min_pixels=3000 is for 1024x1024 crops; scaled by the crop area:
        # 3000 * (256 * 256) / (1024 * 1024) = 187.5 -> 188, and HRDA's min_crop_ratio 2.0.
        rare_class_sampling=dict(class_temp=0.01, min_pixels=188, min_crop_ratio=2.0)))
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
