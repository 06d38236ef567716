"""Tiny model configs shared by the tests: DAFormer's network (MiT + DAFormerHead) at 8 to 64
channels, ICCLD on the same MiT, and the DACS wrapper around any segmentor."""
import torch
from mmengine.config import ConfigDict
from mmengine.structures import PixelData
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

MEAN = [123.675, 116.28, 103.53]
STD = [58.395, 57.12, 57.375]


def tiny_mit() -> dict:
    """A MiT with 8, 16, 40, 64 channels and one layer per stage, no drop path."""
    return dict(
        type='MixVisionTransformer', in_channels=3, embed_dims=8, num_stages=4,
        num_layers=[1, 1, 1, 1], num_heads=[1, 2, 5, 8], patch_sizes=[7, 3, 3, 3],
        sr_ratios=[8, 4, 2, 1], out_indices=(0, 1, 2, 3), drop_path_rate=0.0)


def tiny_daformer_head() -> dict:
    """DAFormerHead on ``tiny_mit``'s stages, 19 classes, BN."""
    return dict(
        type='DAFormerHead', in_channels=[8, 16, 40, 64], in_index=[0, 1, 2, 3], channels=8,
        embed_dims=8, num_classes=19, norm_cfg=dict(type='BN'), align_corners=False,
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0))


def tiny_daformer() -> dict:
    """DAFormer's network (EncoderDecoder of ``tiny_mit`` and ``tiny_daformer_head``)."""
    return dict(type='EncoderDecoder', backbone=tiny_mit(), decode_head=tiny_daformer_head(),
                train_cfg=dict(), test_cfg=dict(mode='whole'))


def tiny_iccld(num_classes: int = 19) -> dict:
    """ICCLD on ``tiny_mit``'s stages: a 16-channel latent, a 2-level v-prediction UNet, an
    inter-coder head with BN, K = 2 at test time."""
    return dict(
        type='ICCLD', backbone=tiny_mit(),
        neck=dict(type='LatentProjector', in_channels=[8, 16, 40, 64], latent_channels=16),
        diffusion=dict(type='MaskDiffusion', num_classes=num_classes, latent_channels=16,
                       cond_channels=8, block_out_channels=(16, 32), norm_num_groups=8,
                       prediction_type='v_prediction'),
        decode_head=dict(type='InterCoderHead', in_channels=[8, 16, 40, 64],
                         in_index=[0, 1, 2, 3], channels=16, latent_channels=16,
                         num_classes=num_classes, norm_cfg=dict(type='BN'),
                         align_corners=False,
                         loss_decode=dict(type='CrossEntropyLoss', loss_weight=1.0)),
        train_cfg=dict(), test_cfg=dict(mode='whole', num_inference_steps=2, seed=0))


def dacs_config(segmentor: dict, **kwargs) -> dict:
    """DACS around ``segmentor`` with the UDA data preprocessor and no pseudo-label margins;
    ``kwargs`` override any DACS argument."""
    cfg = dict(
        type='DACS', model=segmentor, pseudo_margins=(0, 0, 0, 0),
        data_preprocessor=dict(type='UDADataPreprocessor', mean=MEAN, std=STD,
                               bgr_to_rgb=True, size_divisor=32, pad_val=0, seg_pad_val=255))
    cfg.update(kwargs)
    return cfg


def build_uda(cfg: dict):
    """Build a UDA wrapper from its config, initialise its weights, in train mode."""
    model = MODELS.build(ConfigDict(cfg))
    model.init_weights()
    return model.train()


def random_uda_batch(labels: torch.Tensor, seed: int = 0) -> dict:
    """A collated UDA batch of random uint8 images with the given source labels.

    Args:
        labels: Source labels ``(N, 1, H, W)``; the target samples get none.
        seed: Seed of the images, drawn source then target for each sample in turn.

    Returns:
        dict with ``inputs``, ``data_samples``, ``target_inputs``, ``target_data_samples``.
    """
    generator = torch.Generator().manual_seed(seed)
    n, _, height, width = labels.shape
    batch = dict(inputs=[], data_samples=[], target_inputs=[], target_data_samples=[])
    for i in range(n):
        meta = dict(img_shape=(height, width), ori_shape=(height, width))
        for prefix in ('', 'target_'):
            batch[f'{prefix}inputs'].append(
                torch.randint(0, 256, (3, height, width), dtype=torch.uint8,
                              generator=generator))
            sample = SegDataSample(metainfo=meta)
            if not prefix:
                sample.gt_sem_seg = PixelData(data=labels[i].clone())
            batch[f'{prefix}data_samples'].append(sample)
    return batch


def on_benchmark(cfg, benchmark, work_dir: str, iters: int = 2):
    """Point a tiny synthetic config at the test benchmark for a short run of ``iters``
    iterations (in place; returns ``cfg``): data roots, loaders without workers, logging
    and checkpoints every iteration, gloo, the work dir.
    """
    cfg.train_dataloader.dataset.source.data_root = benchmark.gta_root
    cfg.train_dataloader.dataset.target.data_root = benchmark.cityscapes_root
    cfg.val_dataloader.dataset.data_root = benchmark.cityscapes_root
    for loader in (cfg.train_dataloader, cfg.val_dataloader):
        loader.num_workers, loader.persistent_workers = 0, False
    cfg.train_cfg.max_iters, cfg.train_cfg.val_interval = iters, iters
    cfg.default_hooks.logger.interval = 1
    cfg.default_hooks.checkpoint.interval = iters
    cfg.env_cfg = dict(cudnn_benchmark=False, dist_cfg=dict(backend='gloo'))
    cfg.work_dir = work_dir
    return cfg
