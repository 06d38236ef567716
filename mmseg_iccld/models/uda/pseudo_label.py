"""DACS pseudo-labels: the teacher's argmax and one confidence weight per batch.

As in DACS and DAFormer, the weight of every pseudo-labelled pixel is the same scalar: the
fraction of the batch's pixels whose maximum softmax probability reaches the threshold.
Pixels on the pseudo-label margins (rows and columns of the crop where rectification and
ego-vehicle artefacts make the teacher unreliable) get weight 0.

Under distributed data parallel training the batch is the union of the ranks' batches, so the
fraction is counted over all of them (one ``all_reduce`` of two counts): every rank weighs its
pseudo-labels with the value a single process would compute on the whole batch.
"""
from typing import Sequence, Tuple

import torch
import torch.distributed as dist
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
