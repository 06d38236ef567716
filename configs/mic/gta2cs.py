# MIC (HRDA + masked image consistency), GTA5 -> Cityscapes: configs/hrda/gta2cs.py plus
# MIC's loss on the color-augmented target with 70% of its 64x64 patches dropped, against the
# teacher's pseudo-label. Paper: 75.9 mIoU.
_base_ = ['../hrda/gta2cs.py']
model = dict(
    # MIC shares DAFormer's teacher and pseudo-labels (mask_alpha / threshold 'same')
    alpha=0.999,
    pseudo_threshold=0.968,
    mask_consistency=dict(
        mask_ratio=0.7, mask_block_size=64, loss_weight=1.0, color_augmentation=True))
