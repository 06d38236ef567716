# ICCLD (MiT-B5 encoder, inter-coder decoder, latent projector, mask diffusion, domain discriminator),
# GTA5 -> Cityscapes, 512x512 crops, 40k phase-1 + 40k phase-2 iterations in one run.
# Paper (Table 1): 74.4 mIoU.
_base_ = [
    '../_base_/default_runtime.py',
    '../_base_/models/iccld_mitb5.py',
    '../_base_/datasets/uda_gta_to_cityscapes_512x512.py',
    '../_base_/uda/iccld.py',
    '../_base_/schedules/iccld_adamw_poly_40k+40k.py',
]
model = dict(_base_.uda, _delete_=True, model=_base_.model)
