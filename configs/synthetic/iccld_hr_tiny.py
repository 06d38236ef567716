# ICCLD at HRDA's resolution on the generated synthetic benchmark (ICCLDHR, tiny MiT): the
# data, crops and evaluation windows of hrda_tiny.py, ICCLD's phases and optimisation of
# iccld_tiny.py (1000 phase-1 + 1000 phase-2 iterations, the total of hrda_tiny.py).
_base_ = [
    '../_base_/default_runtime.py',
    '../_base_/models/iccld_hr_mit_tiny.py',
    '../_base_/datasets/uda_synthetic_hr.py',
    '../_base_/uda/iccld.py',
    '../_base_/schedules/iccld_adamw_poly_1k+1k_tiny.py',
]
# as in iccld_tiny.py, at twice the size: no pseudo-label margins; f_dis does not read the
# generated target's ego-vehicle band (the bottom 24 of its 256 rows)
# the teacher's memory relative to the schedule is DAFormer's: 1 / (1 - alpha) = 50 of 2000
# iterations, as 1000 of its 40k (docs/method.md 3.4)
model = dict(_base_.uda, _delete_=True, model=_base_.model, alpha=0.98,
             pseudo_margins=(0, 0, 0, 0),
             adv_margins=(0, 24, 0, 0))
