# DACS (DAFormer) on the generated clear-to-adverse benchmark: daformer_tiny.py's model,
# schedule and DACS settings, with the clear Cityscapes-like set as the source and the night
# and fog scenes in ACDC's layout as the target (uda_synthetic_adverse.py).
_base_ = [
    '../_base_/default_runtime.py',
    '../_base_/models/daformer_mit_tiny.py',
    '../_base_/datasets/uda_synthetic_adverse.py',
    '../_base_/uda/dacs.py',
    '../_base_/schedules/adamw_poly_2k_tiny.py',
]
# as daformer_tiny.py: the teacher's memory relative to the schedule is DAFormer's
# (docs/method.md 3.4); no pseudo-label margins (the anchors set none for ACDC)
model = dict(_base_.uda, _delete_=True, model=_base_.model, alpha=0.98,
             pseudo_margins=(0, 0, 0, 0))
