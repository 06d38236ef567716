# ICCLD's two-phase adaptation: DACS (every DAFormer detail, from dacs.py) for phase 1, plus the
# latent diffusion and adversarial terms of phase 2 (mmseg_iccld/models/uda/iccld_uda.py).
# The experiment configs wrap their ICCLD segmentor with it:
#     model = dict(_base_.uda, _delete_=True, model=_base_.model)
_base_ = ['./dacs.py']
uda = dict(
    type='ICCLDUDA',
    # f_dis reads the chain's 19-class mask estimate (sample space) and decides per patch
    discriminator=dict(type='DomainDiscriminator', in_channels=19, channels=(64, 128, 256)),
    # the rectification border and ego-vehicle rows of a Cityscapes crop (DAFormer's
    # pseudo-label margins) are a fixed cue of the target domain, not a shift to align
    adv_margins=(15, 120, 0, 0),
    # the target's eq. 2 and eq. 3 also train E (the method's generator is eps_theta and E)
    target_condition_grad=True)
