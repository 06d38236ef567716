# ICCLD at HRDA's resolution (ICCLDHR), Cityscapes -> Dark Zurich (night): HRDA's data,
# 1024x1024 crops and 512x512 detail crop, ICCLD's 40k phase-1 + 40k phase-2 iterations; no
# pseudo-label margins (no rectification border in the target, as HRDA and MIC for this
# pair). f_dis does not read the rectification border and ego-vehicle rows of the Cityscapes
# crops, a fixed cue of one domain, now the source (at twice the resolution).
_base_ = [
    '../_base_/default_runtime.py',
    '../_base_/models/iccld_hr_mitb5.py',
    '../_base_/datasets/uda_cityscapes_to_darkzurich_1024x1024.py',
    '../_base_/uda/iccld.py',
    '../_base_/schedules/iccld_adamw_poly_40k+40k.py',
]
model = dict(_base_.uda, _delete_=True, model=_base_.model, pseudo_margins=(0, 0, 0, 0),
             adv_margins=(30, 240, 0, 0))
