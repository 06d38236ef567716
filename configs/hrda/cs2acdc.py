# HRDA (MiT-B5, DAFormer head at a context and a detail scale, DACS + rare class sampling +
# thing-class feature distance), Cityscapes -> ACDC (fog, night, rain, snow), 1024x1024 crops with a
# 512x512 detail crop, 40k iterations, as HRDA ran this pair (its experiments.py, id 49):
# rare class sampling on the Cityscapes source and no pseudo-label margins (plcrop=False: the
# target has no rectification border).
_base_ = [
    '../_base_/default_runtime.py',
    '../_base_/models/hrda_mitb5.py',
    '../_base_/datasets/uda_cityscapes_to_acdc_1024x1024.py',
    '../_base_/uda/dacs.py',
    '../_base_/schedules/adamw_poly_40k.py',
]
model = dict(_base_.uda, _delete_=True, model=_base_.model, pseudo_margins=(0, 0, 0, 0))
