# Source-only baseline on the synthetic benchmark: a plain GTA5Dataset loader on the synthetic
# source, the same pipelines and the same target validation as uda_synthetic.py.
_base_ = ['./uda_synthetic.py']
train_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type='GTA5Dataset',
        data_root={{_base_.source_data_root}},
        data_prefix=dict(img_path='images', seg_map_path='labels'),
        pipeline={{_base_.source_train_pipeline}}))
