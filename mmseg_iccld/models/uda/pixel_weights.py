"""The UDA wrappers' side of per-pixel loss weights: decode heads made to honour
``seg_weight`` (:func:`bind_pixel_weighted_loss`), and the data samples that carry
pseudo-labels with their weights (:func:`weighted_data_samples`). The loss itself is
``models/losses/pixel_weighted.py``.
"""
import types
from typing import List

import torch.nn as nn
from mmengine.structures import PixelData
from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from mmseg.structures import SegDataSample
from mmseg.utils import SampleList
from torch import Tensor

from ..losses.pixel_weighted import loss_by_feat_weighted


def uses_stock_loss_by_feat(head: BaseDecodeHead) -> bool:
    """Whether ``head`` computes its loss with ``BaseDecodeHead.loss_by_feat``."""
    return type(head).loss_by_feat is BaseDecodeHead.loss_by_feat


def bind_pixel_weighted_loss(segmentor: nn.Module) -> List[str]:
    """Make every decode head of ``segmentor`` honour ``seg_weight``.

    Heads that use the stock ``loss_by_feat`` get :func:`loss_by_feat_weighted` bound in its
    place (on the instance, so other models are unaffected). A head with its own
    ``loss_by_feat`` must declare ``supports_seg_weight = True``; otherwise its loss would
    silently ignore the pseudo-label weight, so it is refused.

    Args:
        segmentor: Any mmseg segmentor (decode and auxiliary heads are found by type).

    Returns:
        Names (as in ``named_modules``) of the heads that were bound.

    Raises:
        TypeError: Naming a head that overrides ``loss_by_feat`` without declaring
            ``supports_seg_weight = True``.
    """
    bound = []
    for name, module in segmentor.named_modules():
        if not isinstance(module, BaseDecodeHead):
            continue
        if getattr(module, 'supports_seg_weight', False):
            continue
        if not uses_stock_loss_by_feat(module):
            raise TypeError(
                f'{type(module).__name__} ({name}) overrides loss_by_feat, so the per-pixel '
                'pseudo-label weight (data sample field "seg_weight") cannot be added to it. '
                'Honour seg_weight in its loss_by_feat and declare supports_seg_weight = True '
                'on the class (see mmseg_iccld/models/uda/pixel_weights.py).')
        module.loss_by_feat = types.MethodType(loss_by_feat_weighted, module)
        bound.append(name)
    return bound


def weighted_data_samples(labels: Tensor, weights: Tensor,
                          like: SampleList) -> List[SegDataSample]:
    """Data samples carrying labels and per-pixel weights.

    Args:
        labels: ``(N, 1, H, W)`` long, stored as ``gt_sem_seg``.
        weights: ``(N, 1, H, W)`` float, stored as ``seg_weight``.
        like: Samples whose metainfo the new ones copy.

    Returns:
        ``N`` new data samples.
    """
    samples = []
    for label, weight, sample in zip(labels, weights, like):
        new = SegDataSample(metainfo=sample.metainfo)
        new.gt_sem_seg = PixelData(data=label)
        new.seg_weight = PixelData(data=weight)
        samples.append(new)
    return samples
