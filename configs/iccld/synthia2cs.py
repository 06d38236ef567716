# ICCLD, Synthia -> Cityscapes (mIoU over 16 and 13 classes), 512x512 crops,
# 40k phase-1 + 40k phase-2 iterations in one run. Paper (Table 1): 67.2 mIoU16.
_base_ = [
    '../_base_/default_runtime.py',
    '../_base_/models/iccld_mitb5.py',
    '../_base_/datasets/uda_synthia_to_cityscapes_512x512.py',
    '../_base_/uda/iccld.py',
    '../_base_/schedules/iccld_adamw_poly_40k+40k.py',
]
model = dict(_base_.uda, _delete_=True, model=_base_.model)
