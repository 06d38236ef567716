# MIC (HRDA + masked image consistency), Cityscapes -> Dark Zurich (night):
# hrda/cs2darkzurich.py plus MIC's loss on the target with 70% of its 64x64 patches dropped,
# without color augmentation. MIC's own runs for the clear-to-adverse pairs
# (seg/experiments.py, id 80) use mask_mode 'separate': the first source and the first
# target image of the batch, masked without color augmentation. The masking here covers the
# target batch only, so this is MIC's 'separatetrg' (target only, no color augmentation).
_base_ = ['../hrda/cs2darkzurich.py']
model = dict(
    alpha=0.999,
    pseudo_threshold=0.968,
    mask_consistency=dict(
        mask_ratio=0.7, mask_block_size=64, loss_weight=1.0, color_augmentation=False))
