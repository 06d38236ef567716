"""tools/analysis_tools/iccld_probe.py's measurements on a tiny random ICCLD UDA model and hand-made
tensors: the candidate inputs share the iteration's draw, a fresh discriminator finds
separable domains and not identical ones, the saturated fraction counts the clamp bound."""
import pytest
import torch
from mmengine.config import ConfigDict
from mmseg.registry import MODELS
from mmseg.utils import register_all_modules

import mmseg_iccld  # noqa: F401
from tiny_models import MEAN, STD, random_uda_batch, tiny_iccld
from tools.analysis_tools.probe_core import (CANDIDATES, discriminator_results, probe_batch,
                                     saturated_fraction, saturation)

register_all_modules(init_default_scope=True)

SIZE = 64
NUM_CLASSES = 19


def tiny_iccld_uda():
    """A random tiny ICCLDUDA in phase 2 and eval mode; the teacher equals the student."""
    torch.manual_seed(0)
    uda = MODELS.build(ConfigDict(
        type='ICCLDUDA', model=tiny_iccld(NUM_CLASSES), adv_margins=(0, 8, 0, 0),
        discriminator=dict(type='DomainDiscriminator', in_channels=NUM_CLASSES,
                           channels=(8, 16), pool=False),
        data_preprocessor=dict(type='UDADataPreprocessor', mean=MEAN, std=STD,
                               bgr_to_rgb=True, size_divisor=32, seg_pad_val=255),
        pseudo_margins=(0, 0, 0, 0)))
    uda.init_weights()
    uda.initialize_frozen_copies()
    uda.set_phase(2)
    return uda.eval()


def uda_batch(seed: int) -> dict:
    label = torch.zeros(2, 1, SIZE, SIZE, dtype=torch.long)
    label[:, :, :SIZE // 2] = 10
    label[:, :, 24:40, 16:48] = 13
    return random_uda_batch(label, seed)


def test_probe_batch_shares_the_draw_and_compares_d_with_the_teacher():
    uda = tiny_iccld_uda()
    values, seg, saturated = probe_batch(uda, uda_batch(seed=0))
    assert set(values) == set(CANDIDATES)
    # 64 px -> 16 latent rows, adv_margins cut ceil(8 / 4) = 2 of them
    for name, per_domain in values.items():
        channels = 8 if name == 'cond' else NUM_CLASSES
        assert [tuple(v.shape) for v in per_domain] == [(2, channels, 14, 16)] * 3, name
        assert all(torch.isfinite(v).all() for v in per_domain), name
    assert all(v.abs().max() <= 1 for v in values['sample'])
    # eps = eps_hat - residual is the source pass's draw in all three domains ...
    eps = [e - r for e, r in zip(values['eps_hat'], values['residual'])]
    assert torch.allclose(eps[0], eps[1], atol=1e-5)
    assert torch.allclose(eps[0], eps[2], atol=1e-5)
    # ... and the control redraws it
    assert not torch.allclose(values['eps_hat_redrawn'][0], values['eps_hat'][0], atol=1e-2)
    # the teacher is the student, so D reproduces the pseudo-labels exactly
    assert set(seg) == {'src', 'tgt_pseudo'}
    assert seg['tgt_pseudo']['pixels'] == 2 * SIZE * SIZE
    assert seg['tgt_pseudo']['d'] == seg['tgt_pseudo']['pixels']
    assert seg['tgt_pseudo']['latent_pixels'] == 2 * 16 * 16
    assert seg['tgt_pseudo']['latent_d'] == seg['tgt_pseudo']['latent_pixels']
    assert 0 <= seg['src']['chain'] <= seg['src']['pixels']
    assert set(saturated) == {'src', 'mix', 'tgt'}
    for stats in saturated.values():
        assert abs(stats['any'] - stats['high'] - stats['low']) < 1e-6
        assert all(0 <= f <= 1 for f in stats.values())


def test_fresh_discriminator_tells_separable_domains_and_not_identical_ones():
    uda = tiny_iccld_uda()
    generator = torch.Generator().manual_seed(0)
    batches = [torch.randn(2, NUM_CLASSES, 16, 16, generator=generator) for _ in range(3)]
    offsets = 5 * torch.eye(3, NUM_CLASSES)[:, :, None, None]  # domain d: +5 on channel d
    cache = dict(
        sample=[(x, x.clone(), x.clone()) for x in batches],
        separable=[tuple(x + offsets[d] for d in range(3)) for x in batches])
    # five steps: a larger learning rate than the tool's 1e-3 lets them suffice
    result = discriminator_results(cache, uda.discriminator, steps=5, seed=0, lr=1e-2)
    assert (result['train_batches'], result['held_out_batches']) == (2, 1)
    separable = result['candidates']['separable']['held_out']
    assert separable['patch'] > 0.9 and separable['image_majority'] > 0.9
    assert separable['patches'] == 3 * 2 * 4 * 4  # two stride-2 layers: 16 -> 8 -> 4
    # identical inputs get identical decisions: exactly one domain in three is right
    for name in ('sample', 'checkpoint_discriminator_on_sample'):
        held_out = result['candidates'][name]['held_out']
        for key in ('patch', 'image_majority', 'image_mean_logits'):
            assert abs(held_out[key] - 1 / 3) < 1e-6, (name, key)


def test_saturated_fraction_counts_entries_at_the_clamp_bound():
    estimate = torch.tensor([1.0, -1.0, 0.3, 0.0, 1.0, -0.5, 0.999, -1.0])
    assert saturated_fraction(estimate, 1.0) == 0.5
    assert saturated_fraction(2 * estimate, 2.0) == 0.5
    assert saturated_fraction(estimate, 2.0) == 0.0
    # two latent pixels of three channels: one clean code, one with two channels at +1
    code = torch.tensor([[1.0, 1.0], [-1.0, 1.0], [-0.2, -1.0]])[None, :, :, None]
    stats = saturation(code, 1.0)
    expected = dict(any=5 / 6, high=3 / 6, low=2 / 6, tied_argmax=1 / 2)
    assert stats == pytest.approx(expected)
