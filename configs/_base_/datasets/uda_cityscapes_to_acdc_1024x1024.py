# Cityscapes -> ACDC at HRDA's resolution, as the anchors' uda_cityscapesHR_to_acdcHR_1024x1024:
# Cityscapes resized to 2048x1024, ACDC kept at 1920x1080, 1024x1024 crops; validation on ACDC
# val at 1920x1080 (the model config chooses whole or slide inference).
_base_ = ['./uda_cityscapes_to_acdc_512x512.py']
crop_size = (1024, 1024)
source_train_pipeline = [
    dict(t, scale=(2048, 1024)) if t.type == 'Resize' else
    dict(t, crop_size=crop_size) if t.type == 'RandomCrop' else t
    for t in _base_.source_train_pipeline]
target_train_pipeline = [
    dict(t, scale=(1920, 1080)) if t.type == 'Resize' else
    dict(t, crop_size=crop_size) if t.type == 'RandomCrop' else t
    for t in _base_.target_train_pipeline]
test_pipeline = [dict(t, scale=(1920, 1080)) if t.type == 'Resize' else t
                 for t in _base_.test_pipeline]
train_dataloader = dict(
    dataset=dict(
        source=dict(pipeline=source_train_pipeline),
        target=dict(pipeline=target_train_pipeline),
        # HRDA's rare-class crops may be larger than the crop (context view)
        rare_class_sampling=dict(min_crop_ratio=2.0)))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
