"""What the speed work changes, and what it must not: fused MiT attention, channels-last
layout, and an iteration that does not wait for the device in the project's own code."""
import collections
import copy
import os.path as osp

import pytest
import torch
import torch.nn.functional as F
from mmengine.runner.checkpoint import load_state_dict
from mmseg.registry import MODELS
from mmseg.utils import register_all_modules

import mmseg_iccld  # noqa: F401
from test_iccld_uda import build_optim, build_uda, uda_batch
from tiny_models import build_uda as build_dacs
from tiny_models import dacs_config, tiny_daformer, tiny_mit
from mmseg_iccld.models.backbones.mit_sdpa import AttentionWithoutWeights
from mmseg_iccld.models.uda.teacher import EMATeacher
from tools.analysis_tools.profile_step import count_host_reads

register_all_modules(init_default_scope=True)
ROOT = osp.join(osp.dirname(__file__), '..')


def _mit_pair():
    torch.manual_seed(0)
    stock = MODELS.build(tiny_mit())
    fused = MODELS.build(dict(tiny_mit(), type='MixVisionTransformerSDPA'))
    fused.load_state_dict(stock.state_dict())  # strict: the same keys
    return stock.train(), fused.train()


def _count_sdpa(monkeypatch):
    calls = []
    original = F.scaled_dot_product_attention

    def counting(*args, **kwargs):
        calls.append(args[0].shape)
        return original(*args, **kwargs)

    monkeypatch.setattr(F, 'scaled_dot_product_attention', counting)
    return calls


def test_fused_mit_matches_mmseg_mit_outputs_and_gradients(monkeypatch):
    stock, fused = _mit_pair()
    assert list(stock.state_dict()) == list(fused.state_dict())
    x = torch.randn(2, 3, 64, 64)
    calls = _count_sdpa(monkeypatch)
    out_stock = stock(x)
    assert calls == []  # mmseg's MiT materialises the attention map instead
    out_fused = fused(x)
    # one fused call per attention layer (one layer in each of the four stages), with
    # (batch, heads, queries, head dim) queries: stage 1 has 16x16 tokens, one head
    assert len(calls) == 4 and tuple(calls[0]) == (2, 1, 256, 8)
    for a, b in zip(out_stock, out_fused):
        torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-5)
    sum(o.square().mean() for o in out_stock).backward()
    sum(o.square().mean() for o in out_fused).backward()
    for (name, p), q in zip(stock.named_parameters(), fused.parameters()):
        torch.testing.assert_close(q.grad, p.grad, rtol=1e-4, atol=1e-6, msg=name)


def test_fused_mit_switches_every_attention_layer():
    _, fused = _mit_pair()
    layers = [m for m in fused.modules() if isinstance(m, torch.nn.MultiheadAttention)]
    assert len(layers) == 4
    assert all(type(m) is AttentionWithoutWeights for m in layers)


def test_mitb5_configs_use_the_fused_mit():
    from mmengine.config import Config
    root = osp.join(ROOT, 'configs', '_base_', 'models')
    for name in ('daformer_mitb5.py', 'iccld_mitb5.py', 'hrda_mitb5.py'):
        backbone = Config.fromfile(osp.join(root, name)).model.backbone
        assert backbone.type == 'MixVisionTransformerSDPA', name


def test_channels_last_dacs_trains_like_the_default_layout():
    from tiny_models import random_uda_batch
    labels = torch.zeros(2, 1, 64, 64, dtype=torch.long)
    labels[:, :, 32:] = 13
    logs = {}
    for channels_last in (False, True):
        torch.manual_seed(0)
        # without dropout: its random mask is drawn in memory order, so it differs by layout
        segmentor = tiny_daformer()
        segmentor['decode_head']['dropout_ratio'] = 0.0
        model = build_dacs(dacs_config(segmentor, channels_last=channels_last,
                                       imnet_feature_dist_lambda=0.005))
        if channels_last:
            conv = model.model.decode_head.conv_seg.weight
            assert conv.is_contiguous(memory_format=torch.channels_last)
            assert model.teacher.module.decode_head.conv_seg.weight.is_contiguous(
                memory_format=torch.channels_last)
            data = model.preprocess(random_uda_batch(labels))
            assert data['inputs'].is_contiguous(memory_format=torch.channels_last)
        from mmengine.optim import build_optim_wrapper
        optim = build_optim_wrapper(model, dict(optimizer=dict(type='AdamW', lr=1e-3)))
        torch.manual_seed(1)
        logs[channels_last] = [model.train_step(random_uda_batch(labels, seed), optim)
                               for seed in range(2)]
        weights = model.model.decode_head.conv_seg.weight.detach().contiguous()
        logs[channels_last].append(weights)
    for a, b in zip(logs[False][:2], logs[True][:2]):
        for key in ('src.decode.loss_ce', 'mix.decode.loss_ce', 'src.loss_feat_dist',
                    'pseudo_weight'):
            torch.testing.assert_close(b[key], a[key], rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(logs[True][2], logs[False][2], rtol=1e-4, atol=1e-5)


def _forbid_device_reads(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError('a tensor value was read on the host')

    for name in ('item', 'tolist', '__bool__', '__int__', '__float__'):
        monkeypatch.setattr(torch.Tensor, name, refuse)


def test_teacher_update_never_reads_the_device(monkeypatch):
    student = torch.nn.Sequential(torch.nn.Conv2d(2, 3, 1), torch.nn.BatchNorm2d(3))
    teacher = EMATeacher(student, alpha=0.99)
    assert teacher.host_steps == 0  # read once, before the reads are forbidden
    with monkeypatch.context() as patch:
        _forbid_device_reads(patch)
        for _ in range(3):
            teacher.update_parameters(student)
    assert teacher.host_steps == 3 and int(teacher.steps) == 3


def test_teacher_steps_and_stage_follow_a_checkpoint():
    uda = build_uda()
    optim = build_optim(uda)
    uda.train_step(uda_batch(seed=1), optim)
    uda.set_phase(2, lambda_adv=0.5)
    uda.train_step(uda_batch(seed=2), optim)
    fresh = build_uda()
    assert fresh.teacher.host_steps == 0 and not fresh.student.in_phase2
    # the loader mmengine's runner uses for load_from and resume
    load_state_dict(fresh, copy.deepcopy(uda.state_dict()), strict=True)
    # iteration 0 copies and averages (2 updates), iteration 1 averages (3)
    assert fresh.teacher.host_steps == 3 and fresh.student.in_phase2
    assert fresh.student.in_phase2 and fresh.teacher.module.in_phase2


def test_icclds_step2_reads_the_host_only_where_expected():
    uda = build_uda()
    optim = build_optim(uda)
    uda.train_step(uda_batch(seed=1), optim)
    uda.set_phase(2, lambda_adv=0.5)
    reads = collections.Counter()
    with count_host_reads(reads):
        uda.train_step(uda_batch(seed=2), optim)
    ours = collections.Counter()
    for (site, read, device), count in reads.items():
        if site.startswith('mmseg_iccld'):
            ours[(site.split(':')[0], site.split('(')[-1].rstrip(')'), device)] += count
    assert ours == {
        # one check per loss dict: source, mixed, target, discriminator
        ('mmseg_iccld/models/uda/loss_guard.py', 'nonfinite_terms', 'cpu'): 4,
        # the coin flips of color jitter and blur come from the CPU generator
        ('mmseg_iccld/models/uda/classmix.py', 'color_jitter', 'cpu'): 1,
        ('mmseg_iccld/models/uda/classmix.py', 'gaussian_blur', 'cpu'): 1,
        # the DDIM timesteps live on the CPU: the teacher's pseudo-labels and the training
        # chains of the source, mixed and target passes
        ('mmseg_iccld/models/diffusion/mask_diffusion.py', 'sample', 'cpu'): 4,
    }


@pytest.mark.parametrize('spec,expected', [
    ('configs/iccld/gta2cs.py', ('configs/iccld/gta2cs.py', {})),
    ('configs/iccld/gta2cs.py@model.channels_last=True@model.model.backbone.type=X',
     ('configs/iccld/gta2cs.py', {'model.channels_last': True,
                                  'model.model.backbone.type': 'X'})),
])
def test_benchmark_entry_overrides(spec, expected):
    from mmseg_iccld.apis.measure import entry_label, split_entry
    assert split_entry(spec) == expected
    assert entry_label(spec).endswith('gta2cs' + ''.join(f' [{p}]' for p in spec.split('@')[1:]))
    with pytest.raises(ValueError, match='KEY=VALUE'):
        split_entry('configs/iccld/gta2cs.py@channels_last')


def test_schedule_iterations_of_daformer_and_iccld_phases():
    from mmseg_iccld.apis.config_loading import load_config
    from mmseg_iccld.apis.measure import schedule_iters
    daformer = load_config(osp.join(ROOT, 'configs', 'daformer', 'gta2cs.py'))
    iccld = load_config(osp.join(ROOT, 'configs', 'iccld', 'gta2cs.py'))
    assert schedule_iters(daformer) == 40000
    assert (schedule_iters(iccld, 1), schedule_iters(iccld, 2)) == (40000, 40000)


def test_whole_schedule_line_names_untimed_phases():
    from tools.analysis_tools.benchmark import to_markdown

    def row(config, phase, hours):
        return dict(config=config, phase=phase, train_iter_s=hours, schedule_hours=hours)

    report = dict(device='cpu', torch='t', amp=None, date='d', configs=['a.py', 'b.py', 'c.py'],
                  entries={'a': row('a.py', None, 1.0), 'b1': row('b.py', 1, 2.0),
                           'b2': row('b.py', 2, 3.0), 'c2': row('c.py', 2, 4.0)})
    last = to_markdown(report).splitlines()[-1]
    # b: both phases timed, summed; c: phase 2 alone is not the whole schedule
    assert last.endswith('a: 1.00 h; b: 5.00 h; c: 4.00 h (phase 2 only).')
    # files recorded before the rename call the phase 'step'
    report['entries']['c2']['step'] = report['entries']['c2'].pop('phase')
    assert to_markdown(report).splitlines()[-1] == last


def test_compiled_student_modules_train_like_eager_ones():
    from mmengine.optim import build_optim_wrapper
    from tiny_models import random_uda_batch
    labels = torch.zeros(2, 1, 64, 64, dtype=torch.long)
    labels[:, :, 32:] = 13
    segmentor = tiny_daformer()
    segmentor['decode_head']['dropout_ratio'] = 0.0
    logs = {}
    for compile_modules in ((), ('backbone', 'decode_head')):
        torch.manual_seed(0)
        # dynamo's tracing without code generation: the plumbing, not the speed
        model = build_dacs(dacs_config(segmentor, compile_modules=compile_modules,
                                       compile_cfg=dict(backend='eager')))
        head = model.model.decode_head
        assert ('forward' in vars(head)) == bool(compile_modules)  # compiled instance forward
        assert 'forward' not in vars(model.teacher.module.decode_head)  # the teacher is eager
        optim = build_optim_wrapper(model, dict(optimizer=dict(type='AdamW', lr=1e-3)))
        torch.manual_seed(1)
        logs[compile_modules] = [model.train_step(random_uda_batch(labels, seed), optim)
                                 for seed in range(2)]
    for eager, compiled in zip(*logs.values()):
        for key in ('src.decode.loss_ce', 'mix.decode.loss_ce', 'pseudo_weight'):
            torch.testing.assert_close(compiled[key], eager[key], rtol=1e-5, atol=1e-6)


def test_compile_of_a_missing_module_names_it():
    with pytest.raises(ValueError, match="no submodule 'diffusion.unet'"):
        build_dacs(dacs_config(tiny_daformer(), compile_modules=['diffusion.unet']))
