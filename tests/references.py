"""Independent references the tests compare the package with."""
from typing import Optional

import torch.nn.functional as F
from torch import Tensor


def loss_seg(logits: Tensor,
             label: Tensor,
             weight: Optional[Tensor] = None,
             ignore_index: int = 255) -> Tensor:
    """Eq. 1: weighted pixel-wise cross-entropy ``L_seg = -[y log y_bar]``.

    Args:
        logits: Class scores, (N, C, H, W).
        label: Class indices, (N, H, W) long; ``ignore_index`` pixels contribute 0.
        weight: Per-pixel weights, (N, H, W); None means 1 everywhere.
        ignore_index: Label value excluded from the loss.

    Returns:
        Scalar: the sum of weighted per-pixel losses divided by N * H * W.
    """
    per_pixel = F.cross_entropy(logits, label, reduction='none', ignore_index=ignore_index)
    if weight is not None:
        per_pixel = per_pixel * weight
    return per_pixel.sum() / per_pixel.numel()
