"""MIC's masked image consistency (Hoyer et al., CVPR 2023).

The student must predict the teacher's pseudo-label of a target image from a copy in which
most square patches are blanked out, so it learns to use the context that survives. MIC
masks the color-augmented target image with random ``mask_block_size`` patches (64 pixels
at HRDA's resolution, 32 at DAFormer's), each dropped with probability ``mask_ratio``
(0.7), and weighs the loss like the mixed loss: the pseudo-label pixel weights, times
``loss_weight`` (lambda, 1).

Patches are dropped independently (a Bernoulli draw per patch, as MIC does), so the dropped
fraction is ``mask_ratio`` in expectation. A dropped pixel is set to 0 in the normalised
image, i.e. to the data set's mean color. Randomness uses torch's global generator, which
mmengine seeds.
"""
import math
from collections import OrderedDict
from typing import Callable, List, Optional, Tuple

import torch
from mmseg.structures import SegDataSample
from mmseg.utils import SampleList
from torch import Tensor

from .pixel_weights import weighted_data_samples


def block_mask(batch_size: int, height: int, width: int, block_size: int, ratio: float,
               device: Optional[torch.device] = None,
               generator: Optional[torch.Generator] = None) -> Tensor:
    """Random patch mask: 1 where the pixel is kept, 0 where its patch is dropped.

    Patches are ``block_size x block_size`` squares on a grid anchored at the top-left
    corner; where the size is not a multiple of ``block_size`` the last row and column of
    patches are cut by the border.

    Args:
        batch_size: ``N``.
        height: ``H``.
        width: ``W``.
        block_size: Side of a patch in pixels.
        ratio: Probability that a patch is dropped.
        device: Device of the mask.
        generator: Random generator; None for torch's global one.

    Returns:
        Mask ``(N, 1, H, W)`` float.
    """
    if block_size < 1 or not 0.0 <= ratio <= 1.0:
        raise ValueError(f'need block_size >= 1 and 0 <= ratio <= 1, got {block_size}, {ratio}')
    grid = (batch_size, 1, math.ceil(height / block_size), math.ceil(width / block_size))
    keep = (torch.rand(grid, generator=generator) >= ratio).float().to(device)
    keep = keep.repeat_interleave(block_size, dim=2).repeat_interleave(block_size, dim=3)
    return keep[:, :, :height, :width]


class MaskedImageConsistency:
    """The settings and the masking step of MIC, used by the DACS wrapper.

    Args:
        mask_ratio: Probability that a patch is dropped (MIC: 0.7).
        mask_block_size: Patch side in pixels (MIC: 64 at HRDA's 1024x1024 crops, 32 at
            DAFormer's 512x512 crops).
        loss_weight: Lambda, the factor of every loss term of the masked image (MIC: 1).
        color_augmentation: Whether the target is color-jittered and blurred (the DACS
            wrapper's photometric augmentation) before masking (MIC: True,
            ``mask_mode='separatetrgaug'``).
    """

    def __init__(self, mask_ratio: float = 0.7, mask_block_size: int = 64,
                 loss_weight: float = 1.0, color_augmentation: bool = True) -> None:
        if not 0.0 <= mask_ratio <= 1.0:
            raise ValueError(f'mask_ratio must be in [0, 1], got {mask_ratio}')
        if mask_block_size < 1:
            raise ValueError(f'mask_block_size must be >= 1, got {mask_block_size}')
        self.mask_ratio = mask_ratio
        self.mask_block_size = int(mask_block_size)
        self.loss_weight = loss_weight
        self.color_augmentation = color_augmentation

    def mask_images(self, images: Tensor) -> Tensor:
        """Blank out random patches of normalised images.

        Args:
            images: ``(N, C, H, W)``, normalised (0 is the mean color).

        Returns:
            ``(N, C, H, W)``: the images times a :func:`block_mask`.
        """
        n, _, h, w = images.shape
        mask = block_mask(n, h, w, self.mask_block_size, self.mask_ratio, images.device)
        return images * mask.to(images.dtype)

    def masked_batch(self, target_inputs: Tensor, target_data_samples: SampleList,
                     pseudo_labels: Tensor, pseudo_weights: Tensor,
                     augment: Callable[[Tensor], Tensor]) -> Tuple[Tensor, List[SegDataSample]]:
        """The masked target batch and its pseudo-labelled data samples.

        Args:
            target_inputs: Target images ``(N, 3, H, W)``, normalised.
            target_data_samples: Target data samples (their metainfo is kept).
            pseudo_labels: The teacher's pseudo-labels ``(N, H, W)``.
            pseudo_weights: Their pixel weights ``(N, H, W)`` (margins 0).
            augment: The color augmentation (the DACS wrapper's photometric augmentation),
                applied first when ``color_augmentation`` is on.

        Returns:
            tuple: masked images ``(N, 3, H, W)`` and data samples with ``gt_sem_seg`` and
            ``seg_weight``.
        """
        images = augment(target_inputs) if self.color_augmentation else target_inputs
        samples = weighted_data_samples(pseudo_labels.unsqueeze(1), pseudo_weights.unsqueeze(1),
                                        target_data_samples)
        return self.mask_images(images), samples

    def weigh(self, losses: dict) -> dict:
        """Multiply every loss term (keys containing ``'loss'``) by ``loss_weight``.

        Args:
            losses: The student's losses on the masked batch.

        Returns:
            The weighted losses; other entries (accuracies) unchanged.
        """
        return OrderedDict((k, v * self.loss_weight if 'loss' in k else v)
                           for k, v in losses.items())

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(mask_ratio={self.mask_ratio}, '
                f'mask_block_size={self.mask_block_size}, loss_weight={self.loss_weight}, '
                f'color_augmentation={self.color_augmentation})')
