"""DAFormer's thing-class ImageNet feature distance."""
import math

import torch

from mmseg_iccld.models.uda.feature_distance import (downscale_label_ratio,
                                                     feature_distance_loss,
                                                     masked_feature_distance)

THINGS = (6, 7, 11, 12, 13, 14, 15, 16, 17, 18)


def test_majority_rule_keeps_cells_with_at_least_75_percent():
    # four 2x2 cells (scale 2), 3 classes, ignore 255
    label = torch.tensor([
        [1, 1, 2, 2],
        [1, 0, 2, 2],  # cell (0,0): class 1 on 3/4 -> 1; cell (0,1): 2 on 4/4 -> 2
        [0, 1, 255, 255],
        [2, 0, 255, 1],  # cell (1,0): 0 on 2/4 -> ignore; cell (1,1): ignore wins 3/4 -> 255
    ]).view(1, 1, 4, 4)
    small = downscale_label_ratio(label, 2, 0.75, num_classes=3)
    assert small.shape == (1, 1, 2, 2)
    assert small.tolist() == [[[[1, 2], [255, 255]]]]
    # a lower ratio accepts the 2/4 majority
    assert downscale_label_ratio(label, 2, 0.5, 3).tolist() == [[[[1, 2], [0, 255]]]]


def test_distance_is_the_masked_mean_of_pixel_l2_norms():
    features = torch.zeros(1, 2, 2, 2)
    reference = torch.zeros(1, 2, 2, 2)
    features[0, :, 0, 0] = torch.tensor([3., 4.])   # norm 5
    features[0, :, 0, 1] = torch.tensor([1., 0.])   # norm 1
    features[0, :, 1, 0] = torch.tensor([0., 2.])   # norm 2
    reference[0, :, 1, 1] = torch.tensor([6., 8.])  # norm 10
    mask = torch.tensor([[True, False], [True, True]]).view(1, 1, 2, 2)
    assert math.isclose(masked_feature_distance(features, reference, mask).item(), 17 / 3,
                        rel_tol=1e-6)
    assert math.isclose(masked_feature_distance(features, reference).item(), 18 / 4,
                        rel_tol=1e-6)


def test_feature_distance_only_on_thing_pixels_by_hand():
    torch.manual_seed(0)
    # a 4x4 label at stride 2 -> 2x2 feature cells:
    #   cell (0,0) car (13, thing), cell (0,1) road (0, stuff),
    #   cell (1,0) person (11) on 3/4 with road -> person, cell (1,1) bus 2/4 -> ignore
    label = torch.tensor([
        [13, 13, 0, 0],
        [13, 13, 0, 0],
        [11, 11, 15, 15],
        [11, 0, 0, 0],
    ]).view(1, 1, 4, 4)
    features = torch.randn(1, 5, 2, 2, requires_grad=True)
    reference = torch.randn(1, 5, 2, 2)
    loss = feature_distance_loss(features, reference, label, THINGS, 0.75, num_classes=19)
    norms = (features - reference).norm(dim=1)[0]
    expected = (norms[0, 0] + norms[1, 0]) / 2
    assert torch.allclose(loss, expected)
    loss.backward()
    # only the two thing cells receive gradient
    assert features.grad[0, :, 0, 1].abs().sum() == 0
    assert features.grad[0, :, 1, 1].abs().sum() == 0
    assert features.grad[0, :, 0, 0].abs().sum() > 0


def test_empty_mask_gives_zero_not_nan_with_the_graph_intact():
    label = torch.zeros(2, 1, 8, 8, dtype=torch.long)  # road only: no thing class
    features = torch.randn(2, 4, 2, 2, requires_grad=True)
    loss = feature_distance_loss(features, torch.randn(2, 4, 2, 2), label, THINGS, 0.75, 19)
    assert loss.item() == 0.0
    assert loss.requires_grad
    loss.backward()
    assert torch.equal(features.grad, torch.zeros_like(features))


def test_all_classes_when_no_class_list():
    label = torch.zeros(1, 1, 4, 4, dtype=torch.long)
    features = torch.ones(1, 3, 2, 2)
    loss = feature_distance_loss(features, torch.zeros(1, 3, 2, 2), label, None, 0.75, 19)
    assert math.isclose(loss.item(), math.sqrt(3), rel_tol=1e-6)
