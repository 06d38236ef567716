"""ClassMix masks and mixing, and DAFormer's color jitter and blur."""
import math

import pytest
import torch

from mmseg_iccld.models.uda.classmix import (blur_kernel_size, class_mix, class_mix_masks,
                                             color_jitter, gaussian_blur)

MEAN = torch.tensor([123.675, 116.28, 103.53])
STD = torch.tensor([58.395, 57.12, 57.375])


@pytest.mark.parametrize('classes, expected', [([3], 1), ([0, 5], 1), ([1, 2, 7], 2),
                                               ([0, 1, 2, 3, 4], 3), (list(range(6)), 3)])
def test_mask_picks_half_of_the_present_classes_rounded_up(classes, expected):
    torch.manual_seed(0)
    label = torch.full((1, 1, 6, 6), 255)
    for i, c in enumerate(classes):
        label[0, 0, i] = c  # one row per class, the rest ignored
    for _ in range(20):
        mask = class_mix_masks(label)
        picked = torch.unique(label[mask.bool()])
        assert picked.numel() == expected
        assert 255 not in picked.tolist()
        assert set(picked.tolist()) <= set(classes)
        # a class is pasted entirely or not at all
        for c in classes:
            assert mask[label == c].unique().numel() == 1


def test_masks_are_per_sample_and_cover_all_choices():
    torch.manual_seed(0)
    labels = torch.tensor([[[0, 1], [2, 3]], [[5, 5], [5, 255]]]).unsqueeze(1)
    seen = set()
    for _ in range(200):
        masks = class_mix_masks(labels)
        assert masks.shape == (2, 1, 2, 2) and masks.dtype == torch.float32
        # sample 1 has a single class (5): always pasted, the ignored pixel never
        assert masks[1, 0].tolist() == [[1, 1], [1, 0]]
        seen.add(tuple(torch.unique(labels[0][masks[0].bool()]).tolist()))
    # 4 classes -> 2 of them, uniformly: all 6 pairs show up
    assert len(seen) == 6 and all(len(s) == 2 for s in seen)


def test_mixed_image_label_and_weight_follow_the_mask_pixel_by_pixel():
    mask = torch.tensor([[1., 0, 0], [1, 1, 0]]).reshape(1, 1, 2, 3)
    source_img = torch.arange(18, dtype=torch.float32).reshape(1, 3, 2, 3)
    target_img = -torch.arange(18, dtype=torch.float32).reshape(1, 3, 2, 3) - 100
    source_lbl = torch.tensor([[[[4, 255, 255], [4, 6, 255]]]])
    pseudo_lbl = torch.tensor([[[[1, 2, 3], [4, 5, 6]]]])
    pseudo_w = torch.full((1, 1, 2, 3), 0.3)

    img = class_mix(mask, source_img, target_img)
    lbl = class_mix(mask, source_lbl, pseudo_lbl)
    weight = class_mix(mask, torch.ones_like(pseudo_w), pseudo_w)

    assert lbl.dtype == torch.long
    assert lbl.tolist() == [[[[4, 2, 3], [4, 6, 6]]]]
    assert torch.allclose(weight, torch.tensor([[[[1, 0.3, 0.3], [1, 1, 0.3]]]]))
    for y in range(2):
        for x in range(3):
            chosen = source_img if mask[0, 0, y, x] == 1 else target_img
            assert torch.equal(img[0, :, y, x], chosen[0, :, y, x])


@pytest.mark.parametrize('side, size', [(512, 51), (128, 13), (64, 7), (1024, 103),
                                        (100, 9), (30, 3)])
def test_blur_kernel_is_about_ten_percent_and_odd(side, size):
    assert blur_kernel_size(side) == size


def test_color_jitter_probability_zero_is_identity_and_zero_strength_round_trips():
    torch.manual_seed(0)
    pixels = torch.rand(2, 3, 8, 8) * 255
    images = (pixels - MEAN.view(1, 3, 1, 1)) / STD.view(1, 3, 1, 1)
    assert torch.equal(color_jitter(images, MEAN, STD, 0.2, probability=0.0), images)
    # strength 0: de-normalise, identity jitter, re-normalise
    out = color_jitter(images, MEAN, STD, strength=0.0, probability=1.0)
    assert torch.allclose(out, images, atol=1e-4)


def test_color_jitter_changes_images_within_the_valid_range():
    torch.manual_seed(1)
    pixels = torch.rand(2, 3, 8, 8) * 255
    images = (pixels - MEAN.view(1, 3, 1, 1)) / STD.view(1, 3, 1, 1)
    out = color_jitter(images, MEAN, STD, strength=0.2, probability=1.0)
    assert out.shape == images.shape
    assert not torch.allclose(out, images, atol=1e-3)
    restored = out * STD.view(1, 3, 1, 1) + MEAN.view(1, 3, 1, 1)
    assert restored.min() >= -1e-3 and restored.max() <= 255 + 1e-3
    # each image draws its own factors
    assert not torch.allclose(out[0] - images[0], out[1] - images[1], atol=1e-3)


def test_color_jitter_is_applied_with_its_probability():
    torch.manual_seed(0)
    images = torch.rand(1, 3, 4, 4)
    applied = sum(not torch.equal(color_jitter(images, MEAN, STD, 0.2, 0.8), images)
                  for _ in range(400))
    assert 0.72 < applied / 400 < 0.88


def test_gaussian_blur_of_an_impulse_has_the_kernel_support_and_a_valid_sigma():
    torch.manual_seed(0)
    impulse = torch.zeros(2, 1, 64, 64)
    impulse[:, :, 32, 32] = 1
    out = gaussian_blur(impulse, probability=1.0)
    for n in range(2):
        # kernel 7 (64 * 0.1 -> 7): nothing reaches beyond 3 pixels from the impulse
        outside = out[n, 0].clone()
        outside[32 - 3:32 + 4, 32 - 3:32 + 4] = 0
        assert torch.equal(outside, torch.zeros_like(outside))
        assert math.isclose(out[n].sum().item(), 1.0, rel_tol=1e-5)
        # Gaussian profile: centre / neighbour = exp(1 / (2 sigma^2))
        ratio = (out[n, 0, 32, 32] / out[n, 0, 32, 33]).item()
        sigma = math.sqrt(1 / (2 * math.log(ratio)))
        assert 0.15 <= sigma <= 1.15
    # every image draws its own sigma
    assert not torch.allclose(out[0], out[1])


def test_gaussian_blur_probability():
    torch.manual_seed(0)
    images = torch.rand(1, 3, 32, 32)  # kernel 3 (a 16-pixel side would give 1: no blur)
    assert torch.equal(gaussian_blur(images, probability=0.0), images)
    blurred = sum(not torch.equal(gaussian_blur(images), images) for _ in range(200))
    assert 0.38 < blurred / 200 < 0.62
