"""ICCLD's losses (eq. 2-3) and the tests' reference of eq. 1 against values computed by
hand."""
import math

import pytest
import torch

from mmseg.models.losses import CrossEntropyLoss
from mmseg_iccld.models.losses import (domain_accuracy, loss_adv_discriminator,
                                       loss_adv_generator, loss_ldm)
from references import loss_seg

LOG2, LOG3 = math.log(2), math.log(3)


def seg_toy():
    """2x2 logits of 2 classes: pixel CE log 2, log 4/3, log 4 and an ignored pixel."""
    logits = torch.zeros(1, 2, 2, 2, dtype=torch.float64)
    logits[0, 0, 0, 1] = LOG3  # softmax (3/4, 1/4), label 0 -> -log 3/4
    logits[0, 0, 1, 0] = LOG3  # softmax (3/4, 1/4), label 1 -> -log 1/4
    logits[0, :, 1, 1] = torch.tensor([5.0, -3.0])  # ignored, contributes 0
    label = torch.tensor([[[0, 0], [1, 255]]])
    return logits, label


def test_loss_seg_unweighted():
    logits, label = seg_toy()
    expected = (LOG2 + math.log(4 / 3) + math.log(4) + 0) / 4
    assert loss_seg(logits, label).item() == pytest.approx(expected, abs=1e-12)


def test_loss_seg_weighted_divides_by_pixel_count():
    logits, label = seg_toy()
    weight = torch.tensor([[[1.0, 0.5], [2.0, 7.0]]], dtype=torch.float64)
    expected = (LOG2 + 0.5 * math.log(4 / 3) + 2 * math.log(4) + 0) / 4
    assert loss_seg(logits, label, weight).item() == pytest.approx(expected, abs=1e-12)
    # a scalar pseudo-label weight scales the loss (DACS semantics)
    half = loss_seg(logits, label, torch.full_like(weight, 0.5))
    assert half.item() == pytest.approx(0.5 * loss_seg(logits, label).item(), abs=1e-12)


def test_loss_seg_is_mmseg_cross_entropy_without_avg_non_ignore():
    """The head computes eq. 1 with mmseg's CrossEntropyLoss; both must agree."""
    logits, label = seg_toy()
    weight = torch.tensor([[[1.0, 0.5], [2.0, 7.0]]], dtype=torch.float64)
    mmseg_ce = CrossEntropyLoss(avg_non_ignore=False)
    expected = mmseg_ce(logits, label, weight=weight, ignore_index=255)
    # mmseg casts the weight to float32
    assert loss_seg(logits, label, weight).item() == pytest.approx(expected.item(), abs=1e-6)


def test_loss_ldm_hand_values():
    noise_pred = torch.tensor([[[[1.0, 0.5]], [[3.0, 0.0]]]])  # (1, 2, 1, 2)
    noise = torch.tensor([[[[0.0, 0.0]], [[0.0, 0.5]]]])
    # pixel 0: (1 + 9) / 2 = 5; pixel 1: (0.25 + 0.25) / 2 = 0.25
    assert loss_ldm(noise_pred, noise).item() == pytest.approx((5 + 0.25) / 2)
    weight = torch.tensor([[[0.5, 2.0]]])
    assert loss_ldm(noise_pred, noise, weight).item() == pytest.approx((2.5 + 0.5) / 2)
    assert loss_ldm(noise_pred, noise, torch.zeros(1, 1, 2)).item() == 0


def test_loss_ldm_rejects_shape_mismatch():
    with pytest.raises(ValueError, match='differ in shape'):
        loss_ldm(torch.zeros(1, 2, 3, 3), torch.zeros(1, 2, 3, 4))


def test_loss_adv_discriminator_hand_values():
    logits = torch.tensor([[0.0, 0.0, 0.0], [LOG2, 0.0, 0.0]])
    # source: -log 1/3 and -log 2/4; target: -log 1/3 and -log 1/4
    assert loss_adv_discriminator(logits, 0).item() == pytest.approx((LOG3 + LOG2) / 2)
    assert loss_adv_discriminator(logits, 2).item() == pytest.approx((LOG3 + 2 * LOG2) / 2)


def test_loss_adv_generator_uniform_onehot_and_between():
    uniform = torch.zeros(4, 3, requires_grad=True)
    loss = loss_adv_generator(uniform)
    assert loss.item() == pytest.approx(0.0, abs=1e-7)
    loss.backward()
    assert uniform.grad.abs().max().item() < 1e-7  # the minimum: nothing left to confuse

    onehot = torch.tensor([[200.0, 0.0, 0.0], [0.0, 0.0, 200.0]])
    assert loss_adv_generator(onehot).item() == pytest.approx(LOG3, abs=1e-6)

    # p = (1/2, 1/4, 1/4): sum p log p + log 3 = -1.5 log 2 + log 3; batch mean with uniform
    between = torch.tensor([[LOG2, 0.0, 0.0], [0.0, 0.0, 0.0]])
    expected = (LOG3 - 1.5 * LOG2 + 0.0) / 2
    assert loss_adv_generator(between).item() == pytest.approx(expected, abs=1e-6)


def test_loss_adv_generator_gradient_pushes_towards_uniform():
    logits = torch.tensor([[2.0, 0.0, 0.0]], requires_grad=True)
    loss_adv_generator(logits).backward()
    assert logits.grad[0, 0] > 0 and logits.grad[0, 1] < 0 and logits.grad[0, 2] < 0


def test_patch_logits_are_one_decision_per_location():
    # (1, 3, 1, 2): location 0 uniform, location 1 with p = (1/2, 1/4, 1/4)
    logits = torch.tensor([[[[0.0, LOG2]], [[0.0, 0.0]], [[0.0, 0.0]]]])
    assert loss_adv_discriminator(logits, 0).item() == pytest.approx((LOG3 + LOG2) / 2)
    assert loss_adv_generator(logits).item() == pytest.approx((LOG3 - 1.5 * LOG2) / 2,
                                                              abs=1e-6)
    assert domain_accuracy(logits, 0).item() == pytest.approx(1.0)  # ties go to index 0
    assert domain_accuracy(logits, 1).item() == pytest.approx(0.0)
