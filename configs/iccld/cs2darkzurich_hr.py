# ICCLD at HRDA's resolution (ICCLDHR), Cityscapes -> Dark Zurich (night): HRDA's data,
# 1024x1024 crops and 512x512 detail crop, ICCLD's 40k phase-1 + 40k phase-2 iterations; no
# pseudo-label margins and no rows cut from f_dis's input (no rectification border here).
_base_ = [
    '../_base_/default_runtime.py',
    '../_base_/models/iccld_hr_mitb5.py',
    '../_base_/datasets/uda_cityscapes_to_darkzurich_1024x1024.py',
    '../_base_/uda/iccld.py',
    '../_base_/schedules/iccld_adamw_poly_40k+40k.py',
]
model = dict(_base_.uda, _delete_=True, model=_base_.model, pseudo_margins=(0, 0, 0, 0),
             adv_margins=(0, 0, 0, 0))
