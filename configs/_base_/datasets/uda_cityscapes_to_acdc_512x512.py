# Cityscapes (source, labelled) -> ACDC (target, unlabelled: fog, night, rain, snow) at
# DAFormer's resolution, as the anchors' uda_cityscapes_to_acdc_512x512: Cityscapes resized to
# 1024x512, ACDC (1920x1080) to 960x540, 512x512 crops; validation on ACDC val at 960x540.
# ACDC is read in place (mmseg_iccld/datasets/acdc.py); Cityscapes needs
# tools/convert_datasets/cityscapes.py (train ids and the class statistics of rare class
# sampling, which the anchors use with Cityscapes as the source too). Pseudo-label margins
# are the method configs' choice (DAFormer ran these pairs with them, HRDA and MIC without).
_base_ = ['./uda_gta_to_cityscapes_512x512.py']
source_data_root = 'data/cityscapes'
target_data_root = 'data/acdc'
crop_size = (512, 512)
source_train_pipeline = [
    dict(t, scale=(1024, 512)) if t.type == 'Resize' else t
    for t in _base_.source_train_pipeline]
# the target's labels are never trained on; the anchors' target pipeline loads none
target_train_pipeline = [
    dict(type='LoadImageFromFileChecked'),
    dict(type='Resize', scale=(960, 540), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs'),
]
test_pipeline = [dict(t, scale=(960, 540)) if t.type == 'Resize' else t
                 for t in _base_.test_pipeline]
train_dataloader = dict(
    dataset=dict(
        source=dict(
            _delete_=True,
            type='CityscapesDataset',
            data_root=source_data_root,
            data_prefix=dict(img_path='leftImg8bit/train', seg_map_path='gtFine/train'),
            pipeline=source_train_pipeline),
        target=dict(
            _delete_=True,
            type='ACDCDataset',
            data_root=target_data_root,
            split='train',
            with_labels=False,
            pipeline=target_train_pipeline)))
val_dataloader = dict(
    dataset=dict(_delete_=True, type='ACDCDataset', data_root=target_data_root, split='val',
                 pipeline=test_pipeline))
test_dataloader = val_dataloader
