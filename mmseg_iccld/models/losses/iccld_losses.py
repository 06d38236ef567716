"""The loss functions of ICCLD (paper eq. 1-3).

Each equation is one function. Pixel and latent-pixel weights carry the DACS pseudo-label
weight and the ignore mask; means divide by the number of (latent) pixels, not by the sum of
weights (mmseg's cross-entropy with ``avg_non_ignore=False``, as DAFormer), so a scalar
pseudo-label weight scales the target part of a loss.
"""
import math
from typing import Optional

import torch
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


def loss_ldm(noise_pred: Tensor, noise: Tensor, weight: Optional[Tensor] = None) -> Tensor:
    """Eq. 2: ``L_ldm = || eps - eps_theta(sqrt(a_t) z + sqrt(1 - a_t) eps, t | z0) ||^2``.

    Args:
        noise_pred: Predicted noise ``eps_theta(...)``, (N, C, h, w).
        noise: The noise that was added, (N, C, h, w).
        weight: Per-latent-pixel weights, (N, h, w); None means 1 everywhere.

    Returns:
        Scalar: per latent pixel the channel mean of the squared error, weighted, summed and
        divided by N * h * w.
    """
    if noise_pred.shape != noise.shape:
        raise ValueError(f'noise_pred {tuple(noise_pred.shape)} and noise '
                         f'{tuple(noise.shape)} differ in shape')
    per_pixel = (noise_pred - noise).pow(2).mean(dim=1)
    if weight is not None:
        per_pixel = per_pixel * weight
    return per_pixel.sum() / per_pixel.numel()


def loss_adv_discriminator(disc_logits: Tensor, domain: int) -> Tensor:
    """Eq. 3, discriminator term: cross-entropy of ``f_dis`` against the one-hot domain o_d.

    The caller passes ``f_dis(eps_hat.detach())`` so that this term trains only f_dis.

    Args:
        disc_logits: Discriminator logits, (N, D) (D = 3: source, mixed, target).
        domain: Index of the true domain of every sample in the batch.

    Returns:
        Scalar: the cross-entropy, mean over the batch.
    """
    target = torch.full((disc_logits.shape[0], ), domain, dtype=torch.long,
                        device=disc_logits.device)
    return F.cross_entropy(disc_logits, target)


def loss_adv_generator(disc_logits: Tensor) -> Tensor:
    """Eq. 3, generator term: ``KL(f_dis(eps_hat) || U(1/D))``.

    ``KL(p || U) = sum_k p_k log p_k + log D``: zero when the discriminator cannot tell the
    domains apart, ``log D`` when it is certain. The caller weights it by lambda_adv.

    Args:
        disc_logits: Discriminator logits on the predicted noise, (N, D).

    Returns:
        Scalar: the divergence, mean over the batch.
    """
    # p * log_softmax stays finite where p underflows to 0, unlike p * log(p).
    log_prob = F.log_softmax(disc_logits, dim=1)
    neg_entropy = (log_prob.exp() * log_prob).sum(dim=1)
    return (neg_entropy + math.log(disc_logits.shape[1])).mean()
