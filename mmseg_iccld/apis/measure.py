"""What the analysis tools measure with: generated batches in the shape a config's data loader
would produce, and ``Entry``, a model built from a config (with per-entry overrides) with its
optimizer, trained or queried on those batches (``benchmark.py``, ``profile_step.py``)."""
import os
import os.path as osp
import platform
import time
from typing import Tuple

import torch
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample

from mmseg_iccld.apis.config_loading import apply_amp, load_config
from mmseg_iccld.engine.cfg_options import CfgOptionsAction

# Classes of the generated label maps: stuff and thing classes (feature distance and ClassMix
# see realistic content), in blocks of 32 pixels.
_BLOCK = 32
_CLASSES = torch.tensor([0, 1, 2, 8, 10, 13, 11, 5, 7, 0, 2, 10])


def _walk(node, pipeline_key: str):
    """All transforms of the pipelines named ``pipeline_key`` inside a config node."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == pipeline_key and isinstance(value, list):
                yield from value
            else:
                yield from _walk(value, pipeline_key)
    elif isinstance(node, (list, tuple)):
        for value in node:
            yield from _walk(value, pipeline_key)


def find_crop_size(cfg) -> Tuple[int, int]:
    """(H, W) of the training crop: the ``RandomCrop`` of the train pipeline."""
    for transform in _walk(cfg.train_dataloader, 'pipeline'):
        if transform.get('type') == 'RandomCrop':
            return tuple(transform['crop_size'])
    raise ValueError('benchmark: the config has no RandomCrop in its train pipeline; '
                     'cannot tell the crop size')


def find_test_size(cfg) -> Tuple[int, int]:
    """(H, W) of a test image: the ``Resize`` scale of the test pipeline, as (W, H) there."""
    for transform in _walk(cfg.test_dataloader, 'pipeline'):
        if transform.get('type') == 'Resize':
            width, height = transform['scale']
            return height, width
    raise ValueError('benchmark: the config has no Resize in its test pipeline')


def _label(height: int, width: int, generator: torch.Generator) -> torch.Tensor:
    blocks = torch.randint(len(_CLASSES), ((height + _BLOCK - 1) // _BLOCK,
                                           (width + _BLOCK - 1) // _BLOCK),
                           generator=generator)
    label = _CLASSES[blocks].repeat_interleave(_BLOCK, 0).repeat_interleave(_BLOCK, 1)
    return label[:height, :width].unsqueeze(0).to(torch.uint8)


def _sample(height, width, generator, with_label=True):
    image = torch.randint(0, 256, (3, height, width), generator=generator, dtype=torch.uint8)
    sample = SegDataSample(metainfo=dict(img_shape=(height, width), ori_shape=(height, width),
                                         scale_factor=(1.0, 1.0), flip=False))
    if with_label:
        sample.gt_sem_seg = PixelData(data=_label(height, width, generator).long())
    return image, sample


def make_train_batch(batch_size: int, crop: Tuple[int, int], uda: bool, seed: int = 0) -> dict:
    """A collated training batch (before the data preprocessor).

    Returns:
        dict with ``inputs`` (list of (3, H, W) uint8) and ``data_samples``, plus
        ``target_inputs`` and ``target_data_samples`` for UDA configs.
    """
    generator = torch.Generator().manual_seed(seed)
    source = [_sample(*crop, generator) for _ in range(batch_size)]
    batch = dict(inputs=[s[0] for s in source], data_samples=[s[1] for s in source])
    if uda:
        target = [_sample(*crop, generator) for _ in range(batch_size)]
        batch.update(target_inputs=[s[0] for s in target],
                     target_data_samples=[s[1] for s in target])
    return batch


def make_test_batch(size: Tuple[int, int]) -> dict:
    """A one-image test batch (before the data preprocessor)."""
    generator = torch.Generator().manual_seed(0)
    image, sample = _sample(*size, generator, with_label=False)
    return dict(inputs=[image], data_samples=[sample])


def split_entry(spec: str) -> Tuple[str, dict]:
    """``CONFIG@KEY=VALUE@...`` -> (config path, overrides as ``--cfg-options`` gives them)."""
    path, *pairs = spec.split('@')
    overrides = {}
    for pair in pairs:
        if '=' not in pair:
            raise ValueError(f'benchmark entry {spec!r}: expected KEY=VALUE after "@", '
                             f'got {pair!r}')
        key, value = pair.split('=', 1)
        overrides[key] = CfgOptionsAction._parse_iterable(value)
    return path, overrides


def entry_label(spec: str) -> str:
    """Short name of an entry: the config path without extension, then its overrides."""
    path, *pairs = spec.split('@')
    return osp.splitext(osp.relpath(path))[0] + ''.join(f' [{pair}]' for pair in pairs)


def schedule_iters(cfg, phase=None) -> int:
    """Training iterations of the config's schedule (for ICCLD, those of one phase)."""
    max_iters = cfg.train_cfg.get('max_iters', 0)
    if phase is None:
        return max_iters
    switch = next((hook['switch_iter'] for hook in cfg.get('custom_hooks', [])
                   if hook.get('type') == 'ICCLDPhaseHook'), max_iters)
    return switch if phase == 1 else max_iters - switch


class Entry:
    """One measured thing: a model built from a config, trained or queried in one mode."""

    def __init__(self, config: str, args, phase: int = None):
        from mmengine.optim import build_optim_wrapper
        from mmengine.registry import init_default_scope

        from mmseg.registry import MODELS
        self.config = config
        self.phase = phase
        path, overrides = split_entry(config)
        self.cfg = load_config(path, {**args.cfg_options, **overrides})
        init_default_scope(self.cfg.get('default_scope', 'mmseg'))
        self.device = torch.device(args.device)
        if self.cfg.get('env_cfg', {}).get('cudnn_benchmark', False):
            torch.backends.cudnn.benchmark = True  # as the runner sets it for training
        torch.manual_seed(0)
        # weights stay random: timing does not depend on them, and no pretrained file is needed
        self.model = MODELS.build(self.cfg.model).to(self.device)
        self.is_iccld = hasattr(self.model, 'set_phase')
        self.is_uda = 'target' in self.cfg.train_dataloader.dataset or hasattr(
            self.model, 'teacher')
        if self.is_iccld and phase is not None:
            self.model.set_phase(phase, lambda_adv=0.01)
        optim_cfg = self.cfg.optim_wrapper.copy()
        if args.amp:
            holder = type(self.cfg)(dict(optim_wrapper=optim_cfg))
            apply_amp(holder, args.amp)
            optim_cfg = holder.optim_wrapper
        self.optim_wrapper = build_optim_wrapper(self.model, optim_cfg)
        self.batch_size = self.cfg.train_dataloader.batch_size
        self.crop = tuple(args.crop) if args.crop else find_crop_size(self.cfg)
        self.test_size = tuple(args.test_size) if args.test_size else find_test_size(self.cfg)

    @property
    def name(self) -> str:
        base = entry_label(self.config)
        return f'{base} (phase {self.phase})' if self.phase is not None else base

    def train_iters(self, n: int) -> list:
        """Run n training iterations; return their durations in seconds."""
        self.model.train()
        times = []
        for i in range(n):
            batch = make_train_batch(self.batch_size, self.crop, self.is_uda, seed=i)
            sync(self.device)
            start = time.perf_counter()
            self.model.train_step(batch, self.optim_wrapper)
            sync(self.device)
            times.append(time.perf_counter() - start)
        return times

    def latency(self, n: int, k: int = None) -> list:
        """Time n single-image test steps (ICCLD with K = k inference steps)."""
        student = getattr(self.model, 'model', self.model)
        student = getattr(student, 'module', student)
        if k is not None:
            student.test_cfg['num_inference_steps'] = k
        self.model.eval()
        batch = make_test_batch(self.test_size)
        times = []
        with torch.no_grad():
            for _ in range(n):
                sync(self.device)
                start = time.perf_counter()
                self.model.test_step(batch)
                sync(self.device)
                times.append(time.perf_counter() - start)
        return times


def sync(device) -> None:
    """Wait for the device's queued work (a no-op on the CPU)."""
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def device_name(device: str) -> str:
    """The GPU's name, or the CPU's architecture, cores and torch threads."""
    if device.startswith('cuda'):
        return torch.cuda.get_device_name(0)
    return f'CPU ({platform.processor() or platform.machine()}, {os.cpu_count()} cores, ' \
           f'{torch.get_num_threads()} torch threads)'
