"""Pseudo-labels and their single confidence weight, with margins."""
import math

import torch

from mmseg_iccld.models.uda.pseudo_label import (pseudo_label_from_logits, pseudo_weight_map,
                                                 zero_margins)


def _logits_from_probs(probs: torch.Tensor) -> torch.Tensor:
    # softmax(log p) = p for a normalised p
    return probs.log()


def test_weight_is_fraction_of_confident_pixels_over_the_batch():
    # two images of 2x3 pixels, 2 classes; max probability per pixel:
    #   image 0: 0.99 0.50 0.97      image 1: 0.969 0.60 0.90
    #            0.70 0.99 0.80               0.99  0.95  0.999
    # confident (>= 0.968): 3 + 3 = 6 of 12 pixels -> weight 0.5
    p_max = torch.tensor([[[0.99, 0.50, 0.97], [0.70, 0.99, 0.80]],
                          [[0.969, 0.60, 0.90], [0.99, 0.95, 0.999]]], dtype=torch.float64)
    winner = torch.tensor([[[0, 1, 1], [0, 1, 0]], [[1, 0, 0], [1, 1, 0]]])
    probs = torch.empty(2, 2, 2, 3, dtype=torch.float64)
    probs[:, 0] = torch.where(winner == 0, p_max, 1 - p_max)
    probs[:, 1] = 1 - probs[:, 0]
    # a pixel at exactly 0.5 has a tie; give it to class 1 explicitly
    probs[0, :, 0, 1] = torch.tensor([0.49, 0.51], dtype=torch.float64)
    winner[0, 0, 1] = 1

    labels, weight = pseudo_label_from_logits(_logits_from_probs(probs), threshold=0.968)
    assert torch.equal(labels, winner)
    assert weight.dim() == 0
    assert math.isclose(weight.item(), 6 / 12)


def test_weight_map_broadcasts_and_zeroes_margins():
    weight = torch.tensor(0.25)
    # (top, bottom, left, right) = (1, 2, 1, 0) on 6x5 crops
    weight_map = pseudo_weight_map(weight, (2, 6, 5), margins=(1, 2, 1, 0))
    expected = torch.zeros(6, 5)
    expected[1:4, 1:] = 0.25
    assert torch.equal(weight_map[0], expected)
    assert torch.equal(weight_map[1], expected)


def test_zero_margins_right_and_no_margins():
    weights = torch.ones(1, 3, 4)
    assert torch.equal(zero_margins(weights.clone(), (0, 0, 0, 0)), weights)
    out = zero_margins(weights.clone(), (0, 0, 0, 3))
    assert torch.equal(out[0], torch.tensor([[1., 0, 0, 0]] * 3))


def test_daformer_margins_on_a_512_crop():
    weight_map = pseudo_weight_map(torch.tensor(0.8), (1, 512, 512), margins=(15, 120, 0, 0))
    assert weight_map[0, :15].abs().sum() == 0
    assert weight_map[0, -120:].abs().sum() == 0
    assert torch.all(weight_map[0, 15:392] == 0.8)
    assert math.isclose(weight_map.mean().item(), 0.8 * (512 - 135) / 512, rel_tol=1e-6)
