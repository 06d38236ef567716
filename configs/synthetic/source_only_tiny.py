# Source-only baseline on the generated synthetic benchmark: the tiny DAFormer network of
# configs/synthetic/daformer_tiny.py trained on the source set alone, same schedule.
_base_ = [
    '../_base_/default_runtime.py',
    '../_base_/models/daformer_mit_tiny.py',
    '../_base_/datasets/synthetic_source_only.py',
    '../_base_/schedules/adamw_poly_2k_tiny.py',
]
