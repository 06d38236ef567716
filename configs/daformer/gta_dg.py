# DAFormer for domain generalisation (MiT-B5, source-only training on GTA5 with rare class
# sampling and the thing-class ImageNet feature distance), 512x512 crops, 40k iterations;
# tested on Cityscapes, BDD100K and Mapillary in one tools/test.py call. HRDA's PAMI extension
# reports 52.65 / 47.89 / 54.66 mIoU.
_base_ = [
    '../_base_/default_runtime.py',
    '../_base_/models/daformer_mitb5.py',
    '../_base_/datasets/dg_gta_512x512.py',
    '../_base_/uda/source_only.py',
    '../_base_/schedules/adamw_poly_40k.py',
]
model = dict(_base_.uda, _delete_=True, model=_base_.model)
