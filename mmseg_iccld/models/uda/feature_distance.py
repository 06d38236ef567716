"""DAFormer's ImageNet feature distance (Hoyer et al., CVPR 2022, sec. 3.3).

The student's bottleneck features are pulled towards those of a frozen copy of the
ImageNet-initialised backbone, on pixels of "thing" classes only. The label is brought to the
feature grid by a majority vote that keeps a cell only when one class (the ignore label
counting as a class) covers at least ``min_ratio`` of it.

Which of the student's backbone features are the ImageNet-comparable ones is the segmentor's
to say (:func:`capture_imnet_features`): a segmentor that encodes several views of its input
(HRDA: the context view) reports that view's backbone call to its ``imnet_feature_tap``; for
any other (a plain ``EncoderDecoder``, ``ICCLD``) they are the backbone features of the input.
"""
from contextlib import contextmanager
from typing import Iterator, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

# The attribute by which a segmentor reports its ImageNet-comparable backbone call: None, or
# while a forward pass is captured, a callable taking (backbone input, backbone output).
IMNET_FEATURE_TAP = 'imnet_feature_tap'


@contextmanager
def capture_imnet_features(segmentor: nn.Module,
                           inputs: Tensor) -> Iterator[List[Tuple[Tensor, object]]]:
    """Record the ImageNet-comparable backbone call of a forward pass on ``inputs``.

    A segmentor with an ``imnet_feature_tap`` attribute says itself which call that is, by
    passing the call's input and output to the tap. Any other segmentor's is its backbone's
    call on ``inputs`` itself, caught with a forward hook (DDP passes the student's inputs on
    unchanged).

    Args:
        segmentor: The student, unwrapped (its ``backbone`` is hooked).
        inputs: The images the forward pass receives.

    Yields:
        The list that receives ``(backbone input, backbone output)`` of each such call.
    """
    calls: List[Tuple[Tensor, object]] = []
    if hasattr(segmentor, IMNET_FEATURE_TAP):
        setattr(segmentor, IMNET_FEATURE_TAP, lambda x, features: calls.append((x, features)))
        try:
            yield calls
        finally:
            setattr(segmentor, IMNET_FEATURE_TAP, None)
        return

    def of_the_input(module: nn.Module, args: tuple, output) -> None:
        if args and args[0] is inputs:
            calls.append((args[0], output))

    handle = segmentor.backbone.register_forward_hook(of_the_input)
    try:
        yield calls
    finally:
        handle.remove()


def downscale_label_ratio(label: Tensor, scale_factor: int, min_ratio: float, num_classes: int,
                          ignore_index: int = 255) -> Tensor:
    """Downscale a label map by a majority vote over ``scale_factor x scale_factor`` cells.

    Args:
        label: Labels ``(N, 1, H, W)`` with values in ``[0, num_classes)`` or ``ignore_index``.
        scale_factor: Side of a cell, in pixels (``H // h``).
        min_ratio: Fraction of the cell the majority class must cover; below it the cell is
            ``ignore_index``.
        num_classes: Number of classes.
        ignore_index: Label of ignored pixels. It takes part in the vote as one more class,
            and a cell it wins is ``ignore_index``.

    Returns:
        Labels ``(N, 1, H // scale_factor, W // scale_factor)`` long.
    """
    if label.dim() != 4 or label.shape[1] != 1:
        raise ValueError(f'label must be (N, 1, H, W), got {tuple(label.shape)}')
    if scale_factor < 1:
        raise ValueError(f'scale_factor must be >= 1, got {scale_factor}')
    ignore_class = num_classes  # one extra one-hot channel for ignored pixels
    label = label.squeeze(1).long()
    label = torch.where(label == ignore_index, torch.full_like(label, ignore_class), label)
    one_hot = F.one_hot(label, num_classes + 1).permute(0, 3, 1, 2).float()
    class_ratio = F.avg_pool2d(one_hot, kernel_size=scale_factor)
    ratio, small = class_ratio.max(dim=1, keepdim=True)
    small[small == ignore_class] = ignore_index
    small[ratio < min_ratio] = ignore_index
    return small


def class_mask(label: Tensor, classes: Sequence[int]) -> Tensor:
    """Pixels whose label is one of ``classes``.

    Args:
        label: Labels ``(N, 1, h, w)``.
        classes: Class ids.

    Returns:
        Mask ``(N, 1, h, w)`` bool.
    """
    classes = torch.as_tensor(list(classes), device=label.device, dtype=label.dtype)
    return torch.isin(label, classes)


def masked_feature_distance(features: Tensor, reference: Tensor,
                            mask: Optional[Tensor] = None) -> Tensor:
    """Mean over masked pixels of the L2 norm of the feature difference.

    Args:
        features: Student features ``(N, C, h, w)``.
        reference: Frozen features ``(N, C, h, w)``.
        mask: Pixels to average over, ``(N, 1, h, w)`` or ``(N, h, w)`` bool; None for all.

    Returns:
        0-dim tensor. An empty mask gives 0 (DAFormer's ``mean`` of nothing is NaN) and keeps
        the graph to ``features``, so the backward pass is the same in every iteration.
    """
    distance = torch.norm(features - reference, p=2, dim=1)
    if mask is None:
        return distance.mean()
    mask = mask.reshape(distance.shape).to(distance.dtype)
    return (distance * mask).sum() / mask.sum().clamp(min=1)


def feature_distance_loss(features: Tensor, reference: Tensor, label: Tensor,
                          classes: Optional[Sequence[int]], min_ratio: float,
                          num_classes: int, ignore_index: int = 255) -> Tensor:
    """DAFormer's thing-class feature distance (without the lambda factor).

    Args:
        features: Student's last backbone feature ``(N, C, h, w)``.
        reference: Frozen backbone's last feature ``(N, C, h, w)``.
        label: Source labels ``(N, 1, H, W)``; ``H`` is a multiple of ``h``.
        classes: Classes whose pixels count (DAFormer: the Cityscapes things
            ``[6, 7, 11, ..., 18]``); None for every pixel.
        min_ratio: Majority ratio of :func:`downscale_label_ratio` (DAFormer: 0.75).
        num_classes: Number of classes.
        ignore_index: Label of ignored pixels.

    Returns:
        0-dim tensor.
    """
    if classes is None:
        return masked_feature_distance(features, reference)
    scale_factor = label.shape[-1] // features.shape[-1]
    small = downscale_label_ratio(label, scale_factor, min_ratio, num_classes, ignore_index)
    if small.shape[-2:] != features.shape[-2:]:
        raise ValueError(
            f'cannot align the label {tuple(label.shape[-2:])} with the feature grid '
            f'{tuple(features.shape[-2:])}: the crop size must be a multiple of the '
            'backbone stride')
    return masked_feature_distance(features, reference, class_mask(small, classes))
