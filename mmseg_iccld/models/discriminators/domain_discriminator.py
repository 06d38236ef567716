"""f_dis of ICCLD (paper eq. 3): tells source, mixed and target apart, patch by patch."""
from typing import Sequence

import torch.nn as nn
from mmengine.model import BaseModule
from mmseg.registry import MODELS
from mmseg.utils import OptConfigType
from torch import Tensor


@MODELS.register_module()
class DomainDiscriminator(BaseModule):
    """Strided convolutions with LeakyReLU, then one decision per patch.

    A 1x1 convolution gives the domain logits at every location of the last feature map, one
    decision per receptive-field patch (as the fully convolutional discriminators of
    AdaptSegNet and ADVENT), which gives many decisions per image and makes absolute position
    hard to use.

    No normalisation layers: each domain arrives as its own batch, and batch statistics
    would hand the discriminator the domain for free.

    Args:
        in_channels: Channels of the input (C_m).
        channels: Output channels of the stride-2 3x3 convolutions, one entry per layer.
        num_domains: Number of classes of the output (0 source, 1 mixed, 2 target).
        negative_slope: Slope of LeakyReLU.
        init_cfg: mmengine initialisation config.
    """

    def __init__(self,
                 in_channels: int,
                 channels: Sequence[int] = (64, 128, 256),
                 num_domains: int = 3,
                 negative_slope: float = 0.2,
                 init_cfg: OptConfigType = None):
        super().__init__(init_cfg=init_cfg)
        layers = []
        for out_channels in channels:
            layers += [
                nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=2, padding=1),
                nn.LeakyReLU(negative_slope, inplace=True),
            ]
            in_channels = out_channels
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Conv2d(in_channels, num_domains, kernel_size=1)

    def forward(self, inputs: Tensor) -> Tensor:
        """Classify the domain of each patch of each map.

        Args:
            inputs: (N, C_m, h, w), the chain's mask estimate.

        Returns:
            Domain logits, (N, num_domains, h', w').
        """
        return self.classifier(self.features(inputs))
