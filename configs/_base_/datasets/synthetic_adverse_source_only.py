# Source-only baseline on the generated clear-to-adverse benchmark: a plain CityscapesDataset
# loader on the clear source, the same pipelines and adverse validation as
# uda_synthetic_adverse.py.
_base_ = ['./uda_synthetic_adverse.py']
train_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type='CityscapesDataset',
        data_root={{_base_.source_data_root}},
        data_prefix=dict(img_path='leftImg8bit/train', seg_map_path='gtFine/train'),
        pipeline={{_base_.source_train_pipeline}}))
