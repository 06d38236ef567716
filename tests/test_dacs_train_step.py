"""Whole DACS iterations on a tiny MiT + DAFormerHead, checked against hand computations."""
import math

import pytest
import torch
import torch.nn.functional as F
from mmengine.optim import OptimWrapper, OptimWrapperDict
from mmseg.utils import register_all_modules

import mmseg_iccld  # noqa: F401
from mmseg_iccld.models.losses.pixel_weighted import loss_by_feat_weighted
from tiny_models import build_uda, dacs_config, random_uda_batch, tiny_daformer

register_all_modules(init_default_scope=True)
# Tiny tensors: a second intra-op thread only adds synchronisation, and on a loaded 2-core
# machine its spin-waits make an iteration a hundred times slower.
torch.set_num_threads(1)

SIZE = 64
LOG_KEYS = {'loss', 'src.decode.loss_ce', 'src.decode.acc_seg', 'src.loss_feat_dist',
            'mix.decode.loss_ce', 'mix.decode.acc_seg', 'pseudo_weight'}


def build_dacs(**kwargs):
    return build_uda(dacs_config(tiny_daformer(), **kwargs))


def source_label(n: int) -> torch.Tensor:
    """Quadrants: car (thing) | road, person (thing) | ignored."""
    label = torch.empty(n, 1, SIZE, SIZE, dtype=torch.long)
    half = SIZE // 2
    label[:, :, :half, :half] = 13
    label[:, :, :half, half:] = 0
    label[:, :, half:, :half] = 11
    label[:, :, half:, half:] = 255
    return label


def uda_batch(n: int = 2, seed: int = 0, labels=None) -> dict:
    return random_uda_batch(source_label(n) if labels is None else labels, seed)


def optim_wrapper(dacs) -> OptimWrapper:
    params = [p for p in dacs.parameters() if p.requires_grad]
    return OptimWrapper(torch.optim.AdamW(params, lr=1e-3))


def params(module) -> dict:
    return {k: v.detach().clone() for k, v in module.named_parameters()}


def test_two_iterations_log_every_term_train_the_student_and_move_the_teacher():
    torch.manual_seed(0)
    dacs = build_dacs()
    wrapper = optim_wrapper(dacs)
    batch = uda_batch()
    theta0 = params(dacs.model)
    backbone0 = {k: v.clone() for k, v in dacs.model.backbone.state_dict().items()}

    log = dacs.train_step(batch, wrapper)
    assert set(log) == LOG_KEYS
    assert all(not v.requires_grad for v in log.values())
    total = log['src.decode.loss_ce'] + log['src.loss_feat_dist'] + log['mix.decode.loss_ce']
    assert torch.allclose(log['loss'], total)
    # iteration 0: student == frozen copy (up to the attention kernels of train/eval mode)
    assert log['src.loss_feat_dist'].item() < 1e-6
    assert 0.0 <= log['pseudo_weight'].item() <= 1.0
    assert not dacs.model.backbone._forward_hooks  # the capture hook is gone

    theta1 = params(dacs.model)
    assert any(not torch.equal(theta0[k], theta1[k]) for k in theta0)
    # teacher: copy of theta0 at iteration 0, then alpha = min(1 - 1/2, 0.999) = 0.5
    teacher1 = params(dacs.teacher.module)
    for k in theta0:
        assert torch.allclose(teacher1[k], 0.5 * theta0[k] + 0.5 * theta1[k], atol=1e-6), k
    for (name, b_t), b_s in zip(dacs.teacher.module.named_buffers(), dacs.model.buffers()):
        assert torch.equal(b_t, b_s), name
    assert int(dacs.teacher.steps) == 2

    # the feature distance of iteration 1, by hand, with the student of iteration 1
    inputs = dacs.data_preprocessor(batch, True)['inputs']
    with torch.no_grad():
        f_student = dacs.model.backbone(inputs)[-1]
        f_frozen = dacs.imnet_backbone(inputs)[-1]
    norms = (f_student - f_frozen).norm(dim=1)  # (2, 2, 2) cells of 32x32 pixels
    expected_fd = 0.005 * norms[:, :, 0].mean()  # left column: car, person; right: road, ignored

    log = dacs.train_step(batch, wrapper)
    assert math.isclose(log['src.loss_feat_dist'].item(), expected_fd.item(), rel_tol=1e-4)
    assert expected_fd.item() > 0
    theta2 = params(dacs.model)
    for k in theta0:  # alpha = min(1 - 1/3, 0.999) = 2/3
        assert torch.allclose(dacs.teacher.module.state_dict()[k],
                              2 / 3 * teacher1[k] + 1 / 3 * theta2[k], atol=1e-6), k
    # the frozen backbone still holds the initial weights
    for k, v in dacs.imnet_backbone.state_dict().items():
        assert torch.equal(v, backbone0[k]), k
    assert all(not p.requires_grad for p in dacs.imnet_backbone.parameters())
    assert not dacs.imnet_backbone.training


def test_pseudo_weight_reaches_the_mixed_loss_in_train_step():
    # every source pixel ignored: ClassMix pastes nothing, so the mixed batch is the target
    # with its pseudo-label, and its loss is the pseudo-label weight times the target CE
    labels = torch.full((2, 1, SIZE, SIZE), 255, dtype=torch.long)
    torch.manual_seed(0)
    never = build_dacs(pseudo_threshold=2.0)  # no pixel is confident: weight 0
    log = never.train_step(uda_batch(labels=labels), optim_wrapper(never))
    assert log['pseudo_weight'].item() == 0.0
    assert log['mix.decode.loss_ce'].item() == 0.0
    assert log['src.decode.loss_ce'].item() == 0.0
    assert log['src.loss_feat_dist'].item() == 0.0  # empty thing mask: 0, not NaN

    torch.manual_seed(0)
    always = build_dacs(pseudo_threshold=0.0)  # every pixel is confident: weight 1
    log = always.train_step(uda_batch(labels=labels), optim_wrapper(always))
    assert log['pseudo_weight'].item() == 1.0
    assert log['mix.decode.loss_ce'].item() > 0.0


def test_pixel_weights_scale_the_students_loss_exactly():
    torch.manual_seed(0)
    dacs = build_dacs().eval()  # eval: no dropout, so the two losses see the same logits
    assert dacs.model.decode_head.loss_by_feat.__func__ is loss_by_feat_weighted
    data = dacs.data_preprocessor(uda_batch(), True)
    labels = torch.randint(0, 19, (2, 1, SIZE, SIZE))
    weights = torch.rand(2, 1, SIZE, SIZE)
    weights[:, :, :8] = 0  # a margin

    def loss(w):
        samples = dacs.build_data_samples(labels, w, data['data_samples'])
        with torch.no_grad():
            return dacs.mixed_losses(data['inputs'], samples)['decode.loss_ce']

    with torch.no_grad():
        logits = F.interpolate(dacs.model._forward(data['inputs']), size=(SIZE, SIZE),
                               mode='bilinear', align_corners=False)
    ce = F.cross_entropy(logits, labels.squeeze(1), reduction='none')
    manual = (ce * weights.squeeze(1)).sum() / labels.numel()
    assert torch.allclose(loss(weights), manual, rtol=1e-5)
    assert torch.allclose(loss(2.5 * weights), 2.5 * manual, rtol=1e-5)
    ones = loss(torch.ones_like(weights))
    assert torch.allclose(ones, ce.mean(), rtol=1e-5)


def test_mix_with_masks_pastes_source_onto_target():
    dacs = build_dacs(color_jitter_probability=0.0, blur=False)
    data = dacs.data_preprocessor(uda_batch(), True)
    masks = torch.zeros(2, 1, SIZE, SIZE)
    masks[:, :, :SIZE // 2, :SIZE // 2] = 1  # the car quadrant
    pseudo = torch.full((2, SIZE, SIZE), 5)
    weights = torch.full((2, SIZE, SIZE), 0.25)
    inputs, samples = dacs.mix_with_masks(masks, data['inputs'], data['data_samples'],
                                          data['target_inputs'], pseudo, weights)
    m = masks.bool().expand(-1, 3, -1, -1)
    assert torch.equal(inputs[m], data['inputs'][m])
    assert torch.equal(inputs[~m], data['target_inputs'][~m])
    for sample, mask in zip(samples, masks):
        label, weight = sample.gt_sem_seg.data, sample.seg_weight.data
        assert label.shape == (1, SIZE, SIZE) and weight.shape == (1, SIZE, SIZE)
        assert torch.all(label[mask.bool()] == 13) and torch.all(label[~mask.bool()] == 5)
        assert torch.all(weight[mask.bool()] == 1) and torch.all(weight[~mask.bool()] == 0.25)


def test_optim_wrapper_dict_and_resume_without_copying_again():
    torch.manual_seed(0)
    dacs = build_dacs()
    wrapper = OptimWrapperDict(model=optim_wrapper(dacs))
    dacs.train_step(uda_batch(), wrapper)
    state = {k: v.clone() for k, v in dacs.state_dict().items()}

    torch.manual_seed(1)
    resumed = build_dacs()
    resumed.load_state_dict(state)
    assert int(resumed.teacher.steps) == 2
    teacher_before = params(resumed.teacher.module)
    frozen_before = {k: v.clone() for k, v in resumed.imnet_backbone.state_dict().items()}
    resumed.train_step(uda_batch(seed=1), OptimWrapperDict(model=optim_wrapper(resumed)))
    student = params(resumed.model)
    for k, v in params(resumed.teacher.module).items():
        assert torch.allclose(v, 2 / 3 * teacher_before[k] + 1 / 3 * student[k], atol=1e-6), k
    for k, v in resumed.imnet_backbone.state_dict().items():
        assert torch.equal(v, frozen_before[k]), k


def test_evaluation_uses_the_student_and_no_feature_distance_when_off():
    torch.manual_seed(0)
    dacs = build_dacs(imnet_feature_dist_lambda=0.0)
    assert dacs.imnet_backbone is None
    log = dacs.train_step(uda_batch(), optim_wrapper(dacs))
    assert set(log) == LOG_KEYS - {'src.loss_feat_dist'}

    batch = uda_batch()
    val_batch = dict(inputs=batch['inputs'], data_samples=batch['data_samples'])
    dacs.eval()
    data = dacs.data_preprocessor(val_batch, False)
    with torch.no_grad():
        expected = dacs.model.predict(data['inputs'], data['data_samples'])
    with torch.no_grad():
        for p in dacs.teacher.parameters():
            p.zero_()
    out = dacs.val_step(val_batch)
    assert torch.equal(out[0].pred_sem_seg.data, expected[0].pred_sem_seg.data)
    assert torch.equal(out[1].seg_logits.data, expected[1].seg_logits.data)


def test_bad_margins_and_mismatched_crops_are_refused():
    with pytest.raises(ValueError, match='top, bottom, left, right'):
        build_dacs(pseudo_margins=(15, 120))
    dacs = build_dacs()
    x = torch.zeros(1, 3, 64, 64)
    with pytest.raises(ValueError, match='one size'):
        dacs.mix_with_masks(torch.zeros(1, 1, 64, 64), x, uda_batch(1)['data_samples'],
                            torch.zeros(1, 3, 32, 32), torch.zeros(1, 64, 64),
                            torch.zeros(1, 64, 64))
