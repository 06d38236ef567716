"""DACS's mixed batch: ClassMix of source onto pseudo-labelled target, then DAFormer's color
jitter and Gaussian blur (``docs/method.md``, 3.1, step 4), as a part of the DACS wrapper.
"""
from typing import Tuple

import torch
from mmseg.utils import SampleList
from torch import Tensor

from .classmix import class_mix, class_mix_masks, color_jitter, gaussian_blur


class ClassMixStep:
    """The mixing methods of the DACS wrapper (a mixin of :class:`~.dacs.DACS`).

    The wrapper provides ``ignore_index``, ``color_jitter_strength``,
    ``color_jitter_probability``, ``blur``, ``normalization()`` and ``build_data_samples``.
    """

    def mix(self, inputs: Tensor, data_samples: SampleList, target_inputs: Tensor,
            pseudo_labels: Tensor, pseudo_weights: Tensor) -> Tuple[Tensor, SampleList]:
        """ClassMix of source onto target, then color jitter and blur of the mixed images.

        Args:
            inputs: Source images ``(N, 3, H, W)``.
            data_samples: Source data samples with ``gt_sem_seg``.
            target_inputs: Target images ``(N, 3, H, W)``.
            pseudo_labels: Target pseudo-labels ``(N, H, W)``.
            pseudo_weights: Target pixel weights ``(N, H, W)``.

        Returns:
            tuple: mixed images ``(N, 3, H, W)`` and data samples with ``gt_sem_seg`` and
            ``seg_weight`` (metainfo of the source samples).
        """
        labels = torch.stack([sample.gt_sem_seg.data for sample in data_samples])
        masks = class_mix_masks(labels, self.ignore_index)
        mixed_inputs, mixed_samples = self.mix_with_masks(
            masks, inputs, data_samples, target_inputs, pseudo_labels, pseudo_weights)
        return self.photometric_augmentation(mixed_inputs), mixed_samples

    def mix_with_masks(self, masks: Tensor, inputs: Tensor, data_samples: SampleList,
                       target_inputs: Tensor, pseudo_labels: Tensor,
                       pseudo_weights: Tensor) -> Tuple[Tensor, SampleList]:
        """Mix images, labels and weights with given masks (source pixels weigh 1).

        Args:
            masks: ``(N, 1, H, W)``, 1 where the source pixel is kept.
            inputs, data_samples, target_inputs, pseudo_labels, pseudo_weights: As in
                :meth:`mix`.

        Returns:
            tuple: mixed images ``(N, 3, H, W)`` (not yet augmented) and data samples.
        """
        if inputs.shape[2:] != target_inputs.shape[2:]:
            raise ValueError(f'ClassMix needs source and target crops of one size, got '
                             f'{tuple(inputs.shape[2:])} and {tuple(target_inputs.shape[2:])}')
        labels = torch.stack([sample.gt_sem_seg.data for sample in data_samples])
        pseudo_weights = pseudo_weights.unsqueeze(1)
        mixed_inputs = class_mix(masks, inputs, target_inputs)
        mixed_labels = class_mix(masks, labels, pseudo_labels.unsqueeze(1).to(labels.dtype))
        mixed_weights = class_mix(masks, torch.ones_like(pseudo_weights), pseudo_weights)
        return mixed_inputs, self.build_data_samples(mixed_labels, mixed_weights, data_samples)

    def photometric_augmentation(self, images: Tensor) -> Tensor:
        """DAFormer's color jitter and Gaussian blur of normalised mixed images.

        Args:
            images: ``(N, 3, H, W)``, normalised by the data preprocessor.

        Returns:
            ``(N, 3, H, W)``.
        """
        mean, std = self.normalization()
        images = color_jitter(images, mean, std, self.color_jitter_strength,
                              self.color_jitter_probability)
        if self.blur:
            images = gaussian_blur(images)
        return images
