# Source-only baseline of configs/synthetic/daformer_dinov2_tiny.py: configs/synthetic/
# source_only_tiny.py with the same tiny DINOv2-shaped ViT/14 and layer-wise decay.
_base_ = ['./source_only_tiny.py', '../_base_/models/dinov2_tiny.py']
model = _base_.dinov2_tiny.segmentor
optim_wrapper = _base_.dinov2_tiny.optim_wrapper
