"""The loss functions of ICCLD (paper eq. 2-3; eq. 1 is D's decode-head loss,
``loss_by_feat_weighted``).

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


def latent_mse(prediction: Tensor, target: Tensor, weight: Optional[Tensor] = None) -> Tensor:
    """Weighted squared error on the latent grid: per latent pixel the channel mean of the
    squared error, weighted, summed and divided by N * h * w.

    Args:
        prediction: (N, C, h, w).
        target: (N, C, h, w).
        weight: Per-latent-pixel weights, (N, h, w); None means 1 everywhere.

    Returns:
        Scalar.
    """
    if prediction.shape != target.shape:
        raise ValueError(f'prediction {tuple(prediction.shape)} and target '
                         f'{tuple(target.shape)} differ in shape')
    per_pixel = (prediction - target).pow(2).mean(dim=1)
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
        Scalar: :func:`latent_mse` of the noise.
    """
    return latent_mse(noise_pred, noise, weight)


def loss_chain(sample: Tensor, mask_latent: Tensor, weight: Optional[Tensor] = None) -> Tensor:
    """Self-aligned loss of the sampler's chain (not in the paper): its x0-estimate against
    the label code m0, ``|| m_hat0(chain from m_T | z0) - m0 ||^2``.

    Eq. 2 trains eps_theta on forward-noised labels at a uniform t, where its weight on the
    x0 error vanishes as t -> T; this term trains the K steps the sampler actually takes, as
    DDP trains its denoiser on its own predictions.

    Args:
        sample: The chain's x0-estimate, (N, C, h, w).
        mask_latent: m0 of the (pseudo-)labels, (N, C, h, w).
        weight: Per-latent-pixel weights, (N, h, w).

    Returns:
        Scalar: :func:`latent_mse` of the estimate.
    """
    return latent_mse(sample, mask_latent, weight)


def domain_decisions(disc_logits: Tensor) -> Tensor:
    """One row per decision: (N, D) image logits stay, (N, D, h, w) patch logits become
    (N * h * w, D)."""
    if disc_logits.dim() == 2:
        return disc_logits
    return disc_logits.movedim(1, -1).reshape(-1, disc_logits.shape[1])


def loss_adv_discriminator(disc_logits: Tensor, domain: int) -> Tensor:
    """Eq. 3, discriminator term: cross-entropy of ``f_dis`` against the one-hot domain o_d.

    The caller passes ``f_dis(input.detach())`` so that this term trains only f_dis.

    Args:
        disc_logits: Discriminator logits, (N, D) per image or (N, D, h, w) per patch
            (D = 3: source, mixed, target).
        domain: Index of the true domain of every sample in the batch.

    Returns:
        Scalar: the cross-entropy, mean over the decisions (images or patches).
    """
    logits = domain_decisions(disc_logits)
    target = torch.full((logits.shape[0], ), domain, dtype=torch.long, device=logits.device)
    return F.cross_entropy(logits, target)


def loss_adv_generator(disc_logits: Tensor) -> Tensor:
    """Eq. 3, generator term: ``KL(f_dis(.) || U(1/D))``.

    ``KL(p || U) = sum_k p_k log p_k + log D``: zero when the discriminator cannot tell the
    domains apart, ``log D`` when it is certain. Its gradient vanishes both at uniform p and
    at one-hot p (it saturates like the minimax GAN loss). The caller weights it by
    lambda_adv.

    Args:
        disc_logits: Discriminator logits, (N, D) or (N, D, h, w).

    Returns:
        Scalar: the divergence, mean over the decisions.
    """
    # p * log_softmax stays finite where p underflows to 0, unlike p * log(p).
    log_prob = F.log_softmax(domain_decisions(disc_logits), dim=1)
    neg_entropy = (log_prob.exp() * log_prob).sum(dim=1)
    return (neg_entropy + math.log(log_prob.shape[1])).mean()


def domain_accuracy(disc_logits: Tensor, domain: int) -> Tensor:
    """Fraction of the decisions (images or patches) that name ``domain``."""
    return (domain_decisions(disc_logits).argmax(dim=1) == domain).float().mean()
