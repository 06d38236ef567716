# The embedded synthetic benchmark (tools/make_synthetic_uda.py): a GTA5-like source
# (data/synthetic/gta, 256x144) and a Cityscapes-like target (data/synthetic/cityscapes,
# 256x128), 128x128 crops for tiny CPU models; validation on the target val split.
# The loaders of uda_gta_to_cityscapes_512x512.py at these sizes, with two workers.
_base_ = ['./uda_gta_to_cityscapes_512x512.py']
source_data_root = 'data/synthetic/gta'
target_data_root = 'data/synthetic/cityscapes'
crop_size = (128, 128)
source_train_pipeline = [
    dict(t, scale=(256, 144)) if t.type == 'Resize' else
    dict(t, crop_size=crop_size) if t.type == 'RandomCrop' else t
    for t in _base_.source_train_pipeline]
target_train_pipeline = [
    dict(t, scale=(256, 128)) if t.type == 'Resize' else
    dict(t, crop_size=crop_size) if t.type == 'RandomCrop' else t
    for t in _base_.target_train_pipeline]
test_pipeline = [dict(t, scale=(256, 128)) if t.type == 'Resize' else t
                 for t in _base_.test_pipeline]
train_dataloader = dict(
    num_workers=2,
    dataset=dict(
        source=dict(data_root=source_data_root, pipeline=source_train_pipeline),
        target=dict(data_root=target_data_root, pipeline=target_train_pipeline),
        # DAFormer's min_pixels=3000 is for 512x512 crops; scaled by the crop area:
        # 3000 * (128 * 128) / (512 * 512) = 187.5 -> 188 (min_crop_ratio kept at 0.5).
        rare_class_sampling=dict(min_pixels=188)))
val_dataloader = dict(
    num_workers=2, dataset=dict(data_root=target_data_root, pipeline=test_pipeline))
test_dataloader = val_dataloader
