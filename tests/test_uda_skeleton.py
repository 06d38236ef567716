"""The UDA iteration as one skeleton: the parts of ``DACS.train_step`` in their order for
DACS, MIC and ICCLD phase 2, ICCLD with MIC, and the ImageNet-comparable features each
segmentor names for the feature distance."""
import pytest
import torch
import torch.nn.functional as F
from mmseg.utils import register_all_modules

import mmseg_iccld  # noqa: F401
import test_hrda_uda
import test_iccld_uda
from mmseg_iccld.models.uda.feature_distance import capture_imnet_features
from test_mic_masking import MIC, RecordingOptimWrapper
from test_dacs_train_step import build_dacs, optim_wrapper, uda_batch

register_all_modules(init_default_scope=True)
torch.set_num_threads(1)

PARTS = ('begin_iteration', 'source_pass', 'label_target', 'mix_domains', 'mixed_pass',
         'extra_passes', 'target_pass', 'masked_pass', 'student_step', 'after_student_step',
         'discriminator_step', 'teacher_step', 'finish_iteration')


def record_parts(model) -> list:
    """Replace the model's parts by recording wrappers; returns the list of calls."""
    calls = []
    for name in PARTS:
        method = getattr(model, name, None)
        if method is None:
            continue

        def recorded(*args, _method=method, _name=name, **kwargs):
            calls.append(_name)
            return _method(*args, **kwargs)

        setattr(model, name, recorded)
    return calls


SKELETON = ['begin_iteration', 'source_pass', 'label_target', 'mix_domains', 'mixed_pass',
            'extra_passes', 'student_step', 'after_student_step', 'teacher_step',
            'finish_iteration']


def test_dacs_runs_the_parts_in_order():
    torch.manual_seed(0)
    dacs = build_dacs()
    calls = record_parts(dacs)
    log = dacs.train_step(uda_batch(), optim_wrapper(dacs))
    assert calls == SKELETON
    assert not any(key.startswith('masked.') for key in log)


def test_mic_is_an_extra_pass_with_its_own_backward_before_the_step():
    torch.manual_seed(0)
    dacs = build_dacs(mask_consistency=MIC, pseudo_threshold=0.0)
    calls = record_parts(dacs)
    params = [p for p in dacs.parameters() if p.requires_grad]
    wrapper = RecordingOptimWrapper(torch.optim.AdamW(params, lr=1e-3))
    log = dacs.train_step(uda_batch(), wrapper)
    assert calls == SKELETON[:6] + ['masked_pass'] + SKELETON[6:]
    assert wrapper.calls == ['backward'] * 3 + ['step']
    total = log['src.decode.loss_ce'] + log['src.loss_feat_dist'] + log[
        'mix.decode.loss_ce'] + log['masked.decode.loss_ce']
    torch.testing.assert_close(log['loss'], total)


def _iccld_phase2(**kwargs):
    uda = test_iccld_uda.build_uda(**kwargs)
    optim = test_iccld_uda.build_optim(uda)
    uda.set_phase(2, lambda_adv=0.5)
    return uda, optim


def test_iccld_phase2_target_pass_and_discriminator_step_are_parts():
    uda, optim = _iccld_phase2()
    calls = record_parts(uda)
    log = uda.train_step(test_iccld_uda.uda_batch(), optim)
    assert calls == (SKELETON[:6] + ['target_pass'] + SKELETON[6:8] + ['discriminator_step']
                     + SKELETON[8:])
    assert {'tgt.loss_ldm', 'tgt.loss_adv_gen', 'dis.loss', 'lambda_adv'} <= set(log)


def test_iccld_phase1_is_the_dacs_skeleton():
    uda = test_iccld_uda.build_uda()
    calls = record_parts(uda)
    log = uda.train_step(test_iccld_uda.uda_batch(), test_iccld_uda.build_optim(uda))
    assert calls == SKELETON
    assert 'lambda_adv' not in log and 'dis.loss' not in log


def test_iccld_with_mic_runs_the_masked_pass_after_the_target_pass():
    uda, optim = _iccld_phase2(mask_consistency=dict(MIC, mask_block_size=8),
                               pseudo_threshold=0.0)
    calls = record_parts(uda)
    disc = test_iccld_uda.params(uda.discriminator)
    log = uda.train_step(test_iccld_uda.uda_batch(), optim)
    assert calls.index('target_pass') < calls.index('masked_pass') < calls.index(
        'student_step') < calls.index('discriminator_step')
    assert {'masked.decode.loss_ce', 'masked.loss_ldm', 'tgt.loss_ldm', 'dis.loss'} <= set(log)
    # the masked target is not one of the discriminator's domains
    assert not any(key.startswith('masked.loss_adv') for key in log)
    assert all(torch.isfinite(v).all() for v in log.values())
    assert test_iccld_uda.changed(disc, uda.discriminator)


def test_plain_segmentor_features_are_those_of_its_input():
    dacs = build_dacs()
    inputs = torch.randn(2, 3, 64, 64)
    with capture_imnet_features(dacs.student, inputs) as calls:
        dacs.student.extract_feat(F.interpolate(inputs, scale_factor=0.5))  # another input
        features = dacs.student.extract_feat(inputs)
    assert len(calls) == 1 and calls[0][0] is inputs and calls[0][1] is features
    assert not dacs.student.backbone._forward_hooks


def test_a_segmentor_that_never_encodes_its_input_is_refused():
    dacs = build_dacs()
    dacs.initialize_frozen_copies()
    data = dacs.preprocess(uda_batch())
    # the backbone sees a copy of the input, which is not what the segmentor was given
    dacs.student.extract_feat = lambda x, _extract=dacs.student.extract_feat: _extract(x + 0)
    with pytest.raises(RuntimeError, match='ImageNet-comparable'):
        dacs.source_losses(data['inputs'], data['data_samples'])


def test_hrda_names_its_context_view():
    torch.manual_seed(0)
    dacs = test_hrda_uda.build_dacs()
    student = dacs.student
    inputs = torch.randn(2, 3, 64, 64)
    with capture_imnet_features(student, inputs) as calls:
        student.hrda_features(inputs, (0, 32, 0, 32))  # the context, then the 32x32 detail
    assert student.imnet_feature_tap is None
    assert len(calls) == 1
    backbone_input, features = calls[0]
    torch.testing.assert_close(backbone_input, student.context_input(inputs))
    assert features[-1].shape[2:] == (1, 1)  # 32x32 context at stride 32
