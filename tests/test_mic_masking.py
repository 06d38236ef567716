"""MIC: the patch mask, the masked target and its loss inside a DACS iteration."""
import math

import pytest
import torch
from mmengine.optim import OptimWrapper
from mmseg.utils import register_all_modules

import mmseg_iccld  # noqa: F401
from mmseg_iccld.models.uda.dacs import DACS
from mmseg_iccld.models.uda.masking import MaskedImageConsistency, block_mask
from tiny_models import build_uda, dacs_config, random_uda_batch, tiny_daformer

register_all_modules(init_default_scope=True)
torch.set_num_threads(1)
SIZE = 64
MIC = dict(mask_ratio=0.7, mask_block_size=16, loss_weight=1.0, color_augmentation=True)
LOG_KEYS = {'loss', 'src.decode.loss_ce', 'src.decode.acc_seg', 'src.loss_feat_dist',
            'mix.decode.loss_ce', 'mix.decode.acc_seg', 'pseudo_weight'}


def build_dacs(**kwargs):
    return build_uda(dacs_config(tiny_daformer(), **kwargs))


def uda_batch(n: int = 2, seed: int = 0, labels=None) -> dict:
    """Random source and target images; source labels car | road over person | ignored."""
    if labels is None:
        labels = torch.full((n, 1, SIZE, SIZE), 255, dtype=torch.long)
        labels[:, :, :32, :32], labels[:, :, :32, 32:], labels[:, :, 32:, :32] = 13, 0, 11
    return random_uda_batch(labels, seed)


def test_block_mask_drops_the_stated_fraction_of_whole_patches():
    generator = torch.Generator().manual_seed(0)
    mask = block_mask(4, 512, 256, 8, 0.7, generator=generator)
    assert mask.shape == (4, 1, 512, 256)
    blocks = mask.reshape(4, 64, 8, 32, 8)  # (n, row of patches, 8, column, 8)
    first = blocks[:, :, :1, :, :1]
    assert torch.all(blocks == first)  # every 8x8 patch is kept or dropped as a whole
    assert set(mask.unique().tolist()) == {0.0, 1.0}
    dropped = 1 - first.mean().item()
    # 8192 patches, each dropped with p = 0.7: 3 standard deviations are 0.015
    assert abs(dropped - 0.7) < 3 * math.sqrt(0.7 * 0.3 / 8192)
    # every image gets its own patches
    assert not torch.equal(mask[0], mask[1])


def test_block_mask_cuts_border_patches_and_honours_the_extreme_ratios():
    generator = torch.Generator().manual_seed(1)
    mask = block_mask(64, 20, 30, 8, 0.5, generator=generator)
    assert mask.shape == (64, 1, 20, 30)
    for rows in (slice(0, 8), slice(8, 16), slice(16, 20)):
        for cols in (slice(0, 8), slice(8, 16), slice(16, 24), slice(24, 30)):
            patch = mask[:, :, rows, cols]
            assert torch.all(patch == patch[:, :, :1, :1]), (rows, cols)
    assert torch.all(block_mask(2, 64, 64, 16, 0.0) == 1)
    assert torch.all(block_mask(2, 64, 64, 16, 1.0) == 0)
    with pytest.raises(ValueError):
        MaskedImageConsistency(mask_ratio=1.5)


def test_mask_images_zeroes_dropped_patches_of_the_normalised_image():
    torch.manual_seed(2)
    images = torch.randn(8, 3, 128, 128)
    masking = MaskedImageConsistency(mask_ratio=0.7, mask_block_size=32)
    masked = masking.mask_images(images)
    kept = (masked != 0).all(dim=1, keepdim=True)  # a random image has no exact zeros
    assert torch.equal(masked, images * kept)
    # 128 patches of 32x32: the dropped share of pixels is the dropped share of patches
    assert abs((1 - kept.float().mean().item()) - 0.7) < 3 * math.sqrt(0.21 / 128)


def test_masked_target_is_the_augmented_target_with_its_pseudo_label():
    torch.manual_seed(0)
    dacs = build_dacs(mask_consistency=MIC, color_jitter_probability=1.0)
    data = dacs.data_preprocessor(uda_batch(), True)
    target = data['target_inputs']
    labels = torch.randint(0, 19, (2, 64, 64))
    weights = torch.rand(2, 64, 64)
    torch.manual_seed(7)
    augmented = dacs.photometric_augmentation(target)
    torch.manual_seed(7)  # the same draws: augmentation first, then the mask
    masked, samples = dacs.mask_consistency.masked_batch(
        target, data['target_data_samples'], labels, weights, dacs.photometric_augmentation)
    kept = (masked != 0).all(dim=1, keepdim=True)
    assert torch.allclose(masked, augmented * kept)
    assert not torch.allclose(augmented, target)  # jittered with probability 1
    assert 0.4 < 1 - kept.float().mean().item() < 0.95  # 2 x 16 patches of 16x16
    for sample, label, weight in zip(samples, labels, weights):
        assert torch.equal(sample.gt_sem_seg.data[0], label)
        assert torch.equal(sample.seg_weight.data[0], weight)

    plain = build_dacs(mask_consistency=dict(MIC, color_augmentation=False))
    masked, _ = plain.mask_consistency.masked_batch(
        target, data['target_data_samples'], labels, weights, plain.photometric_augmentation)
    kept = (masked != 0).all(dim=1, keepdim=True)
    assert torch.equal(masked, target * kept)


class RecordingOptimWrapper(OptimWrapper):
    """Records the order of backward passes and optimizer steps."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.calls = []

    def backward(self, loss, **kwargs):
        self.calls.append('backward')
        super().backward(loss, **kwargs)

    def step(self, **kwargs):
        self.calls.append('step')
        super().step(**kwargs)


def _wrapper(dacs) -> RecordingOptimWrapper:
    params = [p for p in dacs.parameters() if p.requires_grad]
    return RecordingOptimWrapper(torch.optim.AdamW(params, lr=1e-3))


def test_masked_loss_has_its_own_backward_before_the_one_optimizer_step():
    torch.manual_seed(0)
    # threshold 0: every pixel confident, so the masked loss is not 0 at initialisation
    dacs = build_dacs(mask_consistency=MIC, pseudo_threshold=0.0)
    wrapper = _wrapper(dacs)
    log = dacs.train_step(uda_batch(), wrapper)
    assert wrapper.calls == ['backward', 'backward', 'backward', 'step']
    assert {'masked.decode.loss_ce', 'masked.decode.acc_seg'} | LOG_KEYS <= set(log)
    total = sum(v for k, v in log.items() if 'loss' in k and k != 'loss')
    assert torch.allclose(log['loss'], total)
    assert log['masked.decode.loss_ce'] > 0

    off = build_dacs()
    assert off.mask_consistency is None
    wrapper = _wrapper(off)
    log = off.train_step(uda_batch(), wrapper)
    assert wrapper.calls == ['backward', 'backward', 'step']
    assert not any(k.startswith('masked.') for k in log)


def test_masked_loss_carries_the_pseudo_label_weight_and_lambda():
    labels = torch.full((2, 1, 64, 64), 255, dtype=torch.long)  # no source pixel counts
    torch.manual_seed(0)
    never = build_dacs(mask_consistency=MIC, pseudo_threshold=2.0)  # pseudo weight 0
    log = never.train_step(uda_batch(labels=labels), _wrapper(never))
    assert log['pseudo_weight'].item() == 0 and log['masked.decode.loss_ce'].item() == 0

    logs = {}
    for weight in (1.0, 2.5):
        torch.manual_seed(0)
        dacs = build_dacs(mask_consistency=dict(MIC, loss_weight=weight), pseudo_threshold=0.0)
        torch.manual_seed(1)
        logs[weight] = dacs.train_step(uda_batch(labels=labels), _wrapper(dacs))
    assert logs[1.0]['pseudo_weight'].item() == 1.0
    assert logs[1.0]['masked.decode.loss_ce'].item() > 0
    assert torch.allclose(logs[2.5]['masked.decode.loss_ce'],
                          2.5 * logs[1.0]['masked.decode.loss_ce'], rtol=1e-5)
    assert torch.equal(logs[2.5]['masked.decode.acc_seg'], logs[1.0]['masked.decode.acc_seg'])


def test_a_subclass_with_its_own_extra_pass_keeps_mic_after_it():
    calls = []

    class OwnPass(DACS):
        def extra_passes(self, it):
            calls.append('own')
            super().extra_passes(it)

        def masked_pass(self, it):
            calls.append('masked')
            super().masked_pass(it)

    cfg = dacs_config(tiny_daformer(), mask_consistency=MIC)
    cfg.pop('type')
    dacs = OwnPass(**cfg)
    dacs.init_weights()
    log = dacs.train(True).train_step(uda_batch(), _wrapper(dacs))
    assert calls == ['own', 'masked']
    assert 'masked.decode.loss_ce' in log
