"""ICCLD's decoder D with inter-coder (long skip) connections.

D joins every encoder stage top-down (stride 32 -> 16 -> 8 -> 4); the last join also reads
the image latent z0 and the mask latent m_hat0. The four decoder levels are fused with
DAFormer's context recipe: concatenated at stride 4, a depthwise-separable ASPP (dilations
1, 6, 12, 18) and a 3x3 bottleneck (Hoyer et al., DAFormer, CVPR 2022).

The projection of m_hat0 starts at zero and has no bias, so the head computes the same
function for any m_hat0 until training moves it: phase 2 of ICCLD starts exactly at the
phase-1 model.
"""
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
from mmcv.cnn import (ConvModule, DepthwiseSeparableConvModule, build_activation_layer,
                      build_norm_layer)
from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from mmseg.models.decode_heads.sep_aspp_head import DepthwiseSeparableASPPModule
from mmseg.models.utils import resize
from mmseg.registry import MODELS
from mmseg.utils import SampleList
from torch import Tensor

from ..losses.pixel_weighted import loss_by_feat_weighted


@MODELS.register_module()
class InterCoderHead(BaseDecodeHead):
    """D: decoder reading the encoder stages (long skips), z0 and the mask latent.

    Args:
        latent_channels: C_z, channels of the image latent z0.
        mask_channels: C_m, channels of the mask latent; defaults to ``num_classes``.
        dilations: Dilations of the context (ASPP) branches.
        **kwargs: ``BaseDecodeHead`` arguments (in_channels of the four stages, channels,
            num_classes, dropout_ratio, norm_cfg, align_corners, loss_decode, ...).
    """

    # loss_by_feat multiplies the data samples' ``seg_weight`` into the loss (docs 3.2)
    supports_seg_weight = True

    def __init__(self,
                 latent_channels: int = 256,
                 mask_channels: Optional[int] = None,
                 dilations: Sequence[int] = (1, 6, 12, 18),
                 **kwargs):
        kwargs.setdefault('in_index', [0, 1, 2, 3])
        super().__init__(input_transform='multiple_select', **kwargs)
        if len(self.in_channels) != 4:
            raise ValueError(f'expected 4 encoder stages, got {len(self.in_channels)}')
        mask_channels = mask_channels or self.num_classes
        conv_args = dict(conv_cfg=self.conv_cfg, norm_cfg=self.norm_cfg, act_cfg=self.act_cfg)

        self.stage_embeds = nn.ModuleList(
            ConvModule(c, self.channels, kernel_size=1, **conv_args) for c in self.in_channels)
        # skip_joins[i] joins stage i with the decoder path coming down from stage i + 1;
        # the stride-4 join (i = 0) also takes the latents
        self.skip_joins = nn.ModuleList(
            DepthwiseSeparableConvModule(
                (3 if i == 0 else 2) * self.channels, self.channels, kernel_size=3, padding=1,
                **conv_args) for i in range(len(self.in_channels) - 1))

        # D reads z0 ++ m_hat0: one linear map split in its z0 and m_hat0 columns
        use_bias = self.norm_cfg is None
        self.image_latent_proj = nn.Conv2d(
            latent_channels, self.channels, kernel_size=1, bias=use_bias)
        self.mask_latent_proj = nn.Conv2d(mask_channels, self.channels, kernel_size=1, bias=False)
        nn.init.zeros_(self.mask_latent_proj.weight)
        self.latent_norm = (
            build_norm_layer(self.norm_cfg, self.channels)[1]
            if self.norm_cfg is not None else nn.Identity())
        self.latent_act = build_activation_layer(self.act_cfg)

        self.context = DepthwiseSeparableASPPModule(
            dilations=tuple(dilations),
            in_channels=len(self.in_channels) * self.channels,
            channels=self.channels,
            **conv_args)
        self.bottleneck = ConvModule(
            len(dilations) * self.channels, self.channels, kernel_size=3, padding=1,
            **conv_args)

    def init_weights(self) -> None:
        """Initialise as configured; the m_hat0 projection is always reset to zero."""
        super().init_weights()
        nn.init.zeros_(self.mask_latent_proj.weight)

    def forward(self,
                inputs: Sequence[Tensor],
                image_latent: Tensor,
                mask_latent: Optional[Tensor] = None) -> Tensor:
        """Decode segmentation logits.

        Args:
            inputs: Encoder stages, (N, C_i, H / s_i, W / s_i) for s_i = 4, 8, 16, 32.
            image_latent: z0, (N, C_z, h, w) at the latent stride.
            mask_latent: m_hat0, (N, C_m, h, w); None reads as m_hat0 = 0 (phase 1).

        Returns:
            Logits, (N, num_classes, H / 4, W / 4).
        """
        stages = self._transform_inputs(inputs)
        embeds = [embed(x) for embed, x in zip(self.stage_embeds, stages)]
        size = embeds[0].shape[2:]
        latent = self.image_latent_proj(image_latent)
        if mask_latent is not None:
            latent = latent + self.mask_latent_proj(mask_latent)
        latent = self.latent_act(self.latent_norm(self._resize(latent, size)))

        # top-down inter-coder path: stride 32 -> 16 -> 8 -> 4
        levels = [embeds[-1]]
        for i in range(len(embeds) - 2, -1, -1):
            parts = [self._resize(levels[0], embeds[i].shape[2:]), embeds[i]]
            if i == 0:
                parts.append(latent)
            levels.insert(0, self.skip_joins[i](torch.cat(parts, dim=1)))

        pyramid = [self._resize(level, size) for level in levels]
        context = self.context(torch.cat(pyramid, dim=1))
        return self.cls_seg(self.bottleneck(torch.cat(context, dim=1)))

    def loss(self, inputs: Tuple[Sequence[Tensor], Tensor, Optional[Tensor]],
             batch_data_samples: SampleList, train_cfg: dict) -> dict:
        """Forward and compute the losses.

        Args:
            inputs: (encoder stages, z0, m_hat0), as ``forward`` takes them.
            batch_data_samples: Samples with ``gt_sem_seg`` and optionally ``seg_weight``.
            train_cfg: Unused; kept for mmseg's interface.

        Returns:
            Loss components ``loss_ce`` (or the configured names) and ``acc_seg``.
        """
        return self.loss_by_feat(self.forward(*inputs), batch_data_samples)

    def predict(self, inputs: Tuple[Sequence[Tensor], Tensor, Optional[Tensor]],
                batch_img_metas: List[dict], test_cfg: dict) -> Tensor:
        """Forward and resize the logits to the input image.

        Args:
            inputs: (encoder stages, z0, m_hat0), as ``forward`` takes them.
            batch_img_metas: Image meta information.
            test_cfg: Unused; kept for mmseg's interface.

        Returns:
            Logits, (N, num_classes, H, W).
        """
        return self.predict_by_feat(self.forward(*inputs), batch_img_metas)

    def loss_by_feat(self, seg_logits: Tensor, batch_data_samples: SampleList) -> dict:
        """Eq. 1 with per-pixel weights: the configured losses times ``seg_weight``.

        With mmseg's ``CrossEntropyLoss`` (``avg_non_ignore=False``) this is exactly eq. 1,
        the weighted per-pixel cross-entropy divided by the number of pixels.

        Args:
            seg_logits: Output of ``forward``, (N, num_classes, h, w).
            batch_data_samples: Samples with ``gt_sem_seg`` and optionally ``seg_weight``.

        Returns:
            Loss components and ``acc_seg``.
        """
        return loss_by_feat_weighted(self, seg_logits, batch_data_samples)

    def _resize(self, x: Tensor, size: Sequence[int]) -> Tensor:
        if tuple(x.shape[2:]) == tuple(size):
            return x
        return resize(x, size=size, mode='bilinear', align_corners=self.align_corners)
