"""--amp of tools/train.py: every optimizer wrapper of a config, ICCLD's two included, becomes
an AmpOptimWrapper (bf16 without loss scaling, fp16 with dynamic scaling); refused on a CPU."""
import pytest
import torch

from tools._common import apply_amp, load_config

ICCLD = 'configs/iccld/gta2cs.py'
DAFORMER = 'configs/daformer/gta2cs.py'


@pytest.fixture
def fake_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    monkeypatch.setattr(torch.cuda, 'is_bf16_supported', lambda *args, **kwargs: True)


def test_both_iccld_optimizers_get_bf16_without_loss_scaling(fake_gpu):
    cfg = load_config(ICCLD)
    apply_amp(cfg)  # bfloat16 where the GPU supports it
    for name in ('model', 'discriminator'):
        wrapper = cfg.optim_wrapper[name]
        assert (wrapper.type, wrapper.dtype, wrapper.loss_scale) == (
            'AmpOptimWrapper', 'bfloat16', 1.0)
    # the optimizers themselves are untouched
    assert cfg.optim_wrapper.model.optimizer.lr == 6e-05
    assert cfg.optim_wrapper.discriminator.optimizer.type == 'Adam'
    assert cfg.optim_wrapper.constructor == 'MultiOptimWrapperConstructor'


def test_single_wrapper_gets_fp16_with_dynamic_scaling(fake_gpu):
    cfg = load_config(DAFORMER)
    apply_amp(cfg, 'float16')
    wrapper = cfg.optim_wrapper
    assert (wrapper.type, wrapper.dtype, wrapper.loss_scale) == (
        'AmpOptimWrapper', 'float16', 'dynamic')


def test_amp_is_refused_without_a_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    with pytest.raises(ValueError, match='--amp needs a CUDA GPU'):
        apply_amp(load_config(DAFORMER))


def test_unknown_wrapper_type_is_a_clear_error(fake_gpu):
    cfg = load_config(DAFORMER)
    cfg.optim_wrapper.type = 'SomeOtherWrapper'
    with pytest.raises(ValueError, match='optim_wrapper \\(type SomeOtherWrapper\\)'):
        apply_amp(cfg)
