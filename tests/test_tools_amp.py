"""--amp of tools/train.py: every optimizer wrapper of a config, ICCLD's two included, becomes
an AmpOptimWrapper (bf16 without loss scaling, fp16 with dynamic scaling); refused on a CPU."""
import pytest
import torch

from mmseg_iccld.apis.config_loading import apply_amp, load_config

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


def test_iccld_trains_and_predicts_under_bf16_autocast():
    """What AmpOptimWrapper's context does on a GPU, here with the CPU's bf16 autocast: both
    steps and the K-step prediction run with mixed dtypes and give finite numbers."""
    from test_iccld_uda import build_optim, build_uda, uda_batch
    uda = build_uda()
    optim = build_optim(uda)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        log1 = uda.train_step(uda_batch(seed=1), optim)
        uda.set_phase(2, lambda_adv=0.5)
        log2 = uda.train_step(uda_batch(seed=2), optim)
        uda.eval()
        batch = uda_batch(seed=3)
        samples = uda.test_step(dict(inputs=batch['target_inputs'],
                                     data_samples=batch['target_data_samples']))
    assert {'src.loss_ldm', 'tgt.loss_adv_gen', 'dis.loss'} <= set(log2)
    for log in (log1, log2):
        assert all(torch.isfinite(value).all() for value in log.values())
    assert len(samples) == 2 and samples[0].pred_sem_seg.data.shape == (1, 64, 64)
    assert torch.isfinite(samples[0].seg_logits.data.float()).all()
