# HRDA (MiT-B5, DAFormer head at a context and a detail scale, DACS + rare class sampling +
# thing-class feature distance), Synthia -> Cityscapes, 1024x1024 crops with a 512x512 detail
# crop, 40k iterations. Paper: 65.8 mIoU (16 classes).
_base_ = [
    '../_base_/default_runtime.py',
    '../_base_/models/hrda_mitb5.py',
    '../_base_/datasets/uda_synthia_to_cityscapes_1024x1024.py',
    '../_base_/uda/dacs.py',
    '../_base_/schedules/adamw_poly_40k.py',
]
# HRDA's pseudo-label margins are applied to the full target image before its crop, by the
# dataset config's target pipeline (PseudoLabelMargins); none in the crop's frame
model = dict(_base_.uda, _delete_=True, model=_base_.model, pseudo_margins=(0, 0, 0, 0))
