# Cityscapes -> Dark Zurich at HRDA's resolution, as the anchors'
# uda_cityscapesHR_to_darkzurichHR_1024x1024: the sizes of uda_cityscapes_to_acdc_1024x1024.py.
_base_ = ['./uda_cityscapes_to_acdc_1024x1024.py']
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
