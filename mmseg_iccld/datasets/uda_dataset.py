"""Source/target pairs for unsupervised domain adaptation, with DAFormer's rare class sampling.

One item holds a labelled source sample and a target sample, each exactly what its own
dataset's pipeline (ending in ``PackSegInputs``) returns::

    inputs               (3, H, W) uint8 tensor, source image
    data_samples         SegDataSample with gt_sem_seg, source
    target_inputs        (3, H', W') uint8 tensor, target image
    target_data_samples  SegDataSample, target

Rare class sampling (RCS, Hoyer et al., DAFormer, CVPR 2022) draws the source sample so that
rare classes are seen often; see :mod:`mmseg_iccld.datasets.rare_class_sampling`.

What training reads is checked when the dataset is built: every source image and label and
every target image must exist. Target labels are never trained on; a missing one is counted in
a note and its sample loads without ``gt_sem_seg`` (:class:`SkipMissingLabel`). Samples that a
converter skipped (``conversion_report.json``) are left out of both datasets. With rare class
sampling, the class statistics must count exactly the source labels: a label added after the
converter wrote them would never be drawn, so a difference either way stops the build.

Without a target (``target=None``) the items are source samples alone (``inputs``,
``data_samples``): source-only training for domain generalisation, with the same rare class
sampling and checks as the UDA pair.
"""
import os.path as osp
from typing import Dict, List, Optional, Union

import numpy as np
from mmengine.dataset import BaseDataset

from mmseg.registry import DATASETS
from .listing import (check_training_files, full_init_listed, leave_out_skipped,
                      make_labels_optional, use_checked_listing)
from .rare_class_sampling import (SAMPLE_CLASS_STATS_FILE, SAMPLES_WITH_CLASS_FILE,
                                  candidates_per_class, check_stats_match, class_frequencies,
                                  class_probabilities, label_key, load_stats_file)

# DAFormer redraws the crop at most this many times before keeping the last one.
MAX_RECROPS = 10


@DATASETS.register_module()
class UDADataset:
    """Pairs of a source sample and a target sample.

    Without rare class sampling, item ``i`` pairs source ``i // len(target)`` with target
    ``i % len(target)``, so one pass over the dataset visits every pair once. With rare class
    sampling, the index is ignored: the source sample comes from RCS and the target sample
    is drawn uniformly. All randomness uses numpy's global generator, which mmengine seeds
    per dataloader worker, so a seeded run is reproducible.

    The length is ``len(source) * len(target)`` in both modes (as DAFormer). For GTA5 and
    Cityscapes that is about 7.4e7, and a shuffling sampler materialises a permutation of
    that size; with RCS the index is ignored, so ``InfiniteSampler(shuffle=False)`` is
    enough.

    Args:
        source: Config or built source dataset (labelled; its ``data_root`` holds the class
            statistics when RCS is on). Its metainfo (classes, palette) is this dataset's.
        target: Config or built target dataset, with the same classes as the source; None
            for source samples alone (domain generalisation: :class:`~..models.uda.
            source_only.SourceOnly` trains on them), ``len(source)`` items.
        rare_class_sampling: ``None`` (off) or ``dict(class_temp=0.01, min_pixels=3000,
            min_crop_ratio=0.5)``: the temperature ``T`` of ``p_c = softmax((1 - f_c) / T)``;
            the pixels of class ``c`` an image needs to be a candidate of ``c``; the crop is
            redrawn (up to 10 times) until it holds more than ``min_pixels *
            min_crop_ratio`` pixels of ``c`` (0 disables the redraw).
    """

    def __init__(self,
                 source: Union[dict, BaseDataset],
                 target: Union[dict, BaseDataset, None],
                 rare_class_sampling: Optional[dict] = None) -> None:
        self.source = self._build(source, 'source')
        self.target = None if target is None else self._build(target, 'target')
        self._check_classes()
        for role, dataset in self._datasets():
            leave_out_skipped(dataset, role)
        check_training_files(self.source, self.target)
        if self.target is not None:
            make_labels_optional(self.target)
        self.rcs_enabled = rare_class_sampling is not None
        if self.rcs_enabled:
            self._init_rare_class_sampling(dict(rare_class_sampling))

    @property
    def metainfo(self) -> dict:
        """Metainfo of the source dataset (classes, palette, ...)."""
        return dict(self.source.metainfo)

    def full_init(self) -> None:
        """Fully initialise both datasets (the runner calls this after building)."""
        for _, dataset in self._datasets():
            if hasattr(dataset, 'full_init'):
                dataset.full_init()

    def __len__(self) -> int:
        return len(self.source) * (1 if self.target is None else len(self.target))

    def __getitem__(self, idx: int) -> dict:
        """One source/target pair.

        Args:
            idx: Pair index; ignored with rare class sampling.

        Returns:
            ``dict(inputs, data_samples, target_inputs, target_data_samples)``; without a
            target, ``dict(inputs, data_samples)``.
        """
        if not self.rcs_enabled and not 0 <= idx < len(self):
            raise IndexError(f'UDADataset index {idx} out of range [0, {len(self)}).')
        if self.target is None:
            source = self.get_rare_class_sample() if self.rcs_enabled else self.source[idx]
            return dict(inputs=source['inputs'], data_samples=source['data_samples'])
        if self.rcs_enabled:
            source = self.get_rare_class_sample()
            target = self.target[np.random.randint(len(self.target))]
        else:
            source = self.source[idx // len(self.target)]
            target = self.target[idx % len(self.target)]
        return dict(
            inputs=source['inputs'],
            data_samples=source['data_samples'],
            target_inputs=target['inputs'],
            target_data_samples=target['data_samples'])

    def get_rare_class_sample(self) -> dict:
        """Draw a class ``c ~ p``, an image holding ``c``, and a crop holding enough of it.

        Returns:
            The source sample as the source pipeline returns it (``inputs``,
            ``data_samples``).
        """
        c = np.random.choice(self.rcs_classes, p=self.rcs_class_probs)
        idx = self.rcs_candidates[c][np.random.randint(len(self.rcs_candidates[c]))]
        sample = self.source[idx]
        if self.rcs_min_crop_ratio > 0:
            needed = self.rcs_min_pixels * self.rcs_min_crop_ratio
            for _ in range(MAX_RECROPS):
                if int((sample['data_samples'].gt_sem_seg.data == c).sum()) > needed:
                    break
                # The source pipeline's random crop is redrawn on every load.
                sample = self.source[idx]
        return sample

    # helpers

    def _datasets(self):
        """``(role, dataset)`` of the source and, when there is one, the target."""
        return [('source', self.source)] + ([] if self.target is None else
                                            [('target', self.target)])

    @staticmethod
    def _build(dataset: Union[dict, BaseDataset], role: str) -> BaseDataset:
        if isinstance(dataset, dict):
            cls = dataset.get('type')
            cls = DATASETS.get(cls) if isinstance(cls, str) else cls
            if not (isinstance(cls, type) and issubclass(cls, BaseDataset)):
                return DATASETS.build(dataset)
            # Listed here, with the project's listing, so that an empty or missing image
            # folder or split file is named and a symlink loop is skipped.
            built = DATASETS.build(dict(dataset, lazy_init=True))
            use_checked_listing(built)
            if not dataset.get('lazy_init'):
                full_init_listed(built, role)
            return built
        if hasattr(dataset, '__getitem__') and hasattr(dataset, 'metainfo'):
            return dataset
        raise TypeError(f'UDADataset: {role} must be a dataset config (dict) or a built '
                        f'dataset with metainfo, got {type(dataset).__name__}.')

    def _check_classes(self) -> None:
        if self.target is None:
            return
        src = tuple(self.source.metainfo.get('classes') or ())
        tgt = tuple(self.target.metainfo.get('classes') or ())
        if src != tgt:
            raise ValueError(
                f'UDADataset: source ({type(self.source).__name__}) and target '
                f'({type(self.target).__name__}) must have the same classes in the same '
                f'order; source has {len(src)} {src}, target has {len(tgt)} {tgt}.')

    def _init_rare_class_sampling(self, cfg: dict) -> None:
        unknown = set(cfg) - {'class_temp', 'min_pixels', 'min_crop_ratio'}
        if unknown:
            raise ValueError(f'UDADataset: unknown rare_class_sampling keys {sorted(unknown)}; '
                             f'expected class_temp, min_pixels, min_crop_ratio.')
        self.rcs_class_temp = float(cfg.get('class_temp', 0.01))
        self.rcs_min_pixels = int(cfg.get('min_pixels', 3000))
        self.rcs_min_crop_ratio = float(cfg.get('min_crop_ratio', 0.5))

        data_root = getattr(self.source, 'data_root', None)
        if not data_root:
            raise ValueError(f'UDADataset: rare class sampling reads the class statistics '
                             f'from the source data_root, but the source dataset '
                             f'({type(self.source).__name__}) has none.')
        stats_path = osp.join(data_root, SAMPLE_CLASS_STATS_FILE)
        with_class_path = osp.join(data_root, SAMPLES_WITH_CLASS_FILE)
        num_classes = len(self.source.metainfo['classes'])
        stats = load_stats_file(data_root, SAMPLE_CLASS_STATS_FILE)
        freqs = class_frequencies(stats, num_classes, stats_path)
        self.full_init()
        converter = getattr(self.source, 'CONVERTER', None)
        check_stats_match(
            stats, [self.source.get_data_info(i).get('seg_map_path', '')
                    for i in range(len(self.source))], stats_path,
            f'python {converter} {data_root}' if converter else
            f'the dataset converter (tools/convert_datasets/) on {data_root}')
        self.rcs_classes, self.rcs_class_probs = class_probabilities(freqs, self.rcs_class_temp)
        names = candidates_per_class(
            load_stats_file(data_root, SAMPLES_WITH_CLASS_FILE), self.rcs_classes,
            self.rcs_min_pixels, with_class_path)
        self.rcs_candidates = self._names_to_indices(names, with_class_path)

    def _names_to_indices(self, names: Dict[int, List[str]], path: str) -> Dict[int, List[int]]:
        """Map the statistics' label base names to source dataset indices."""
        self.full_init()
        name_to_idx: Dict[str, int] = {}
        for i in range(len(self.source)):
            key = label_key(self.source.get_data_info(i)['seg_map_path'])
            if key in name_to_idx:
                raise ValueError(
                    f'UDADataset: two source samples share the label base name {key!r} '
                    f'(indices {name_to_idx[key]} and {i}); rare class sampling matches '
                    f'{path} to samples by base name and cannot tell them apart.')
            name_to_idx[key] = i
        indices: Dict[int, List[int]] = {}
        for c, files in names.items():
            missing = [f for f in files if f not in name_to_idx]
            if missing:
                example = next(iter(name_to_idx), None)
                raise ValueError(
                    f'{path}: {len(missing)} label file(s) of class {c} match no sample of '
                    f'the source dataset (by base name), e.g. {missing[0]!r}; a source label '
                    f'is named like {example!r}. The statistics belong to another dataset '
                    f'or split; re-run the dataset converter.')
            indices[c] = [name_to_idx[f] for f in files]
        return indices
