"""Pseudo-label margins on the full target image, before its crop (HRDA).

DAFormer zeroes the pseudo-label weight on fixed rows of every 512x512 crop (``DACS``'s
``pseudo_margins``). HRDA marks the rectification border and the ego-vehicle hood on the whole
resized 2048x1024 target *before* the 1024x1024 crop, so a crop loses pseudo-labels only where
it touches the image border. :class:`PseudoLabelMargins` makes that mask in the target
pipeline (as a segmentation field, so the crop and the flip move it with the image) and
:class:`PackUDATargetInputs` hands it to the UDA wrapper as the data sample field
``valid_pseudo_mask``, which multiplies the pseudo-label weights.
"""
from typing import Sequence

import numpy as np
import torch
from mmcv.transforms import BaseTransform
from mmengine.structures import PixelData
from mmseg.datasets.transforms import PackSegInputs
from mmseg.registry import TRANSFORMS

MASK_KEY = 'valid_pseudo_mask'


@TRANSFORMS.register_module()
class PseudoLabelMargins(BaseTransform):
    """Add ``valid_pseudo_mask``: 0 on the margins of the image as it is now, 1 elsewhere.

    Place it after the ``Resize`` and before the crop of a target pipeline; the mask joins
    ``seg_fields``, which mmseg's ``RandomCrop`` and ``RandomFlip`` transform with the image.

    Required Keys: ``img``. Added Keys: ``valid_pseudo_mask`` ``(H, W)`` uint8,
    ``seg_fields``.

    Args:
        margins: ``(top, bottom, left, right)`` widths in pixels of the (resized) image.
            HRDA on Cityscapes at 2048x1024: ``(30, 240, 30, 30)``.
    """

    def __init__(self, margins: Sequence[int]) -> None:
        if len(margins) != 4 or min(margins) < 0:
            raise ValueError(f'margins is (top, bottom, left, right) >= 0, got {margins!r}')
        self.margins = tuple(int(m) for m in margins)

    def transform(self, results: dict) -> dict:
        """Add the mask of the image in ``results``.

        Args:
            results: Result dict with ``img``.

        Returns:
            ``results`` with ``valid_pseudo_mask`` in it and in ``seg_fields``.
        """
        height, width = results['img'].shape[:2]
        top, bottom, left, right = self.margins
        if top + bottom >= height or left + right >= width:
            raise ValueError(f'pseudo-label margins {self.margins} leave nothing of a '
                             f'{height}x{width} image ({results.get("img_path")})')
        mask = np.zeros((height, width), dtype=np.uint8)
        mask[top:height - bottom, left:width - right] = 1
        results[MASK_KEY] = mask
        fields = results.setdefault('seg_fields', [])
        if MASK_KEY not in fields:
            fields.append(MASK_KEY)
        return results

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(margins={self.margins})'


@TRANSFORMS.register_module()
class PackUDATargetInputs(PackSegInputs):
    """mmseg's ``PackSegInputs``, plus ``valid_pseudo_mask`` (``PixelData`` ``(1, H, W)``
    float) in the data sample when the pipeline made one. Arguments are those of
    ``PackSegInputs``."""

    def transform(self, results: dict) -> dict:
        packed = super().transform(results)
        if MASK_KEY in results:
            mask = torch.from_numpy(np.ascontiguousarray(results[MASK_KEY]))[None].float()
            packed['data_samples'].set_data({MASK_KEY: PixelData(data=mask)})
        return packed
