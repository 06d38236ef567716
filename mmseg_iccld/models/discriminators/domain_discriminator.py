"""f_dis of ICCLD (paper eq. 3): tells source, mixed and target apart from predicted noise."""
from typing import Sequence

import torch.nn as nn
from mmengine.model import BaseModule
from mmseg.registry import MODELS
from mmseg.utils import OptConfigType
from torch import Tensor


@MODELS.register_module()
class DomainDiscriminator(BaseModule):
    """Strided convolutions with LeakyReLU, global average pooling and a linear classifier.

    No normalisation layers: each domain arrives as its own batch, and batch statistics
    would hand the discriminator the domain for free.

    Args:
        in_channels: Channels of the predicted noise (C_m).
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
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(in_channels, num_domains)

    def forward(self, noise_pred: Tensor) -> Tensor:
        """Classify the domain of each predicted-noise map.

        Args:
            noise_pred: eps_hat, (N, C_m, h, w).

        Returns:
            Domain logits, (N, num_domains).
        """
        return self.classifier(self.pool(self.features(noise_pred)).flatten(1))
