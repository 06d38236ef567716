# configs/synthetic/daformer_tiny.py with a tiny DINOv2-shaped ViT/14 in place of the tiny MiT
# (configs/_base_/models/dinov2_tiny.py), trained with layer-wise learning-rate decay and, as
# the DINOv2 experiment configs, without the ImageNet feature distance.
_base_ = ['./daformer_tiny.py', '../_base_/models/dinov2_tiny.py']
model = dict(imnet_feature_dist_lambda=0.0, model=_base_.dinov2_tiny.segmentor)
optim_wrapper = _base_.dinov2_tiny.optim_wrapper
