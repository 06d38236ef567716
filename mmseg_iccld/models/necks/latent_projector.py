"""ICCLD's latent projector: the part of E after the backbone, fusing its stages into z0."""
import math
from typing import List, Sequence

import torch
import torch.nn as nn
from mmcv.cnn import ConvModule
from mmengine.model import BaseModule
from mmseg.models.utils import resize
from mmseg.registry import MODELS
from mmseg.utils import ConfigType, OptConfigType
from torch import Tensor


@MODELS.register_module()
class LatentProjector(BaseModule):
    """z0 = fuse(cat_i resize(embed_i(stage_i))) on the grid of one backbone stage.

    A neck as mmseg has them: ``extract_feat`` applies it to the backbone's stages and it
    returns them with z0 appended, so the decoder reads the stages as long skips and z0.

    Args:
        in_channels: Channels of the backbone stages (strides 4, 8, 16, 32).
        latent_channels: C_z, channels of z0.
        latent_stride: Stride of the latent grid, one of the backbone strides.
        norm_cfg: Norm of the fusion layer.
        act_cfg: Activation of the fusion layer.
        align_corners: ``align_corners`` of the resizing.
        init_cfg: mmengine initialisation config.
    """

    def __init__(self,
                 in_channels: Sequence[int],
                 latent_channels: int = 256,
                 latent_stride: int = 4,
                 norm_cfg: OptConfigType = dict(type='BN', requires_grad=True),
                 act_cfg: ConfigType = dict(type='ReLU'),
                 align_corners: bool = False,
                 init_cfg: OptConfigType = None):
        super().__init__(init_cfg=init_cfg)
        if len(in_channels) != 4:
            raise ValueError(f'expected 4 backbone stages, got {len(in_channels)}')
        if latent_stride not in (4, 8, 16, 32):
            raise ValueError(f'latent_stride must be a backbone stride, got {latent_stride}')
        self.latent_channels = latent_channels
        self.latent_stride = latent_stride
        self.latent_index = int(math.log2(latent_stride)) - 2
        self.align_corners = align_corners
        self.stage_embeds = nn.ModuleList(
            nn.Conv2d(c, latent_channels, kernel_size=1) for c in in_channels)
        self.fuse = ConvModule(
            latent_channels * len(in_channels),
            latent_channels,
            kernel_size=1,
            norm_cfg=norm_cfg,
            act_cfg=act_cfg)

    def forward(self, inputs: Sequence[Tensor]) -> List[Tensor]:
        """The backbone stages and z0.

        Args:
            inputs: Backbone stages, (N, C_i, H / s_i, W / s_i) for s_i = 4, 8, 16, 32.

        Returns:
            The four stages, then z0 (N, C_z, h, w) on the grid of the stage with stride
            ``latent_stride`` (MiT rounds up: ``ceil(H / 4)``).
        """
        size = inputs[self.latent_index].shape[2:]
        embeds = [
            resize(embed(x), size=size, mode='bilinear', align_corners=self.align_corners)
            for embed, x in zip(self.stage_embeds, inputs)
        ]
        return [*inputs, self.fuse(torch.cat(embeds, dim=1))]
