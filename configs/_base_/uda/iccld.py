# ICCLD's two-step adaptation: DACS (every DAFormer detail, from dacs.py) for step 1, plus the
# latent diffusion and adversarial terms of step 2 (mmseg_iccld/models/uda/iccld_uda.py).
# The experiment configs wrap their ICCLD segmentor with it:
#     model = dict(_base_.uda, _delete_=True, model=_base_.model)
_base_ = ['./dacs.py']
uda = dict(
    type='ICCLDUDA',
    # f_dis reads the predicted noise of the 19-class mask latent
    discriminator=dict(type='DomainDiscriminator', in_channels=19, channels=(64, 128, 256)),
    # the target's eq. 2 and eq. 3 also train E (the method's generator is eps_theta and E)
    target_condition_grad=True)
