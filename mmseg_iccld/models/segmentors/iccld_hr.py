"""ICCLD at HRDA's resolution: ICCLD's phases on HRDA's context and detail views
(docs/method.md 6.3).

- E (backbone + latent projector) encodes both views: the context (the crop at
  ``context_scale``) and the detail crop (training) or sliding windows (inference) at full
  resolution.
- The mask diffusion runs on the context view only: eq. 2, the sampler's chain, its loss and
  eq. 3 read the context latent, whose cells are ``latent_stride / context_scale`` input
  pixels. One chain per image, the UNet cost of ICCLD at the context's size.
- Each detail window's D reads its crop of the context's mask estimate, brought to the
  detail latent grid: a global prior that the detail view refines, at no UNet cost.
- ``ICCLDHRHead`` decodes both views with D and fuses them with HRDA's scale attention;
  prediction uses HRDA's batched detail and outer sliding windows.
"""
from typing import List, Optional, Sequence

import torch
from mmseg.models.utils import resize
from mmseg.registry import MODELS
from torch import Tensor

from ..decode_heads.hrda_head import Box, scale_box
from ..decode_heads.iccld_hr_head import ICCLDHRHead
from .hrda_encoder_decoder import HRDAEncoderDecoder, random_crop_box
from .iccld import ICCLD


def crop_mask_estimate(mask_estimate: Tensor, boxes: Sequence[Box], stride: int,
                       size: Sequence[int], align_corners: bool = False) -> Tensor:
    """The windows' crops of a context mask estimate, resized to the detail latent grid.

    Args:
        mask_estimate: m_hat0 of the context view, ``(N, C_m, h, w)``, one cell per
            ``stride`` input pixels.
        boxes: ``K`` windows ``(y1, y2, x1, x2)`` in full-resolution input pixels, on the
            grid of ``stride``.
        stride: Input pixels per cell of ``mask_estimate``.
        size: ``(h_d, w_d)`` of a detail window's latent.
        align_corners: Of the bilinear resizing.

    Returns:
        ``(K * N, C_m, h_d, w_d)``, window-major (the detail batch's order).
    """
    crops = []
    for box in boxes:
        y1, y2, x1, x2 = scale_box(box, stride)
        crops.append(resize(mask_estimate[:, :, y1:y2, x1:x2], size=tuple(size),
                            mode='bilinear', align_corners=align_corners))
    return torch.cat(crops)


@MODELS.register_module()
class ICCLDHR(ICCLD, HRDAEncoderDecoder):
    """ICCLD with HRDA's multi-resolution training and inference.

    ICCLD's pass (``encode -> diffusion -> decode``) and prediction, with three named
    extensions: :meth:`decoder_inputs` adds the detail view, :attr:`mask_latent_stride` is the
    context latent's cell, and :meth:`decode_logits` fuses the views. ``encode`` reads
    ``extract_feat``, HRDA's: the context view, whose backbone call is the
    ImageNet-comparable one; ``slide_inference`` is HRDA's.

    Args:
        scales, hr_crop_size, hr_slide_inference, hr_slide_overlapping,
            crop_coord_divisible: As :class:`HRDAEncoderDecoder`.
        **kwargs: The arguments of :class:`ICCLD`; ``decode_head`` is an ``ICCLDHRHead``
            around an ``InterCoderHead``.
    """

    def __init__(self,
                 scales: Sequence[float] = (1, 0.5),
                 hr_crop_size: Sequence[int] = (512, 512),
                 hr_slide_inference: bool = True,
                 hr_slide_overlapping: bool = True,
                 crop_coord_divisible: int = 8,
                 **kwargs) -> None:
        super().__init__(scales=scales, hr_crop_size=hr_crop_size,
                         hr_slide_inference=hr_slide_inference,
                         hr_slide_overlapping=hr_slide_overlapping,
                         crop_coord_divisible=crop_coord_divisible, **kwargs)
        if not isinstance(self.decode_head, ICCLDHRHead):
            raise TypeError(f'ICCLDHR needs an ICCLDHRHead, got '
                            f'{type(self.decode_head).__name__}')
        if crop_coord_divisible % self.mask_latent_stride:
            raise ValueError(f'crop_coord_divisible {crop_coord_divisible} must be a multiple '
                             f'of the context latent cell, {self.mask_latent_stride} pixels')

    @property
    def mask_latent_stride(self) -> int:
        """Input pixels per cell of the (context view's) mask latent."""
        return self.neck.latent_stride * self.scale_ratio

    def decoder_inputs(self, inputs: Tensor, stages: List[Tensor], image_latent: Tensor,
                       mask_estimates: Sequence[Optional[Tensor]],
                       training: bool = False) -> list:
        """``ICCLDHRHead``'s input for each mask estimate of the context view.

        The detail view (one random crop in training, the sliding windows otherwise) is
        encoded once for all estimates; each window's D reads its crop of the context's
        estimate (:func:`crop_mask_estimate`).

        Args:
            inputs: Images at full resolution, (N, 3, H, W).
            stages: Encoder stages of the context view.
            image_latent: z0 of the context view.
            mask_estimates: The context's m_hat0 of each draw (None: m_hat0 = 0).
            training: A training pass (a random detail crop, HRDA's draw).

        Returns:
            One dict (``context``, ``detail``, ``boxes``, ``scale_ratio``) per estimate.
        """
        boxes = ([random_crop_box(*inputs.shape[2:], self.hr_crop_size,
                                  self.crop_coord_divisible)] if training else
                 self.detail_windows(*inputs.shape[2:]))
        detail = torch.cat([inputs[:, :, y1:y2, x1:x2] for y1, y2, x1, x2 in boxes])
        *detail_stages, detail_latent = self.extract_unscaled_feat(detail)
        head_inputs = []
        for mask in mask_estimates:
            detail_mask = None if mask is None else crop_mask_estimate(
                mask, boxes, self.mask_latent_stride, detail_latent.shape[2:],
                self.align_corners)
            head_inputs.append(dict(context=(stages, image_latent, mask),
                                    detail=(detail_stages, detail_latent, detail_mask),
                                    boxes=boxes, scale_ratio=self.scale_ratio))
        return head_inputs

    def decode_logits(self, head_input: dict) -> Tensor:
        """Fused logits of both views on the detail grid, before resizing."""
        return self.decode_head.forward(head_input)[0]

    def extra_repr(self) -> str:
        return HRDAEncoderDecoder.extra_repr(self)
