# DAFormer (MiT-B5, DACS + rare class sampling + thing-class feature distance),
# Cityscapes -> ACDC (fog, night, rain, snow), 512x512 crops, 40k iterations, at the anchors' settings for this pair:
# no pseudo-label margins (the target has no rectification border).
_base_ = [
    '../_base_/default_runtime.py',
    '../_base_/models/daformer_mitb5.py',
    '../_base_/datasets/uda_cityscapes_to_acdc_512x512.py',
    '../_base_/uda/dacs.py',
    '../_base_/schedules/adamw_poly_40k.py',
]
model = dict(_base_.uda, _delete_=True, model=_base_.model, pseudo_margins=(0, 0, 0, 0))
