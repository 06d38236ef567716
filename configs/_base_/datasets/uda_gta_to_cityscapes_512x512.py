# GTA5 (source, labelled) -> Cityscapes (target, unlabelled) at DAFormer's resolution:
# GTA5 resized to 1280x720, Cityscapes to 1024x512, 512x512 crops; validation on Cityscapes
# val at 1024x512.
# Prepare the data with tools/convert_datasets/{gta,cityscapes}.py (docs/datasets.md).
# The other UDA dataset configs inherit this one and change only what differs: the source
# (uda_synthia_*), the resolution (*_1024x1024) or both; the pipelines they rescale are these.
source_data_root = 'data/gta'
target_data_root = 'data/cityscapes'
crop_size = (512, 512)
source_train_pipeline = [
    dict(type='LoadImageFromFileChecked'),
    dict(type='LoadAnnotationsChecked'),
    dict(type='Resize', scale=(1280, 720), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs'),
]
# Target labels are loaded for inspection only; the UDA wrappers never train on them.
target_train_pipeline = [
    dict(type='LoadImageFromFileChecked'),
    dict(type='LoadAnnotationsChecked'),
    dict(type='Resize', scale=(1024, 512), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFileChecked'),
    dict(type='Resize', scale=(1024, 512), keep_ratio=True),
    dict(type='LoadAnnotationsChecked'),
    dict(type='PackSegInputs'),
]
train_dataloader = dict(
    batch_size=2,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type='UDADataset',
        source=dict(
            type='GTA5Dataset',
            data_root=source_data_root,
            data_prefix=dict(img_path='images', seg_map_path='labels'),
            pipeline=source_train_pipeline),
        target=dict(
            type='CityscapesDataset',
            data_root=target_data_root,
            data_prefix=dict(img_path='leftImg8bit/train', seg_map_path='gtFine/train'),
            pipeline=target_train_pipeline),
        rare_class_sampling=dict(class_temp=0.01, min_pixels=3000, min_crop_ratio=0.5)))
val_dataloader = dict(
    batch_size=1,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type='CityscapesDataset',
        data_root=target_data_root,
        data_prefix=dict(img_path='leftImg8bit/val', seg_map_path='gtFine/val'),
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU'])
test_evaluator = val_evaluator
