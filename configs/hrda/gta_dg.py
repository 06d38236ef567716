# HRDA for domain generalisation (MiT-B5, DAFormer head at a context and a detail scale,
# source-only training on GTA5 with rare class sampling and the thing-class ImageNet feature
# distance), 1024x1024 crops with a 512x512 detail crop, 40k iterations; tested on Cityscapes,
# BDD100K and Mapillary in one tools/test.py call. HRDA's PAMI extension reports
# 57.41 / 49.11 / 61.16 mIoU.
_base_ = [
    '../_base_/default_runtime.py',
    '../_base_/models/hrda_mitb5.py',
    '../_base_/datasets/dg_gta_1024x1024.py',
    '../_base_/uda/source_only.py',
    '../_base_/schedules/adamw_poly_40k.py',
]
model = dict(_base_.uda, _delete_=True, model=_base_.model)
