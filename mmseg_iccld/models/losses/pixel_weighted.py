"""Per-pixel loss weights for mmseg 1.x decode heads.

DACS weights every pseudo-labelled pixel by the teacher's confidence (and zeroes the
pseudo-label margins). mmseg 1.x's ``BaseDecodeHead.loss_by_feat`` has no way to receive such
a weight, so a data sample carries it as ``seg_weight`` (``PixelData``, data ``(1, H, W)``
float, aligned with ``gt_sem_seg``) and :func:`loss_by_feat_weighted` multiplies it in.
The UDA wrappers install it on their segmentors' decode heads and build the weighted samples
(``models/uda/pixel_weights.py``).

The losses keep mmseg's reduction: with ``avg_non_ignore=False`` (the default, as DAFormer)
the mean divides by the number of pixels, not by the sum of weights.
"""
from typing import Optional

import torch
import torch.nn as nn
from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from mmseg.models.utils import resize
from mmseg.utils import SampleList
from torch import Tensor


def stack_seg_weight(batch_data_samples: SampleList, like: Tensor) -> Optional[Tensor]:
    """Stack the ``seg_weight`` of a batch, or return None when no sample has one.

    Args:
        batch_data_samples: The batch's data samples.
        like: Stacked labels ``(N, 1, H, W)``; gives the shape and device.

    Returns:
        Weights ``(N, H, W)`` float (1 for samples without ``seg_weight``), or None.
    """
    if not any('seg_weight' in sample for sample in batch_data_samples):
        return None
    weights = []
    for sample, label in zip(batch_data_samples, like):
        if 'seg_weight' in sample:
            weight = sample.seg_weight.data.to(device=like.device, dtype=torch.float32)
            if weight.shape != label.shape:
                raise ValueError(f'seg_weight has shape {tuple(weight.shape)}, but gt_sem_seg '
                                 f'has {tuple(label.shape)}; they must be aligned.')
        else:
            weight = torch.ones(label.shape, device=like.device)
        weights.append(weight)
    return torch.stack(weights).squeeze(1)


def pixel_accuracy(seg_logits: Tensor, seg_label: Tensor, ignore_index: int = 255) -> Tensor:
    """mmseg's top-1 ``accuracy`` (percent of the non-ignored pixels), without host reads.

    mmseg selects the valid pixels by boolean indexing, which waits for the device twice per
    call on a GPU; counting them with a mask gives the same number (the same float32 sum of
    hits plus eps, times ``100 / (valid + eps)`` computed in double) and never synchronises.

    Args:
        seg_logits: ``(N, C, H, W)``.
        seg_label: ``(N, H, W)``.
        ignore_index: Label of the pixels that do not count.

    Returns:
        ``(1, )`` float32, as mmseg's ``accuracy``.
    """
    if seg_logits.size(0) == 0:
        return seg_logits.new_zeros(1)
    valid = seg_label != ignore_index
    correct = (seg_logits.argmax(dim=1) == seg_label) & valid
    eps = torch.finfo(torch.float32).eps
    hits = correct.flatten().float().sum(0, keepdim=True) + eps
    return hits * (100.0 / (valid.sum().double() + eps)).float()


def loss_by_feat_weighted(head: BaseDecodeHead, seg_logits: Tensor,
                          batch_data_samples: SampleList) -> dict:
    """``BaseDecodeHead.loss_by_feat`` with the per-pixel ``seg_weight`` multiplied in.

    Identical to mmseg's computation when no sample carries ``seg_weight``. A head's pixel
    sampler (OHEM) still applies; its weight is multiplied by ``seg_weight``.

    Args:
        head: The decode head (this function is bound to it as ``loss_by_feat``).
        seg_logits: Head output ``(N, C, h, w)``.
        batch_data_samples: Data samples with ``gt_sem_seg`` and optionally ``seg_weight``.

    Returns:
        dict[str, Tensor]: The head's losses (by ``loss_name``) and ``acc_seg``.
    """
    seg_label = head._stack_batch_gt(batch_data_samples)
    seg_logits = resize(
        input=seg_logits,
        size=seg_label.shape[2:],
        mode='bilinear',
        align_corners=head.align_corners)
    seg_weight = stack_seg_weight(batch_data_samples, seg_label)
    if head.sampler is not None:
        sampler_weight = head.sampler.sample(seg_logits, seg_label).float()
        seg_weight = sampler_weight if seg_weight is None else seg_weight * sampler_weight
    seg_label = seg_label.squeeze(1)

    losses_decode = head.loss_decode
    if not isinstance(losses_decode, nn.ModuleList):
        losses_decode = [losses_decode]
    loss = dict()
    for loss_decode in losses_decode:
        value = loss_decode(
            seg_logits, seg_label, weight=seg_weight, ignore_index=head.ignore_index)
        if loss_decode.loss_name in loss:
            loss[loss_decode.loss_name] = loss[loss_decode.loss_name] + value
        else:
            loss[loss_decode.loss_name] = value
    loss['acc_seg'] = pixel_accuracy(seg_logits, seg_label, head.ignore_index)
    return loss
