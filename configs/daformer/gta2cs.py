# DAFormer (MiT-B5, DACS + rare class sampling + thing-class feature distance),
# GTA5 -> Cityscapes, 512x512 crops, 40k iterations. Paper: 68.3 mIoU.
_base_ = [
    '../_base_/default_runtime.py',
    '../_base_/models/daformer_mitb5.py',
    '../_base_/datasets/uda_gta_to_cityscapes_512x512.py',
    '../_base_/uda/dacs.py',
    '../_base_/schedules/adamw_poly_40k.py',
]
model = dict(_base_.uda, _delete_=True, model=_base_.model)
