"""DACS pseudo-labels: the teacher's argmax and one confidence weight per batch.

As in DACS and DAFormer, the weight of every pseudo-labelled pixel is the same scalar: the
fraction of the batch's pixels whose maximum softmax probability reaches the threshold.
Pixels on the pseudo-label margins (rows and columns of the crop where rectification and
ego-vehicle artefacts make the teacher unreliable) get weight 0; so do the pixels a target
sample's ``valid_pseudo_mask`` marks 0 (HRDA's margins of the full image, made before the crop
by ``datasets/pseudo_label_margins.py``).

Under distributed data parallel training the batch is the union of the ranks' batches, so the
fraction is counted over all of them (one ``all_reduce`` of two counts): every rank weighs its
pseudo-labels with the value a single process would compute on the whole batch.
"""
from typing import Sequence, Tuple

import torch
import torch.distributed as dist
from mmseg.utils import SampleList
from torch import Tensor


def pseudo_label_from_logits(logits: Tensor, threshold: float,
                             across_ranks: bool = True) -> Tuple[Tensor, Tensor]:
    """Argmax pseudo-label and the batch's confidence weight.

    Args:
        logits: Teacher logits ``(N, C, H, W)``.
        threshold: Probability a pixel's maximum softmax must reach to count as confident
            (DAFormer: 0.968).
        across_ranks: When a process group with several ranks is initialised, count over
            the batches of all ranks. Then every rank must call this function (it is a
            collective operation), as the training step does.

    Returns:
        tuple: ``labels`` ``(N, H, W)`` long, and ``weight``, a 0-dim float tensor: the
        fraction of the ``N * H * W`` pixels (of all ranks) with ``max softmax >= threshold``.
    """
    probs = torch.softmax(logits.detach().float(), dim=1)
    max_probs, labels = probs.max(dim=1)
    confident = max_probs >= threshold
    # integer counts: the sum over ranks is exact whatever the order of the reduction
    counts = torch.stack([confident.sum(),
                          torch.tensor(confident.numel(), device=confident.device)])
    if across_ranks and dist.is_available() and dist.is_initialized() \
            and dist.get_world_size() > 1:
        dist.all_reduce(counts)
    weight = counts[0].float() / counts[1].float()
    return labels, weight


def zero_margins(weight_map: Tensor, margins: Sequence[int]) -> Tensor:
    """Zero the weight on the pseudo-label margins.

    Args:
        weight_map: Pixel weights ``(N, H, W)``; changed in place.
        margins: ``(top, bottom, left, right)`` widths in pixels of the crop.

    Returns:
        ``weight_map``.
    """
    top, bottom, left, right = margins
    if top > 0:
        weight_map[:, :top, :] = 0
    if bottom > 0:
        weight_map[:, -bottom:, :] = 0
    if left > 0:
        weight_map[:, :, :left] = 0
    if right > 0:
        weight_map[:, :, -right:] = 0
    return weight_map


def pseudo_weight_map(weight: Tensor, shape: Sequence[int],
                      margins: Sequence[int] = (0, 0, 0, 0)) -> Tensor:
    """Broadcast the scalar pseudo-label weight to every pixel and zero the margins.

    Args:
        weight: 0-dim float tensor from :func:`pseudo_label_from_logits`.
        shape: ``(N, H, W)``.
        margins: ``(top, bottom, left, right)`` widths in pixels.

    Returns:
        Pixel weights ``(N, H, W)`` float.
    """
    weight_map = weight.float() * torch.ones(tuple(shape), device=weight.device)
    return zero_margins(weight_map, margins)


def apply_valid_pseudo_masks(weight_map: Tensor, data_samples: SampleList) -> Tensor:
    """Multiply the weights by the samples' ``valid_pseudo_mask``, where they carry one.

    Args:
        weight_map: Pixel weights ``(N, H, W)``.
        data_samples: The target samples of the batch; all or none have the field.

    Returns:
        The weights, zero where a mask is 0.

    Raises:
        ValueError: When only some samples have a mask, or a mask's size is not the crop's.
    """
    has_mask = ['valid_pseudo_mask' in sample for sample in data_samples]
    if not any(has_mask):
        return weight_map
    if not all(has_mask):
        raise ValueError(f'valid_pseudo_mask in {sum(has_mask)} of {len(has_mask)} target '
                         'samples: the target pipeline makes it for all or none')
    masks = torch.stack([sample.valid_pseudo_mask.data[0] for sample in data_samples])
    if masks.shape != weight_map.shape:
        raise ValueError(f'valid_pseudo_mask {tuple(masks.shape)} does not match the pseudo-'
                         f'labels {tuple(weight_map.shape)} (padded or resized after the crop?)')
    return weight_map * masks.to(weight_map)


def pseudo_labels_and_weights(logits: Tensor, threshold: float, margins: Sequence[int],
                              data_samples: SampleList) -> Tuple[Tensor, Tensor, Tensor]:
    """DACS's pseudo-labels of a target batch from the teacher's logits, with their weights.

    Args:
        logits: Teacher logits ``(N, C, H, W)``.
        threshold: See :func:`pseudo_label_from_logits`.
        margins: ``(top, bottom, left, right)`` of the crop (:func:`zero_margins`).
        data_samples: The target samples (their ``valid_pseudo_mask``, if any).

    Returns:
        tuple: labels ``(N, H, W)`` long; pixel weights ``(N, H, W)`` float; the confident
        fraction as a 0-dim tensor.
    """
    labels, weight = pseudo_label_from_logits(logits, threshold)
    weights = pseudo_weight_map(weight, labels.shape, margins)
    return labels, apply_valid_pseudo_masks(weights, data_samples), weight
