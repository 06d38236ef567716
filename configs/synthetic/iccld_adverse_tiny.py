# ICCLD on the generated clear-to-adverse benchmark: iccld_tiny.py's model, phases and
# optimisation (1000 phase-1 + 1000 phase-2 iterations), with the clear Cityscapes-like set as
# the source and the night and fog scenes in ACDC's layout as the target.
_base_ = [
    '../_base_/default_runtime.py',
    '../_base_/models/iccld_mit_tiny.py',
    '../_base_/datasets/uda_synthetic_adverse.py',
    '../_base_/uda/iccld.py',
    '../_base_/schedules/iccld_adamw_poly_1k+1k_tiny.py',
]
# as iccld_tiny.py: alpha 0.98, no pseudo-label margins; f_dis does not read the ego-vehicle
# band (the bottom 12 of 128 rows, ignored in both domains' labels)
model = dict(_base_.uda, _delete_=True, model=_base_.model, alpha=0.98,
             pseudo_margins=(0, 0, 0, 0), adv_margins=(0, 12, 0, 0))
