# Domain generalisation on the generated benchmarks: the tiny DAFormer network trained on the
# GTA5-like source alone with the ImageNet feature distance (SourceOnly, as HRDA trains for
# DG), tested on the Cityscapes-like target and on the adverse night and fog scenes in one
# tools/test.py call. configs/{daformer,hrda}/gta_dg.py are the full-size versions.
_base_ = [
    '../_base_/default_runtime.py',
    '../_base_/models/daformer_mit_tiny.py',
    '../_base_/datasets/synthetic_dg.py',
    '../_base_/uda/source_only.py',
    '../_base_/schedules/adamw_poly_2k_tiny.py',
]
model = dict(_base_.uda, _delete_=True, model=_base_.model)
