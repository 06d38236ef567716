# Source-only baseline on the generated clear-to-adverse benchmark: the tiny DAFormer network
# of source_only_tiny.py trained on the clear source alone, evaluated at night and in fog.
_base_ = [
    '../_base_/default_runtime.py',
    '../_base_/models/daformer_mit_tiny.py',
    '../_base_/datasets/synthetic_adverse_source_only.py',
    '../_base_/schedules/adamw_poly_2k_tiny.py',
]
