# The synthetic benchmark at HRDA's resolution: the same generated data and loaders as
# uda_synthetic.py, resized to twice its size (source 512x288, target 512x256), as HRDA doubles
# DAFormer's 1280x720 / 1024x512; 256x256 crops (HRDA: 1024x1024) for tiny CPU models;
# validation on the target val split at 512x256.
_base_ = ['./uda_synthetic.py']
crop_size = (256, 256)
source_train_pipeline = [
    dict(t, scale=(512, 288)) if t.type == 'Resize' else
    dict(t, crop_size=crop_size) if t.type == 'RandomCrop' else t
    for t in _base_.source_train_pipeline]
target_train_pipeline = [
    dict(t, scale=(512, 256)) if t.type == 'Resize' else
    dict(t, crop_size=crop_size) if t.type == 'RandomCrop' else t
    for t in _base_.target_train_pipeline]
test_pipeline = [dict(t, scale=(512, 256)) if t.type == 'Resize' else t
                 for t in _base_.test_pipeline]
train_dataloader = dict(
    dataset=dict(
        source=dict(pipeline=source_train_pipeline),
        target=dict(pipeline=target_train_pipeline),
        # HRDA's min_pixels=3000 is for 1024x1024 crops; scaled by the crop area:
        # 3000 * (256 * 256) / (1024 * 1024) = 187.5 -> 188 (as uda_synthetic.py's 128x128
        # crops of DAFormer's 512x512), with HRDA's min_crop_ratio 2.0.
        rare_class_sampling=dict(min_pixels=188, min_crop_ratio=2.0)))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
