# ICCLD (MiT-B5 encoder, inter-coder decoder, latent projector, mask diffusion, domain
# discriminator), Cityscapes -> ACDC (fog, night, rain, snow), 512x512 crops, 40k phase-1 +
# 40k phase-2 iterations. The target has no rectification border: no pseudo-label margins
# (as HRDA and MIC for this pair). The Cityscapes border and ego-vehicle rows stay a fixed
# cue of one domain, now the source, so f_dis still does not read them (iccld.py's margins).
_base_ = [
    '../_base_/default_runtime.py',
    '../_base_/models/iccld_mitb5.py',
    '../_base_/datasets/uda_cityscapes_to_acdc_512x512.py',
    '../_base_/uda/iccld.py',
    '../_base_/schedules/iccld_adamw_poly_40k+40k.py',
]
model = dict(_base_.uda, _delete_=True, model=_base_.model, pseudo_margins=(0, 0, 0, 0))
