"""Generated batches in the shape a config's data loader would produce (for benchmarks)."""
from typing import Tuple

import torch
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample

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
