# Cityscapes (source, labelled) -> Dark Zurich (target: its unlabelled night training images)
# at DAFormer's resolution, as the anchors' uda_cityscapes_to_darkzurich_512x512: the
# sizes of uda_cityscapes_to_acdc_512x512.py (Dark Zurich is 1920x1080 too); validation on the
# 50 labelled night images of Dark Zurich val. Read in place (datasets/dark_zurich.py).
_base_ = ['./uda_cityscapes_to_acdc_512x512.py']
target_data_root = 'data/dark_zurich'
train_dataloader = dict(
    dataset=dict(
        target=dict(
            _delete_=True,
            type='DarkZurichInPlaceDataset',
            data_root=target_data_root,
            split='train',
            condition='night',
            pipeline=_base_.target_train_pipeline)))
val_dataloader = dict(
    dataset=dict(_delete_=True, type='DarkZurichInPlaceDataset', data_root=target_data_root,
                 split='val', pipeline=_base_.test_pipeline))
test_dataloader = val_dataloader
