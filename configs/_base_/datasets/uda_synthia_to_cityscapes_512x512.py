# Synthia RAND-CITYSCAPES (source, labelled) -> Cityscapes (target, unlabelled) at DAFormer's
# resolution: Synthia resized to 1280x760, Cityscapes to 1024x512, 512x512 crops; validation
# on Cityscapes val at 1024x512.
# Prepare the data with tools/convert_datasets/{synthia,cityscapes}.py (docs/datasets.md).
# uda_gta_to_cityscapes_512x512.py with Synthia as the source and its 16-class evaluation.
_base_ = ['./uda_gta_to_cityscapes_512x512.py']
source_data_root = 'data/synthia'
source_train_pipeline = [dict(t, scale=(1280, 760)) if t.type == 'Resize' else t
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
