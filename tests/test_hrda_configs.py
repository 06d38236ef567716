"""HRDA configs: the paper's settings, and the tiny one trains on the generated benchmark."""
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner
from mmseg.registry import MODELS
from mmseg.utils import register_all_modules

import mmseg_iccld  # noqa: F401
from tiny_models import on_benchmark
from mmseg_iccld.engine.pretrained_files import check_pretrained_files

register_all_modules(init_default_scope=True)
torch.set_num_threads(1)

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))


def load(name: str) -> Config:
    return Config.fromfile(osp.join(REPO, 'configs', name))


@pytest.mark.parametrize('name, source, evaluator', [
    ('hrda/gta2cs.py', 'GTA5Dataset', 'IoUMetric'),
    ('hrda/synthia2cs.py', 'SynthiaDataset', 'SynthiaIoUMetric'),
])
def test_hrda_configs_follow_the_paper(name, source, evaluator):
    cfg = load(name)
    daformer = load(name.replace('hrda/', 'daformer/'))
    model = cfg.model
    assert model.type == 'DACS'
    assert (model.alpha, model.pseudo_threshold) == (0.999, 0.968)
    # HRDA's margins on the full 2048x1024 target, before the crop; none in the crop's frame
    assert tuple(model.pseudo_margins) == (0, 0, 0, 0)
    target = cfg.train_dataloader.dataset.target.pipeline
    types = [t.type for t in target]
    assert types.index('Resize') < types.index('PseudoLabelMargins') < types.index('RandomCrop')
    assert tuple(target[types.index('PseudoLabelMargins')].margins) == (30, 240, 30, 30)
    assert types[-1] == 'PackUDATargetInputs'
    assert model.imnet_feature_dist_lambda == 0.005
    assert list(model.imnet_feature_dist_classes) == [6, 7, 11, 12, 13, 14, 15, 16, 17, 18]
    assert model.get('mask_consistency') is None

    segmentor = model.model
    assert segmentor.type == 'HRDAEncoderDecoder'
    assert list(segmentor.scales) == [1, 0.5] and tuple(segmentor.hr_crop_size) == (512, 512)
    assert segmentor.crop_coord_divisible == 8
    assert segmentor.hr_slide_inference and segmentor.hr_slide_overlapping
    assert segmentor.test_cfg == dict(mode='slide', batched_slide=True,
                                      crop_size=(1024, 1024), stride=(512, 512))
    assert segmentor.backbone == daformer.model.model.backbone  # MiT-B5, pretrained file
    head = segmentor.decode_head
    assert head.type == 'HRDAHead'
    assert (head.hr_loss_weight, head.lr_loss_weight) == (0.1, 0.0)
    assert head.attention_embed_dims == 256 and head.attention_classwise
    assert head.single_scale_head == daformer.model.model.decode_head

    assert cfg.crop_size == (1024, 1024)
    dataset = cfg.train_dataloader.dataset
    assert dataset.source.type == source
    assert dataset.rare_class_sampling == dict(class_temp=0.01, min_pixels=3000,
                                               min_crop_ratio=2.0)
    assert dataset.target.pipeline[2].scale == (2048, 1024)
    assert cfg.val_evaluator.type == evaluator
    assert cfg.train_cfg.max_iters == 40000 and cfg.optim_wrapper.optimizer.lr == 6e-5
    assert cfg.param_scheduler == daformer.param_scheduler


def test_hrda_head_of_the_paper_config_builds_daformers_head_and_a_light_attention():
    head = MODELS.build(load('hrda/gta2cs.py').model.model.decode_head)
    assert type(head.head).__name__ == 'DAFormerHead' and head.head.channels == 256
    attention = head.scale_attention
    # DAFormer's embedding (4 x 256) with a 1x1 fusion, one sigmoid map per class
    assert attention.fusion.conv.weight.shape == (256, 4 * 256, 1, 1)
    assert attention.conv_seg.weight.shape == (19, 256, 1, 1)
    assert not hasattr(head, 'conv_seg')
    n_attention = sum(p.numel() for p in attention.parameters())
    assert n_attention < sum(p.numel() for p in head.head.parameters()) / 4


def test_tiny_config_composes_the_hrda_benchmark(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = load('synthetic/hrda_tiny.py')
    daformer = load('synthetic/daformer_tiny.py')
    check_pretrained_files(cfg)
    segmentor = cfg.model.model
    assert segmentor.type == 'HRDAEncoderDecoder' and tuple(segmentor.hr_crop_size) == (128, 128)
    assert segmentor.decode_head.single_scale_head == daformer.model.model.decode_head
    assert segmentor.test_cfg.crop_size == (256, 256) and segmentor.test_cfg.stride == (128, 128)
    assert cfg.crop_size == (256, 256)
    dataset = cfg.train_dataloader.dataset
    assert dataset.source.pipeline[2].scale == (512, 288)
    assert dataset.target.pipeline[2].scale == (512, 256)
    assert cfg.val_dataloader.dataset.pipeline[1].scale == (512, 256)
    assert dataset.rare_class_sampling.min_crop_ratio == 2.0
    assert tuple(cfg.model.pseudo_margins) == (0, 0, 0, 0)
    assert cfg.param_scheduler == daformer.param_scheduler
    assert cfg.train_cfg.max_iters == daformer.train_cfg.max_iters == 2000
    dacs = MODELS.build(cfg.model)
    assert sum(p.numel() for p in dacs.model.parameters()) < 1_000_000


def test_tiny_hrda_trains_two_iterations_and_evaluates_on_the_benchmark(synthetic_benchmark,
                                                                        tmp_path):
    cfg = on_benchmark(load('synthetic/hrda_tiny.py'), synthetic_benchmark, str(tmp_path))
    runner = Runner.from_cfg(cfg)
    shapes = []
    teacher = runner.model.teacher.module
    teacher.backbone.register_forward_hook(lambda m, a, o: shapes.append(tuple(a[0].shape)))
    runner.train()
    scalars = runner.message_hub.log_scalars
    for key in ('train/src.decode.loss_ce', 'train/src.decode.hr.loss_ce',
                'train/src.loss_feat_dist', 'train/mix.decode.loss_ce',
                'train/mix.decode.hr.loss_ce', 'train/pseudo_weight', 'val/mIoU'):
        assert key in scalars, key
    assert not any(key.startswith('train/masked.') for key in scalars)
    # the teacher labels each 256x256 target crop from its 128x128 context and 3 x 3
    # overlapping 128x128 detail windows of both crops in one batch
    assert shapes == [(2, 3, 128, 128), (18, 3, 128, 128)] * 2
    assert int(runner.model.teacher.steps) == 3
    assert 0 <= runner.message_hub.get_scalar('val/mIoU').current() <= 100
