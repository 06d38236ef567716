"""Per-pixel loss weights for mmseg 1.x decode heads.

DACS weights every pseudo-labelled pixel by the teacher's confidence (and zeroes the
pseudo-label margins). mmseg 1.x's ``BaseDecodeHead.loss_by_feat`` has no way to receive such
a weight, so a data sample carries it as ``seg_weight`` (``PixelData``, data ``(1, H, W)``
float, aligned with ``gt_sem_seg``) and :func:`loss_by_feat_weighted` multiplies it in.
:func:`bind_pixel_weighted_loss` installs that function on the decode heads of a segmentor.

The losses keep mmseg's reduction: with ``avg_non_ignore=False`` (the default, as DAFormer)
the mean divides by the number of pixels, not by the sum of weights.
"""
import types
from typing import List, Optional

import torch
import torch.nn as nn
from mmengine.structures import PixelData
from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from mmseg.models.utils import resize
from mmseg.structures import SegDataSample
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
                'on the class (see mmseg_iccld/models/losses/pixel_weighted.py).')
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
