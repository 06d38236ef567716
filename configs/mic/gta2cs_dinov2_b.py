# MIC with a DINOv2 ViT-B/14 encoder (docs/vfm.md), GTA5 -> Cityscapes: configs/hrda/
# gta2cs_dinov2_b.py plus MIC's masked image consistency as configs/mic/gta2cs.py sets it
# (70% of 64x64 blocks masked, as VFM-UDA++ masks).
_base_ = ['../hrda/gta2cs_dinov2_b.py']
model = dict(alpha=0.999, pseudo_threshold=0.968, mask_consistency=dict(
    mask_ratio=0.7, mask_block_size=64, loss_weight=1.0, color_augmentation=True))
