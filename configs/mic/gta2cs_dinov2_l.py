# configs/mic/gta2cs_dinov2_b.py with a DINOv2 ViT-L/14 encoder (docs/vfm.md):
# configs/hrda/gta2cs_dinov2_l.py plus MIC's masked image consistency.
_base_ = ['../hrda/gta2cs_dinov2_l.py']
model = dict(alpha=0.999, pseudo_threshold=0.968, mask_consistency=dict(
    mask_ratio=0.7, mask_block_size=64, loss_weight=1.0, color_augmentation=True))
