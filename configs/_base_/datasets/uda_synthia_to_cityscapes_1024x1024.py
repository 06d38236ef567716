# Synthia RAND-CITYSCAPES (source, labelled) -> Cityscapes (target, unlabelled) at HRDA's
# resolution: Synthia resized to 2560x1520, Cityscapes to 2048x1024, 1024x1024 crops;
# validation on Cityscapes val at 2048x1024 (the model config chooses whole or slide inference).
# HRDA's GTA5 resolution (uda_gta_to_cityscapes_1024x1024.py) with Synthia as the source.
_base_ = ['./uda_gta_to_cityscapes_1024x1024.py']
source_data_root = 'data/synthia'
source_train_pipeline = [dict(t, scale=(2560, 1520)) if t.type == 'Resize' else t
                         for t in _base_.source_train_pipeline]
train_dataloader = dict(
    dataset=dict(
        source=dict(
            type='SynthiaDataset',
            data_root=source_data_root,
            data_prefix=dict(img_path='RGB', seg_map_path='GT/LABELS'),
            pipeline=source_train_pipeline)))
# mIoU over Synthia's 16 classes and over 13 (without wall, fence, pole), per-class table.
val_evaluator = dict(_delete_=True, type='SynthiaIoUMetric')
test_evaluator = val_evaluator
