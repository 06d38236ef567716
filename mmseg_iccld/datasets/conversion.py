"""Label conversion to Cityscapes train ids and rare-class statistics, for GTA5, Synthia and
Cityscapes (shared by ``tools/convert_datasets/{gta,synthia,cityscapes}.py``).

Each converter pairs images with raw labels, checks every pair (completeness, decoding, sizes,
unknown label ids), writes ``*_labelTrainIds.png`` next to each raw label and, for the
training sets, the three class-statistics files DAFormer's converters write (used by rare
class sampling):

- ``sample_class_stats.json``: ``[{"<train id>": <pixels>, ..., "file": <label path>}, ...]``
- ``sample_class_stats_dict.json``: ``{<label path>: {"<train id>": <pixels>, ...}}``
- ``samples_with_class.json``: ``{"<train id>": [[<label path>, <pixels>], ...]}``

Pixel counts leave out the ignore index 255. When any check fails, no statistics are written
and :class:`ConversionError` lists every problem.
"""
import json
import os
import os.path as osp
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np
from mmengine.utils import track_parallel_progress, track_progress
from PIL import Image

from .label_tables import CITYSCAPES_TABLE, GTA5_TABLE, IGNORE_INDEX, SYNTHIA_TABLE, LabelTable
from .validation import (DataFileError, check_file_complete, check_same_size,
                         format_problems, read_image_size)

TRAIN_ID_SUFFIX = '_labelTrainIds.png'
STATS_FILES = ('sample_class_stats.json', 'sample_class_stats_dict.json',
               'samples_with_class.json')


class ConversionError(ValueError):
    """One or more samples of a dataset failed the checks; ``problems`` lists them all."""

    def __init__(self, dataset: str, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__(f'{dataset}: {len(self.problems)} problem(s) found, nothing trained '
                         f'on these files will be correct until they are fixed:\n'
                         f'{format_problems(self.problems)}')


@dataclass(frozen=True)
class Sample:
    """One image with its raw label and the train-id label to write.

    Args:
        image: Image path.
        label: Raw label path.
        out: Path of the ``*_labelTrainIds.png`` to write.
    """

    image: str
    label: str
    out: str


# label readers


def read_label_ids(path: str) -> np.ndarray:
    """Read an 8-bit label-id PNG (GTA5's palette images, Cityscapes' ``*_labelIds.png``).

    Args:
        path: Label path.

    Returns:
        ``(H, W)`` uint8 label ids (the palette indices of a 'P' image).

    Raises:
        DataFileError: When the file cannot be decoded or is not a single-channel image.
    """
    try:
        with Image.open(path) as img:
            img.load()
            mode = img.mode
            ids = np.asarray(img)
    except Exception as e:  # PIL raises several exception types for broken files
        raise DataFileError(f'{path}: cannot decode label ({type(e).__name__}: {e})') from e
    if mode not in ('P', 'L'):
        raise DataFileError(f'{path}: expected a palette (P) or grayscale (L) PNG of label '
                            f'ids, got mode {mode} (a color-coded label?)')
    return ids


def read_synthia_label_ids(path: str) -> np.ndarray:
    """Read a Synthia label: 16-bit PNG whose first (R) channel holds the class id.

    Args:
        path: Label path.

    Returns:
        ``(H, W)`` integer class ids.

    Raises:
        DataFileError: When the file cannot be decoded.
    """
    label = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    if label is None:
        raise DataFileError(f'{path}: cannot decode label (OpenCV could not read it)')
    # OpenCV returns BGR, so the first (red) channel is the last one.
    return label[:, :, -1] if label.ndim == 3 else label


READERS = {'ids': read_label_ids, 'synthia': read_synthia_label_ids}
TABLES = {'gta': GTA5_TABLE, 'synthia': SYNTHIA_TABLE, 'cityscapes': CITYSCAPES_TABLE}

# pairing and conversion


def _list_files(folder: str, suffix: str, exclude_suffix: Optional[str]) -> Dict[str, str]:
    """Files under ``folder`` (recursively) ending with ``suffix``, keyed by their relative
    path without the suffix."""
    files = {}
    for dirpath, _, names in os.walk(folder):
        for name in names:
            if not name.endswith(suffix):
                continue
            if exclude_suffix and name.endswith(exclude_suffix):
                continue
            path = osp.join(dirpath, name)
            files[osp.relpath(path, folder)[:-len(suffix)]] = path
    return files


def pair_files(image_dir: str, label_dir: str, image_suffix: str, label_suffix: str,
               out_suffix: str = TRAIN_ID_SUFFIX) -> Tuple[List[Sample], List[str]]:
    """Pair images with raw labels by their relative path and name.

    Already converted ``*_labelTrainIds.png`` files are never taken for raw labels.

    Args:
        image_dir: Image folder.
        label_dir: Raw label folder.
        image_suffix: Image suffix, e.g. ``'.png'`` or ``'_leftImg8bit.png'``.
        label_suffix: Raw label suffix, e.g. ``'.png'`` or ``'_gtFine_labelIds.png'``.
        out_suffix: Suffix of the train-id label that replaces ``label_suffix``.

    Returns:
        The pairs sorted by label path, and one problem per image without label or label
        without image.
    """
    images = _list_files(image_dir, image_suffix, TRAIN_ID_SUFFIX)
    labels = _list_files(label_dir, label_suffix, TRAIN_ID_SUFFIX)
    problems = [
        f'{images[k]}: image has no label (expected {osp.join(label_dir, k + label_suffix)})'
        for k in sorted(set(images) - set(labels))
    ] + [
        f'{labels[k]}: label has no image (expected {osp.join(image_dir, k + image_suffix)})'
        for k in sorted(set(labels) - set(images))
    ]
    samples = [
        Sample(images[k], labels[k], labels[k][:-len(label_suffix)] + out_suffix)
        for k in sorted(set(images) & set(labels))
    ]
    return samples, problems


def convert_sample(sample: Sample, reader: str, table: str,
                   decode_image: bool = False) -> Tuple[Optional[dict], List[str]]:
    """Check one pair and write its train-id label.

    Args:
        sample: The pair and the output path.
        reader: Key of ``READERS``.
        table: Key of ``TABLES``.
        decode_image: Decode the whole image (slow) instead of checking its header and end.

    Returns:
        The class statistics ``{"<train id>": pixels, ..., "file": sample.out}`` (None when a
        check failed) and the problems found.
    """
    problems = []
    image_shape = None
    try:
        check_file_complete(sample.image)
        image_shape = read_image_size(sample.image)
        if decode_image:
            with Image.open(sample.image) as img:
                img.load()
    except DataFileError as e:
        problems.append(str(e))
    except Exception as e:  # a decode failure of the full image
        problems.append(f'{sample.image}: cannot decode image ({type(e).__name__}: {e})')
    try:
        check_file_complete(sample.label)
        ids = READERS[reader](sample.label)
        if image_shape is not None:
            check_same_size(image_shape, ids.shape, sample.image, sample.label)
        label_table: LabelTable = TABLES[table]
        unknown = label_table.unknown_ids(ids)
        if unknown:
            raise DataFileError(
                f'{sample.label}: unknown {label_table.name} label ids {unknown[:20]} (valid '
                f'ids are 0..{label_table.num_ids - 1})')
    except DataFileError as e:
        problems.append(str(e))
    if problems:
        # A stale label from an earlier run would hide the problem from the dataset loader.
        if osp.exists(sample.out):
            os.remove(sample.out)
        return None, problems

    train_ids = label_table.to_train_ids(ids)
    Image.fromarray(train_ids).save(sample.out)
    return class_stats(train_ids, sample.out), []


def _convert_task(task: Tuple[Sample, str, str, bool]) -> Tuple[Optional[dict], List[str]]:
    return convert_sample(*task)


def class_stats(train_ids: np.ndarray, file: str) -> dict:
    """Pixels per train id of one label, in DAFormer's format.

    Args:
        train_ids: ``(H, W)`` train-id label.
        file: The label's path, stored under ``'file'``.

    Returns:
        ``{"<train id>": pixels, ..., "file": file}`` for the train ids present, ascending,
        the ignore index left out.
    """
    values, counts = np.unique(train_ids, return_counts=True)
    stats = {str(int(v)): int(n) for v, n in zip(values, counts) if v != IGNORE_INDEX}
    stats['file'] = file
    return stats


def convert_samples(samples: Sequence[Sample], reader: str, table: str, nproc: int = 1,
                    decode_images: bool = False) -> Tuple[List[dict], List[str]]:
    """Check and convert samples in ``nproc`` processes, with a progress bar.

    Args:
        samples: The pairs to convert.
        reader: Key of ``READERS``.
        table: Key of ``TABLES``.
        nproc: Number of worker processes.
        decode_images: Fully decode every image (see :func:`convert_sample`).

    Returns:
        The class statistics of the converted samples (in order) and all problems found.
    """
    tasks = [(s, reader, table, decode_images) for s in samples]
    if nproc > 1:
        results = track_parallel_progress(_convert_task, tasks, nproc, chunksize=8)
    else:
        results = track_progress(_convert_task, tasks)
    stats = [r[0] for r in results if r[0] is not None]
    problems = [p for r in results for p in r[1]]
    return stats, problems


def write_class_stats(out_dir: str, stats: Sequence[dict]) -> List[str]:
    """Write the three class-statistics files.

    Args:
        out_dir: Folder to write into (the dataset root).
        stats: Per-label statistics as returned by :func:`class_stats`.

    Returns:
        The paths written.
    """
    stats_dict = {s['file']: {k: v for k, v in s.items() if k != 'file'} for s in stats}
    with_class: Dict[str, list] = {}
    for file, counts in stats_dict.items():
        for train_id, n in counts.items():
            with_class.setdefault(train_id, []).append([file, n])
    with_class = {k: with_class[k] for k in sorted(with_class, key=int)}
    paths = [osp.join(out_dir, name) for name in STATS_FILES]
    for path, content in zip(paths, (list(stats), stats_dict, with_class)):
        with open(path, 'w') as f:
            json.dump(content, f, indent=2)
    return paths

# datasets


def _require_folders(dataset: str, folders: Sequence[str], layout: str) -> None:
    for folder in folders:
        if not osp.isdir(folder):
            raise FileNotFoundError(f'{dataset}: folder {folder!r} does not exist. Expected '
                                    f'layout:\n{layout}')


def _convert(dataset: str, samples: List[Sample], problems: List[str], reader: str,
             table: str, nproc: int, decode_images: bool,
             stats_dir: Optional[str]) -> List[dict]:
    if not samples and not problems:
        raise FileNotFoundError(f'{dataset}: no image/label pairs found')
    stats, convert_problems = convert_samples(samples, reader, table, nproc, decode_images)
    problems = problems + convert_problems
    if problems:
        raise ConversionError(dataset, problems)
    if stats_dir is not None:
        write_class_stats(stats_dir, stats)
    return stats


GTA5_RAW_LAYOUT = """\
  <root>/images/<name>.png    RGB images
  <root>/labels/<name>.png    palette PNGs whose indices are Cityscapes label ids"""
SYNTHIA_RAW_LAYOUT = """\
  <root>/RGB/<name>.png          RGB images
  <root>/GT/LABELS/<name>.png    16-bit PNGs, Synthia class id in the first channel"""
CITYSCAPES_RAW_LAYOUT = """\
  <root>/leftImg8bit/<split>/<city>/<name>_leftImg8bit.png
  <root>/gtFine/<split>/<city>/<name>_gtFine_labelIds.png"""


def convert_gta(root: str, nproc: int = 1, decode_images: bool = False) -> List[dict]:
    """Convert GTA5 labels to train ids and write the class statistics into ``root``.

    Args:
        root: GTA5 root with ``images/`` and ``labels/``.
        nproc: Number of worker processes.
        decode_images: Fully decode every image instead of checking headers and ends.

    Returns:
        The per-label class statistics.

    Raises:
        FileNotFoundError: When a folder is missing or holds no pairs.
        ConversionError: Listing every problem found.
    """
    image_dir, label_dir = osp.join(root, 'images'), osp.join(root, 'labels')
    _require_folders('GTA5', (image_dir, label_dir), GTA5_RAW_LAYOUT)
    samples, problems = pair_files(image_dir, label_dir, '.png', '.png')
    return _convert('GTA5', samples, problems, 'ids', 'gta', nproc, decode_images, root)


def convert_synthia(root: str, nproc: int = 1, decode_images: bool = False) -> List[dict]:
    """Convert Synthia RAND-CITYSCAPES labels to train ids and write the class statistics.

    Args:
        root: Synthia root with ``RGB/`` and ``GT/LABELS/``.
        nproc: Number of worker processes.
        decode_images: Fully decode every image instead of checking headers and ends.

    Returns:
        The per-label class statistics.

    Raises:
        FileNotFoundError: When a folder is missing or holds no pairs.
        ConversionError: Listing every problem found.
    """
    image_dir, label_dir = osp.join(root, 'RGB'), osp.join(root, 'GT', 'LABELS')
    _require_folders('Synthia', (image_dir, label_dir), SYNTHIA_RAW_LAYOUT)
    samples, problems = pair_files(image_dir, label_dir, '.png', '.png')
    return _convert('Synthia', samples, problems, 'synthia', 'synthia', nproc, decode_images,
                    root)


def convert_cityscapes(root: str, nproc: int = 1, splits: Sequence[str] = ('train', 'val'),
                       stats_split: Optional[str] = 'train',
                       decode_images: bool = False) -> Dict[str, List[dict]]:
    """Convert Cityscapes ``*_gtFine_labelIds.png`` to ``*_gtFine_labelTrainIds.png``.

    Args:
        root: Cityscapes root with ``leftImg8bit/`` and ``gtFine/``.
        nproc: Number of worker processes.
        splits: Splits to convert.
        stats_split: The split whose class statistics are written into ``root`` (None: none).
        decode_images: Fully decode every image instead of checking headers and ends.

    Returns:
        The per-label class statistics of each split.

    Raises:
        FileNotFoundError: When a folder is missing or holds no pairs.
        ConversionError: Listing every problem found (all splits are checked first).
    """
    folders = {s: (osp.join(root, 'leftImg8bit', s), osp.join(root, 'gtFine', s))
               for s in splits}
    _require_folders('Cityscapes', [f for pair in folders.values() for f in pair],
                     CITYSCAPES_RAW_LAYOUT)
    if stats_split is not None and stats_split not in splits:
        raise ValueError(f'stats_split {stats_split!r} is not one of the splits {splits}')
    paired = {s: pair_files(img, lbl, '_leftImg8bit.png', '_gtFine_labelIds.png',
                            '_gtFine_labelTrainIds.png')
              for s, (img, lbl) in folders.items()}
    problems = [p for _, split_problems in paired.values() for p in split_problems]
    samples = [sample for split_samples, _ in paired.values() for sample in split_samples]
    for split, (split_samples, _) in paired.items():
        if not split_samples:
            problems.append(f'{folders[split][1]}: no *_gtFine_labelIds.png labels')
    stats = _convert('Cityscapes', samples, problems, 'ids', 'cityscapes', nproc,
                     decode_images, None)
    by_split = {s: [st for st in stats if st['file'].startswith(folders[s][1] + os.sep)]
                for s in splits}
    if stats_split is not None:
        write_class_stats(root, by_split[stats_split])
    return by_split
