# Each module registers itself on import; add one import line per module.
from .iccld_losses import (domain_accuracy, loss_adv_discriminator, loss_adv_generator,  # noqa
                           loss_chain, loss_ldm)
from .pixel_weighted import loss_by_feat_weighted  # noqa: F401
