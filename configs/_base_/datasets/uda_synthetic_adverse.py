# The generated clear-to-adverse benchmark (tools/make_synthetic_uda.py --adverse
# data/synthetic_adverse/acdc): the labelled Cityscapes-like target of the synthetic benchmark
# (data/synthetic/cityscapes, 256x128) as the source, new scenes at night and in fog in
# ACDC's layout as the target; 128x128 crops for tiny CPU models, validation on the adverse
# val split. The loaders of uda_cityscapes_to_acdc_512x512.py at these sizes.
_base_ = ['./uda_cityscapes_to_acdc_512x512.py']
source_data_root = 'data/synthetic/cityscapes'
target_data_root = 'data/synthetic_adverse/acdc'
crop_size = (128, 128)
source_train_pipeline = [
    dict(t, scale=(256, 128)) if t.type == 'Resize' else
    dict(t, crop_size=crop_size) if t.type == 'RandomCrop' else t
    for t in _base_.source_train_pipeline]
target_train_pipeline = [
    dict(t, scale=(256, 128)) if t.type == 'Resize' else
    dict(t, crop_size=crop_size) if t.type == 'RandomCrop' else t
    for t in _base_.target_train_pipeline]
test_pipeline = [dict(t, scale=(256, 128)) if t.type == 'Resize' else t
                 for t in _base_.test_pipeline]
conditions = ('fog', 'night')
train_dataloader = dict(
    num_workers=2,
    dataset=dict(
        source=dict(data_root=source_data_root, pipeline=source_train_pipeline),
        target=dict(data_root=target_data_root, conditions=conditions,
                    pipeline=target_train_pipeline),
        # DAFormer's min_pixels=3000 scaled by the crop area, as uda_synthetic.py
        rare_class_sampling=dict(min_pixels=188)))
val_dataloader = dict(
    num_workers=2,
    dataset=dict(data_root=target_data_root, conditions=conditions, pipeline=test_pipeline))
test_dataloader = val_dataloader
