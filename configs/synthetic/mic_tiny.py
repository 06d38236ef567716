# MIC on the generated synthetic benchmark: hrda_tiny.py plus masked image consistency.
# MIC's 64-pixel patches belong to 1024x1024 crops; the tiny 256x256 crops keep the same
# 16x16 grid of patches with 16-pixel patches (docs/method.md, MIC).
_base_ = ['./hrda_tiny.py']
model = dict(
    mask_consistency=dict(
        mask_ratio=0.7, mask_block_size=16, loss_weight=1.0, color_augmentation=True))
