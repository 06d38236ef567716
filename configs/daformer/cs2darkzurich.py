# DAFormer (MiT-B5, DACS + rare class sampling + thing-class feature distance),
# Cityscapes -> Dark Zurich (night), 512x512 crops, 40k iterations, as DAFormer ran this pair
# (its experiments.py, id 8): rare class sampling on the Cityscapes source and DACS's
# pseudo-label margins (15 top, 120 bottom rows of the target crop, plcrop=True).
_base_ = [
    '../_base_/default_runtime.py',
    '../_base_/models/daformer_mitb5.py',
    '../_base_/datasets/uda_cityscapes_to_darkzurich_512x512.py',
    '../_base_/uda/dacs.py',
    '../_base_/schedules/adamw_poly_40k.py',
]
model = dict(_base_.uda, _delete_=True, model=_base_.model)
