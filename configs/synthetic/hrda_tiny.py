# HRDA on the generated synthetic benchmark with a tiny MiT, for CPU minutes: the benchmark
# at twice the size of uda_synthetic.py (as HRDA doubles DAFormer's resolution), 256x256
# crops with a 128x128 detail crop, evaluation in 256x256 windows. Everything else is
# daformer_tiny.py's (same DACS settings, schedule and total iterations).
_base_ = [
    '../_base_/default_runtime.py',
    '../_base_/models/hrda_mit_tiny.py',
    '../_base_/datasets/uda_synthetic_hr.py',
    '../_base_/uda/dacs.py',
    '../_base_/schedules/adamw_poly_2k_tiny.py',
]
# as in daformer_tiny.py: margins off (no rectification border in generated images); the
# feature distance compares with the frozen initial backbone (trained from scratch)
# the teacher's memory relative to the schedule is DAFormer's: 1 / (1 - alpha) = 50 of 2000
# iterations, as 1000 of its 40k (docs/method.md 3.4)
model = dict(_base_.uda, _delete_=True, model=_base_.model, alpha=0.98,
             pseudo_margins=(0, 0, 0, 0))
