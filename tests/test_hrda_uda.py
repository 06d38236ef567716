"""HRDA inside the DACS wrapper: sliding-window pseudo-labels and whole iterations."""
import math

import torch
import torch.nn.functional as F
from mmengine.optim import OptimWrapper
from mmseg.utils import register_all_modules

import mmseg_iccld  # noqa: F401
from tiny_models import (build_uda, dacs_config, random_uda_batch, tiny_daformer_head,
                         tiny_mit)

register_all_modules(init_default_scope=True)
torch.set_num_threads(1)

SIZE = 64


def build_dacs(**kwargs):
    segmentor = dict(
        type='HRDAEncoderDecoder', backbone=tiny_mit(),
        decode_head=dict(type='HRDAHead', single_scale_head=tiny_daformer_head(),
                         attention_embed_dims=8, hr_loss_weight=0.1),
        scales=[1, 0.5], hr_crop_size=(32, 32), crop_coord_divisible=8,
        test_cfg=dict(mode='whole'))
    return build_uda(dacs_config(segmentor, **kwargs))


def uda_batch(n: int = 2, seed: int = 0, label_value: int = 13) -> dict:
    labels = torch.full((n, 1, SIZE, SIZE), label_value, dtype=torch.long)
    labels[:, :, :8] = 0  # a strip of road on top
    return random_uda_batch(labels, seed)


def test_teacher_pseudo_labels_come_from_the_sliding_detail_windows():
    torch.manual_seed(0)
    dacs = build_dacs()
    dacs.initialize_frozen_copies()
    data = dacs.data_preprocessor(uda_batch(), True)
    teacher = dacs.teacher.module
    shapes = []
    teacher.backbone.register_forward_hook(lambda m, a, o: shapes.append(tuple(a[0].shape)))
    labels, weights, weight = dacs.pseudo_label(data['target_inputs'],
                                                data['target_data_samples'])
    # the context (64 -> 32), then 3 x 3 overlapping 32x32 windows (stride 16) of both
    # images in one batch
    assert shapes == [(2, 3, 32, 32), (9 * 2, 3, 32, 32)]
    assert labels.shape == (2, SIZE, SIZE) and weights.shape == (2, SIZE, SIZE)

    metas = [dict(img_shape=(SIZE, SIZE), pad_shape=(SIZE, SIZE))] * 2
    with torch.no_grad():
        logits = teacher.encode_decode(data['target_inputs'], metas)
    probs = logits.softmax(dim=1)
    assert torch.equal(labels, probs.argmax(dim=1))
    assert math.isclose(weight.item(), (probs.max(dim=1)[0] >= 0.968).float().mean().item())


def test_two_iterations_train_fused_and_detail_losses_and_the_context_feature_distance():
    torch.manual_seed(0)
    dacs = build_dacs()
    params = [p for p in dacs.parameters() if p.requires_grad]
    wrapper = OptimWrapper(torch.optim.AdamW(params, lr=1e-3))
    batch = uda_batch()
    log = dacs.train_step(batch, wrapper)
    expected_keys = {'loss', 'pseudo_weight', 'src.loss_feat_dist'} | {
        f'{d}.decode.{b}{k}' for d in ('src', 'mix') for b in ('', 'hr.')
        for k in ('loss_ce', 'acc_seg')}
    assert expected_keys <= set(log)
    terms = [v for k, v in log.items() if 'loss' in k and k != 'loss']
    assert torch.allclose(log['loss'], sum(terms))
    assert log['src.decode.hr.loss_ce'] > 0 and log['mix.decode.hr.loss_ce'] > 0
    assert log['src.loss_feat_dist'].item() < 1e-6  # iteration 0: the copy

    # iteration 1: the distance of the context features (the image at half resolution);
    # the 64x64 label's one 1x1 feature cell is car (13): 56 of 64 rows, above 0.75
    inputs = dacs.data_preprocessor(batch, True)['inputs']
    context = F.interpolate(inputs, size=(32, 32), mode='bilinear', align_corners=False)
    with torch.no_grad():
        f_student = dacs.model.backbone(context)[-1]
        f_frozen = dacs.imnet_backbone(context)[-1]
    assert f_student.shape == (2, 64, 1, 1)
    expected = 0.005 * (f_student - f_frozen).norm(dim=1).mean()
    log = dacs.train_step(batch, wrapper)
    assert expected.item() > 0
    assert math.isclose(log['src.loss_feat_dist'].item(), expected.item(), rel_tol=1e-4)
