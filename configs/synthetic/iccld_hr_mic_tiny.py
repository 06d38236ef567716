# ICCLD-HR with MIC's masked image consistency on the generated synthetic benchmark:
# iccld_hr_tiny.py plus mic_tiny.py's masking (16x16 grid of 16-pixel patches on the 256x256
# crops); the masked pass follows ICCLD's target pass in both phases.
_base_ = ['./iccld_hr_tiny.py']
model = dict(
    mask_consistency=dict(
        mask_ratio=0.7, mask_block_size=16, loss_weight=1.0, color_augmentation=True))
