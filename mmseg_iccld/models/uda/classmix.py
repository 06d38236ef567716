"""ClassMix (Olsson et al., WACV 2021) and the photometric augmentation DACS applies to it.

Half of the classes of a source label are cut out of the source image and pasted onto the
target image; the pseudo-label and the pixel weights are mixed with the same mask. The mixed
image then gets DAFormer's color jitter and Gaussian blur, computed with kornia on tensors.

Randomness uses torch's global generator, which mmengine seeds, so seeded runs repeat.
"""
import math
from typing import Sequence

import kornia
import torch
from torch import Tensor


def class_mix_masks(labels: Tensor, ignore_index: int = 255) -> Tensor:
    """One ClassMix mask per sample: half of the classes present in its label.

    From the ``n`` classes of a sample (the ignore label excluded), ``(n + n % 2) / 2`` are
    chosen uniformly without replacement.

    Args:
        labels: Source labels ``(N, 1, H, W)`` or ``(N, H, W)``.
        ignore_index: Label that is never chosen.

    Returns:
        Masks ``(N, 1, H, W)`` float, 1 where the source pixel is pasted.
    """
    if labels.dim() == 3:
        labels = labels.unsqueeze(1)
    masks = []
    for label in labels:
        classes = torch.unique(label)
        classes = classes[classes != ignore_index]
        n = classes.numel()
        chosen = classes[torch.randperm(n, device=classes.device)[:(n + n % 2) // 2]]
        masks.append(torch.isin(label, chosen))
    return torch.stack(masks).float()


def class_mix(mask: Tensor, source: Tensor, target: Tensor) -> Tensor:
    """Paste ``source`` onto ``target`` where ``mask`` is 1.

    Args:
        mask: ``(N, 1, H, W)`` with values 0 or 1.
        source: ``(N, C, H, W)`` (images, labels with ``C = 1``, weights).
        target: Same shape as ``source``.

    Returns:
        ``mask * source + (1 - mask) * target``, in the dtype of ``source``.
    """
    mask = mask.to(torch.float32)
    mixed = mask * source.to(torch.float32) + (1 - mask) * target.to(torch.float32)
    return mixed.to(source.dtype)


def blur_kernel_size(side: int) -> int:
    """DAFormer's Gaussian kernel size: about 10% of the side, rounded down to odd.

    Args:
        side: Image height or width in pixels.

    Returns:
        ``ceil(0.1 * side)`` if odd, else one less.
    """
    size = math.ceil(0.1 * side)
    return size if size % 2 == 1 else size - 1


def color_jitter(images: Tensor, mean: Tensor, std: Tensor, strength: float = 0.2,
                 probability: float = 0.8) -> Tensor:
    """DAFormer's color jitter on normalised images.

    With probability ``probability`` (one draw per batch, as DAFormer), every image gets its
    own random brightness, contrast, saturation and hue change of strength ``strength``,
    applied to the de-normalised image in ``[0, 1]`` and normalised back.

    kornia's ``ColorJiggle`` is what DAFormer used: kornia 0.5's ``ColorJitter`` (additive
    brightness, HSV saturation), which later kornia renamed ``ColorJiggle`` when it gave the
    name ``ColorJitter`` to torchvision's formulas.

    Args:
        images: Normalised images ``(N, 3, H, W)``: ``(pixel - mean) / std``, pixel in
            ``[0, 255]``.
        mean: Per-channel mean ``(3,)`` in the 0-255 range.
        std: Per-channel std ``(3,)`` in the 0-255 range.
        strength: Brightness, contrast, saturation and hue factor.
        probability: Probability of jittering the batch.

    Returns:
        Images ``(N, 3, H, W)``, normalised like the input.
    """
    if torch.rand(1).item() >= probability:
        return images
    mean = mean.reshape(1, -1, 1, 1).to(images)
    std = std.reshape(1, -1, 1, 1).to(images)
    jitter = kornia.augmentation.ColorJiggle(
        brightness=strength, contrast=strength, saturation=strength, hue=strength, p=1.0)
    unit_range = (images * std + mean) / 255
    # one call per image: each image draws its own factors and its own order of the four steps
    jittered = torch.cat([jitter(image.unsqueeze(0)) for image in unit_range])
    return (jittered * 255 - mean) / std


def gaussian_blur(images: Tensor, probability: float = 0.5,
                  sigma_range: Sequence[float] = (0.15, 1.15)) -> Tensor:
    """DAFormer's Gaussian blur on (normalised) images.

    With probability ``probability`` (one draw per batch, as DAFormer), every image is
    blurred with its own ``sigma ~ U(sigma_range)`` and a kernel of :func:`blur_kernel_size`.

    Args:
        images: Images ``(N, C, H, W)``.
        probability: Probability of blurring the batch.
        sigma_range: Range of the uniform sigma draw.

    Returns:
        Images ``(N, C, H, W)``.
    """
    if torch.rand(1).item() >= probability:
        return images
    n, _, h, w = images.shape
    low, high = sigma_range
    sigma = torch.empty(n, 1).uniform_(low, high).repeat(1, 2).to(images)
    kernel_size = (blur_kernel_size(h), blur_kernel_size(w))
    return kornia.filters.gaussian_blur2d(images, kernel_size, sigma)
