"""DAFormer's decoder with context-aware feature fusion (Hoyer et al., CVPR 2022, sec. 3.2).

Each encoder stage is embedded by a linear layer over channels, brought to the resolution of
the first (stride-4) stage, and the concatenation is fused by a depthwise-separable ASPP
without a pooling branch (dilations 1, 6, 12, 18), whose branches are joined by a 3x3
bottleneck.
"""
from typing import List, Sequence, Tuple, Union

import torch
import torch.nn as nn
from mmcv.cnn import ConvModule
from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from mmseg.models.decode_heads.sep_aspp_head import DepthwiseSeparableASPPModule
from mmseg.models.utils import resize
from mmseg.registry import MODELS
from torch import Tensor


@MODELS.register_module()
class DAFormerHead(BaseDecodeHead):
    """DAFormer's context-aware fusion decoder.

    Args:
        in_channels: Channels of the selected encoder stages, e.g. ``[64, 128, 320, 512]``
            for MiT-B5.
        channels: Channels of the fused feature fed to the classifier (DAFormer: 256).
        embed_dims: Channels each stage is embedded to; one int for all stages or one per
            stage (DAFormer: 256).
        dilations: Dilations of the fusion ASPP branches; dilation 1 is a 1x1 conv, the
            others are depthwise-separable 3x3 convs (DAFormer: ``(1, 6, 12, 18)``).
        **kwargs: ``BaseDecodeHead`` arguments (``num_classes``, ``in_index``,
            ``dropout_ratio``, ``norm_cfg``, ``act_cfg``, ``align_corners``,
            ``loss_decode``, ...). ``input_transform`` is always ``'multiple_select'``.
    """

    def __init__(self,
                 in_channels: Sequence[int],
                 channels: int,
                 embed_dims: Union[int, Sequence[int]] = 256,
                 dilations: Sequence[int] = (1, 6, 12, 18),
                 **kwargs) -> None:
        if kwargs.setdefault('input_transform', 'multiple_select') != 'multiple_select':
            raise ValueError('DAFormerHead reads several stages: input_transform must be '
                             f"'multiple_select', got {kwargs['input_transform']!r}")
        super().__init__(in_channels, channels, **kwargs)
        if isinstance(embed_dims, int):
            embed_dims = [embed_dims] * len(self.in_channels)
        if len(embed_dims) != len(self.in_channels):
            raise ValueError(f'embed_dims has {len(embed_dims)} entries for '
                             f'{len(self.in_channels)} input stages')
        self.embed_dims = list(embed_dims)

        # A 1x1 conv is DAFormer's per-pixel linear layer; nn.Conv2d and nn.Linear share
        # their default initialisation, so the embedding starts out as DAFormer's does.
        self.embed_layers = nn.ModuleList(
            nn.Conv2d(in_ch, dims, kernel_size=1)
            for in_ch, dims in zip(self.in_channels, self.embed_dims))
        self.fusion = DepthwiseSeparableASPPModule(
            dilations=tuple(dilations),
            in_channels=sum(self.embed_dims),
            channels=self.channels,
            conv_cfg=self.conv_cfg,
            norm_cfg=self.norm_cfg,
            act_cfg=self.act_cfg)
        self.bottleneck = ConvModule(
            len(dilations) * self.channels,
            self.channels,
            kernel_size=3,
            padding=1,
            conv_cfg=self.conv_cfg,
            norm_cfg=self.norm_cfg,
            act_cfg=self.act_cfg)

    def fuse(self, inputs: Tuple[Tensor]) -> Tensor:
        """Embed, upsample and fuse the encoder stages.

        Args:
            inputs: Backbone features, stage ``i`` of shape ``(N, C_i, H_i, W_i)``.

        Returns:
            Fused feature ``(N, channels, H_0, W_0)`` at the resolution of the first
            selected stage.
        """
        stages: List[Tensor] = self._transform_inputs(inputs)
        size = stages[0].shape[2:]
        embedded = []
        for stage, embed in zip(stages, self.embed_layers):
            x = embed(stage)
            if x.shape[2:] != size:
                x = resize(x, size=size, mode='bilinear', align_corners=self.align_corners)
            embedded.append(x)
        x = torch.cat(embedded, dim=1)
        return self.bottleneck(torch.cat(self.fusion(x), dim=1))

    def forward(self, inputs: Tuple[Tensor]) -> Tensor:
        """Segmentation logits.

        Args:
            inputs: Backbone features, stage ``i`` of shape ``(N, C_i, H_i, W_i)``.

        Returns:
            Logits ``(N, num_classes, H_0, W_0)``.
        """
        return self.cls_seg(self.fuse(inputs))
