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
from typing import List, Optional, Sequence, Tuple

import torch
from mmseg.models.utils import resize
from mmseg.registry import MODELS
from mmseg.utils import OptSampleList, SampleList, add_prefix
from torch import Tensor

from ..decode_heads.hrda_head import Box, crop_data_samples, scale_box
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

    ``encode`` (ICCLD's) reads ``extract_feat``, HRDA's: the context view, whose backbone
    call is the ImageNet-comparable one; ``slide_inference`` and ``generate_pseudo_label``
    are HRDA's.

    Args:
        scales, hr_crop_size, hr_slide_inference, hr_slide_overlapping,
            crop_coord_divisible, feature_scale: As :class:`HRDAEncoderDecoder`.
        detail_chain: In phase 2 the detail view carries a chain of its own (eq. 2 and the
            chain loss on the detail crop's label code, a draw of its own in training, one
            chain per window at inference) instead of reading its crop of the context's
            estimate. The discriminator still reads the context's (docs/method.md 6.3).
        **kwargs: The arguments of :class:`ICCLD`; ``decode_head`` is an ``ICCLDHRHead``
            around an ``InterCoderHead``.
    """

    def __init__(self,
                 scales: Sequence[float] = (1, 0.5),
                 hr_crop_size: Sequence[int] = (512, 512),
                 hr_slide_inference: bool = True,
                 hr_slide_overlapping: bool = True,
                 crop_coord_divisible: int = 8,
                 feature_scale: float = 0.5,
                 detail_chain: bool = False,
                 **kwargs) -> None:
        super().__init__(scales=scales, hr_crop_size=hr_crop_size,
                         hr_slide_inference=hr_slide_inference,
                         hr_slide_overlapping=hr_slide_overlapping,
                         crop_coord_divisible=crop_coord_divisible,
                         feature_scale=feature_scale, **kwargs)
        if not isinstance(self.decode_head, ICCLDHRHead):
            raise TypeError(f'ICCLDHR needs an ICCLDHRHead, got '
                            f'{type(self.decode_head).__name__}')
        if crop_coord_divisible % self.mask_latent_stride:
            raise ValueError(f'crop_coord_divisible {crop_coord_divisible} must be a multiple '
                             f'of the context latent cell, {self.mask_latent_stride} pixels')
        if detail_chain and self.refine_strength is not None:
            raise ValueError('detail_chain and refine_strength do not combine: a detail '
                             'window has no decode of its own to refine')
        self.detail_chain = detail_chain

    @property
    def chain_start_head(self):
        """D of one view: a refining chain starts from the context view's own decode."""
        return self.decode_head.head

    @property
    def mask_latent_stride(self) -> int:
        """Input pixels per cell of the (context view's) mask latent."""
        return self.neck.latent_stride * self.scale_ratio

    def decoder_inputs(self, inputs: Tensor, stages: List[Tensor], image_latent: Tensor,
                       mask_estimates: Sequence[Optional[Tensor]],
                       training: bool = False) -> list:
        """``ICCLDHRHead``'s input for each mask estimate of the context view.

        The detail view (one random crop in training, the sliding windows otherwise) is
        encoded once for all estimates.

        Args:
            inputs: Images at full resolution, (N, 3, H, W).
            stages: Encoder stages of the context view.
            image_latent: z0 of the context view.
            mask_estimates: The context's m_hat0 of each draw (None: m_hat0 = 0).
            training: A training pass (a random detail crop, HRDA's draw).

        Returns:
            One dict (``context``, ``detail``, ``boxes``, ``scale_ratio``) per estimate.
        """
        boxes = ([self.training_crop_box(inputs)] if training else
                 self.detail_windows(*inputs.shape[2:]))
        detail_stages, detail_latent = self.encode_detail(inputs, boxes)
        if self.detail_chain and mask_estimates[0] is not None:
            # one chain per window, from the seeded draws of ICCLDPredictor (seed + 1)
            noise = self.diffusion.seeded_noise(detail_latent, len(mask_estimates),
                                                self.test_cfg.get('seed', 0) + 1)
            detail_masks = [self.diffusion.sample(detail_latent, draw, self.num_inference_steps)
                            for draw in noise]
        else:
            detail_masks = [None if mask is None else crop_mask_estimate(
                mask, boxes, self.mask_latent_stride, detail_latent.shape[2:],
                self.align_corners) for mask in mask_estimates]
        return [self.head_input(stages, image_latent, mask, detail_stages, detail_latent,
                                detail_mask, boxes)
                for mask, detail_mask in zip(mask_estimates, detail_masks)]

    def training_decoder_input(self, inputs: Tensor, stages: List[Tensor],
                               image_latent: Tensor, mask_estimate: Optional[Tensor],
                               data_samples: SampleList, with_ldm: bool) -> Tuple[dict, dict]:
        """D's input of a training pass; with ``detail_chain`` in phase 2 the detail crop's
        own chain and eq. 2, their losses prefixed ``detail.``.

        Args:
            inputs: Images at full resolution, (N, 3, H, W).
            stages: Encoder stages of the context view.
            image_latent: z0 of the context view.
            mask_estimate: The context's m_hat0 (None: m_hat0 = 0).
            data_samples: The pass's samples, labels at full resolution.
            with_ldm: Whether the pass computes eq. 2.

        Returns:
            The ``ICCLDHRHead`` input and the detail view's losses.
        """
        if not (self.detail_chain and mask_estimate is not None):
            return super().training_decoder_input(inputs, stages, image_latent, mask_estimate,
                                                  data_samples, with_ldm)
        box = self.training_crop_box(inputs)
        detail_stages, detail_latent = self.encode_detail(inputs, [box])
        view = self.view_diffusion(detail_latent, crop_data_samples(data_samples, box),
                                   self.diffusion.draw(detail_latent), with_ldm)
        return (self.head_input(stages, image_latent, mask_estimate, detail_stages,
                                detail_latent, self.view_mask_estimate(view), [box]),
                add_prefix(view.losses, 'detail'))

    def training_crop_box(self, inputs: Tensor) -> Box:
        """The random detail crop of a training pass (HRDA's draw)."""
        return random_crop_box(*inputs.shape[2:], self.hr_crop_size, self.crop_coord_divisible)

    def encode_detail(self, inputs: Tensor, boxes: Sequence[Box]) -> Tuple[List[Tensor], Tensor]:
        """E on the detail windows ``boxes`` of ``inputs``, all in one batch, window-major."""
        detail = torch.cat([inputs[:, :, y1:y2, x1:x2] for y1, y2, x1, x2 in boxes])
        *detail_stages, detail_latent = self.extract_unscaled_feat(detail)
        return detail_stages, detail_latent

    def head_input(self, stages: List[Tensor], image_latent: Tensor, mask: Optional[Tensor],
                   detail_stages: List[Tensor], detail_latent: Tensor,
                   detail_mask: Optional[Tensor], boxes: Sequence[Box]) -> dict:
        """``ICCLDHRHead``'s input: D's input of each view, the windows and the scale ratio."""
        return dict(context=(stages, image_latent, mask),
                    detail=(detail_stages, detail_latent, detail_mask),
                    boxes=boxes, scale_ratio=self.scale_ratio)

    def _forward(self, inputs: Tensor, data_samples: OptSampleList = None) -> Tensor:
        """Fused logits of the first noise draw on the detail grid, before resizing."""
        stages, image_latent = self.encode(inputs)
        mask = self._test_mask_estimates(stages, image_latent, num_samples=1)[0]
        head_input = self.decoder_inputs(inputs, stages, image_latent, [mask])[0]
        return self.decode_head.forward(head_input)[0]

    def encode_decode(self, inputs: Tensor, batch_img_metas: List[dict]) -> Tensor:
        """ICCLD's prediction (K DDIM steps on the context view, S draws) with HRDA's views."""
        return ICCLD.encode_decode(self, inputs, batch_img_metas)

    def extra_repr(self) -> str:
        return HRDAEncoderDecoder.extra_repr(self)
