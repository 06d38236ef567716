# ICCLD at HRDA's resolution (ICCLDHR: MiT-B5, the inter-coder decoder on a context and a
# detail view, scale attention, mask diffusion on the context view), Synthia -> Cityscapes
# (mIoU over 16 and 13 classes): HRDA's data, 1024x1024 crops, 512x512 detail crop and
# pseudo-label margins, ICCLD's 40k phase-1 + 40k phase-2 iterations in one run.
_base_ = [
    '../_base_/default_runtime.py',
    '../_base_/models/iccld_hr_mitb5.py',
    '../_base_/datasets/uda_synthia_to_cityscapes_1024x1024.py',
    '../_base_/uda/iccld.py',
    '../_base_/schedules/iccld_adamw_poly_40k+40k.py',
]
# HRDA's pseudo-label margins are applied to the full target image before its crop (the
# dataset config's PseudoLabelMargins); f_dis does not read the rectification border and
# ego-vehicle rows of the crop (uda/iccld.py's margins at twice the resolution)
model = dict(_base_.uda, _delete_=True, model=_base_.model, pseudo_margins=(0, 0, 0, 0),
             adv_margins=(30, 240, 0, 0))
