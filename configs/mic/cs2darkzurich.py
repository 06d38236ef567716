# MIC (HRDA + masked image consistency), Cityscapes -> Dark Zurich (night): hrda/cs2darkzurich.py plus
# MIC's loss on the target with 70% of its 64x64 patches dropped. For the clear-to-adverse
# pairs MIC masks the target without its color augmentation (its mask_mode 'separate').
_base_ = ['../hrda/cs2darkzurich.py']
model = dict(
    alpha=0.999,
    pseudo_threshold=0.968,
    mask_consistency=dict(
        mask_ratio=0.7, mask_block_size=64, loss_weight=1.0, color_augmentation=False))
