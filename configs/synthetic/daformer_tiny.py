# DAFormer's DACS on the generated synthetic benchmark with a tiny MiT, for CPU minutes.
# Everything but the sizes is DAFormer's: EMA teacher, pseudo-label weight, ClassMix with
# color jitter and blur, thing-class feature distance.
_base_ = [
    '../_base_/default_runtime.py',
    '../_base_/models/daformer_mit_tiny.py',
    '../_base_/datasets/uda_synthetic.py',
    '../_base_/uda/dacs.py',
    '../_base_/schedules/adamw_poly_2k_tiny.py',
]
# The model trains from scratch, so the "ImageNet" backbone of the feature distance is the
# frozen initial (random) backbone: the term then only keeps the thing-class features near
# their starting point. It is kept so that this config runs the whole DAFormer loop.
# The margins are off: they exist for Cityscapes' rectification border and ego-vehicle hood.
# the teacher's memory relative to the schedule is DAFormer's: 1 / (1 - alpha) = 50 of 2000
# iterations, as 1000 of its 40k (docs/method.md 3.4)
model = dict(_base_.uda, _delete_=True, model=_base_.model, alpha=0.98,
             pseudo_margins=(0, 0, 0, 0))
