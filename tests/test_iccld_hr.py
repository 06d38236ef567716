"""ICCLD-HR: ICCLD's phases on HRDA's context and detail views (docs/method.md 6.3)."""
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.runner import Runner
from mmengine.structures import PixelData
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample
from mmseg.utils import register_all_modules

import mmseg_iccld  # noqa: F401
from mmseg_iccld.models.segmentors.iccld_hr import crop_mask_estimate
from tiny_models import on_benchmark, random_uda_batch

register_all_modules(init_default_scope=True)
torch.set_num_threads(1)

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))


def load(name: str) -> Config:
    return Config.fromfile(osp.join(REPO, 'configs', name))


def tiny_segmentor(phase: int = 2):
    torch.manual_seed(0)
    model = MODELS.build(load('_base_/models/iccld_hr_mit_tiny.py').model)
    model.init_weights()
    model.set_phase(phase)
    return model


def samples(n: int, size: int) -> list:
    out = []
    for i in range(n):
        sample = SegDataSample()
        generator = torch.Generator().manual_seed(i)
        sample.gt_sem_seg = PixelData(data=torch.randint(0, 19, (1, size, size),
                                                         generator=generator))
        sample.set_metainfo(dict(img_shape=(size, size), ori_shape=(size, size),
                                 pad_shape=(size, size)))
        out.append(sample)
    return out


def record_chains(monkeypatch, model) -> list:
    """Patch the sampler to record the image latent of every chain it runs."""
    chains = []
    sample = model.diffusion.sample
    monkeypatch.setattr(model.diffusion, 'sample', lambda z, *a: chains.append(z) or
                        sample(z, *a))
    return chains


def shapes(tensors: list) -> list:
    return [tuple(t.shape) for t in tensors]


def wide_image():
    """One 256x512 image and its metas: three outer windows of 256 at stride 128."""
    metas = [dict(img_shape=(256, 512), ori_shape=(256, 512), pad_shape=(256, 512))]
    return torch.randn(1, 3, 256, 512), metas


def test_crop_mask_estimate_takes_each_windows_cells_window_major():
    # context cells of 8 pixels; two images, the second the negative of the first
    row = torch.tensor([0., 4., 8., 12.])
    mask = torch.stack([row.expand(4, 4), -row.expand(4, 4)]).unsqueeze(1)  # (2, 1, 4, 4)
    boxes = [(0, 16, 0, 16), (16, 32, 16, 32)]
    crops = crop_mask_estimate(mask, boxes, stride=8, size=(4, 4))
    assert crops.shape == (4, 1, 4, 4)
    # window 0 holds columns 0 and 4, window 1 columns 8 and 12; bilinear x2 (half-pixel
    # centres): a, a + (b - a) / 4, a + 3 (b - a) / 4, b
    expected_0 = torch.tensor([0., 1., 3., 4.])
    expected_1 = torch.tensor([8., 9., 11., 12.])
    assert torch.allclose(crops[0, 0], expected_0.expand(4, 4))
    assert torch.allclose(crops[1, 0], -expected_0.expand(4, 4))
    assert torch.allclose(crops[2, 0], expected_1.expand(4, 4))
    assert torch.allclose(crops[3, 0], -expected_1.expand(4, 4))
    with pytest.raises(ValueError, match='grid of stride 8'):
        crop_mask_estimate(mask, [(4, 20, 0, 16)], stride=8, size=(4, 4))


def test_phase2_pass_diffuses_the_context_and_the_detail_reads_its_crop(monkeypatch):
    model = tiny_segmentor().train()
    assert model.mask_latent_stride == 8
    torch.nn.init.normal_(model.decode_head.head.mask_latent_proj.weight, std=0.1)
    chains, head_inputs = record_chains(monkeypatch, model), []
    loss = model.decode_head.loss
    monkeypatch.setattr(model.decode_head, 'loss', lambda x, *a: head_inputs.append(x) or
                        loss(x, *a))
    output = model.uda_loss(torch.randn(2, 3, 256, 256), samples(2, 256))
    losses = output.losses
    for key in ('decode.loss_ce', 'decode.hr.loss_ce', 'loss_ldm', 'loss_chain'):
        assert key in losses, key
    # one chain, on the context latent: 256 / 2 / 4 = 32 cells a side
    assert shapes(chains) == [(2, 32, 32, 32)]
    assert output.sample.shape == (2, 19, 32, 32)
    (head_input, ) = head_inputs
    (box, ) = head_input['boxes']
    assert (box[1] - box[0], box[3] - box[2]) == (128, 128) and box[0] % 8 == box[2] % 8 == 0
    stages, latent, context_mask = head_input['context']
    assert context_mask is output.sample and stages[0].shape[2:] == (32, 32)
    assert latent.shape == (2, 32, 32, 32)  # the context view's z0, on the chain's grid
    detail_stages, detail_latent, detail_mask = head_input['detail']
    assert detail_latent.shape == (2, 32, 32, 32)  # the 128x128 crop at latent stride 4
    assert torch.equal(detail_mask, crop_mask_estimate(output.sample, [box], 8, (32, 32)))
    # L_seg of the detail crop alone trains the chain through the crop of its estimate
    unet = list(model.diffusion.unet.parameters())
    grads = torch.autograd.grad(losses['decode.hr.loss_ce'], unet, allow_unused=True)
    assert any(g is not None and g.abs().sum() > 0 for g in grads)


def test_prediction_runs_one_context_chain_and_batched_detail_windows(monkeypatch):
    model = tiny_segmentor().eval()
    torch.nn.init.normal_(model.decode_head.head.mask_latent_proj.weight, std=0.1)
    calls, chains = [], record_chains(monkeypatch, model)
    model.backbone.register_forward_hook(lambda m, a, o: calls.append(tuple(a[0].shape)))
    inputs, metas = wide_image()
    with torch.no_grad():
        logits = model.inference(inputs, metas)
    assert logits.shape == (1, 19, 256, 512)
    # outer windows 256x256 at stride 128 (3, batched); each: its context (128x128) and
    # 3 x 3 detail windows of 128 at stride 64, all windows in one batch
    assert calls == [(3, 3, 128, 128), (27, 3, 128, 128)]
    assert shapes(chains) == [(3, 32, 32, 32)]
    # the mask estimate is D's input: K = 0 (m_hat0 = 0) predicts differently
    model.test_cfg['num_inference_steps'] = 0
    with torch.no_grad():
        assert not torch.allclose(model.inference(inputs, metas), logits)
    # phase 1 (K = 0) runs no chain
    model.test_cfg['num_inference_steps'] = 3
    model.set_phase(1)
    chains.clear()
    with torch.no_grad():
        model.inference(inputs, metas)
    assert chains == []


def test_phase2_starts_at_the_phase1_prediction():
    model = tiny_segmentor(phase=1).eval()
    inputs = torch.randn(1, 3, 256, 256)
    metas = [dict(img_shape=(256, 256), ori_shape=(256, 256), pad_shape=(256, 256))]
    with torch.no_grad():
        phase1 = model.inference(inputs, metas)
        model.set_phase(2)
        phase2 = model.inference(inputs, metas)
    # the projection of m_hat0 starts at zero in D of both views
    assert torch.allclose(phase1, phase2, atol=1e-6)


def test_several_draws_report_their_uncertainty():
    model = tiny_segmentor().eval()
    torch.nn.init.normal_(model.decode_head.head.mask_latent_proj.weight, std=0.1)
    model.test_cfg['num_samples'] = 2
    with torch.no_grad():
        (result, ) = model.predict(torch.randn(1, 3, 256, 256), samples(1, 256))
    assert result.uncertainty.data.shape == (1, 256, 256)
    assert result.pred_sem_seg.data.shape == (1, 256, 256)


@pytest.mark.parametrize('name, hrda', [('iccld/gta2cs_hr.py', 'hrda/gta2cs.py'),
                                        ('iccld/synthia2cs_hr.py', 'hrda/synthia2cs.py')])
def test_hr_configs_take_hrdas_views_and_data_and_icclds_phases(name, hrda):
    cfg, hrda_cfg = load(name), load(hrda)
    iccld = load(name.replace('_hr', ''))
    segmentor = cfg.model.model
    assert cfg.model.type == 'ICCLDUDA' and segmentor.type == 'ICCLDHR'
    for key in ('scales', 'hr_crop_size', 'crop_coord_divisible',
                'hr_slide_inference', 'hr_slide_overlapping'):
        assert segmentor[key] == hrda_cfg.model.model[key], key
    assert segmentor.test_cfg == dict(iccld.model.model.test_cfg, mode='slide',
                                      batched_slide=True, crop_size=(1024, 1024),
                                      stride=(512, 512))
    for key in ('backbone', 'neck', 'diffusion', 'chain_loss_weight', 'chain_grad'):
        assert segmentor[key] == iccld.model.model[key], key
    head = segmentor.decode_head
    assert head.type == 'ICCLDHRHead'
    assert head.single_scale_head == iccld.model.model.decode_head
    assert (head.hr_loss_weight, head.attention_embed_dims) == (0.1, 256)
    assert cfg.train_dataloader == hrda_cfg.train_dataloader
    assert cfg.val_evaluator == hrda_cfg.val_evaluator
    assert cfg.custom_hooks == iccld.custom_hooks and cfg.optim_wrapper == iccld.optim_wrapper
    assert cfg.train_cfg.max_iters == 80000
    assert tuple(cfg.model.pseudo_margins) == (0, 0, 0, 0)
    assert tuple(cfg.model.adv_margins) == (30, 240, 0, 0)


@pytest.mark.parametrize('name', ['iccld/gta2cs_hr.py', 'iccld/synthia2cs_hr.py'])
def test_mitb5_hr_configs_run_a_phase2_iteration_on_a_reduced_crop(name):
    """The MiT-B5 configs as they are, with a 128x128 crop (64x64 detail windows), random
    weights instead of the pretrained file, and one image per domain."""
    cfg = load(name)
    segmentor = cfg.model.model
    segmentor.backbone.init_cfg = None
    segmentor.hr_crop_size = (64, 64)
    segmentor.test_cfg.update(crop_size=(128, 128), stride=(64, 64))
    cfg.model.adv_margins = (0, 8, 0, 0)
    torch.manual_seed(0)
    uda = MODELS.build(cfg.model).train()
    uda.set_phase(2, lambda_adv=0.1)
    optim = build_optim_wrapper(uda, cfg.optim_wrapper)
    label = torch.zeros(1, 1, 128, 128, dtype=torch.long)
    label[:, :, 64:] = 10
    log_vars = uda.train_step(random_uda_batch(label, 0), optim)
    for key in ('src.decode.loss_ce', 'src.decode.hr.loss_ce', 'src.loss_ldm',
                'src.loss_chain', 'mix.loss_adv_gen', 'tgt.loss_ldm', 'dis.loss'):
        assert key in log_vars and torch.isfinite(log_vars[key]), key


def test_tiny_iccld_hr_trains_through_the_switch_and_evaluates(synthetic_benchmark, tmp_path):
    cfg = load('synthetic/iccld_hr_tiny.py')
    on_benchmark(cfg, synthetic_benchmark, str(tmp_path))
    cfg.custom_hooks[0].switch_iter = 1
    runner = Runner.from_cfg(cfg)
    runner.train()
    scalars = runner.message_hub.log_scalars
    for key in ('train/src.decode.hr.loss_ce', 'train/src.loss_ldm', 'train/src.loss_chain',
                'train/src.loss_feat_dist', 'train/tgt.loss_ldm', 'train/dis.loss',
                'val/mIoU'):
        assert key in scalars, key
    assert runner.model.student.in_phase2
    assert 0 <= runner.message_hub.get_scalar('val/mIoU').current() <= 100
