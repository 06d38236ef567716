"""Checking and converting single image/label pairs: pairing files by name, checking each
pair, writing its train-id label (used by :mod:`mmseg_iccld.datasets.conversion`)."""
import os
import os.path as osp
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

from mmengine.utils import track_parallel_progress, track_progress
from PIL import Image

from .class_stats import class_stats
from .conversion_report import UNKNOWN_IDS_OPTION, Rejected
from .folder_walk import list_files
from .label_readers import READERS
from .label_tables import CITYSCAPES_TABLE, GTA5_TABLE, SYNTHIA_TABLE, LabelTable
from .validation import DataFileError, check_file_complete, check_same_size, read_image_header

TRAIN_ID_SUFFIX = '_labelTrainIds.png'
TABLES = {'gta': GTA5_TABLE, 'synthia': SYNTHIA_TABLE, 'cityscapes': CITYSCAPES_TABLE}


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


@dataclass
class SampleResult:
    """The outcome of converting one sample.

    Args:
        stats: Class statistics of the written label; None when a check failed.
        problems: Every problem found, each starting with the file it is about.
        unknown_pixels: ``{unknown label id: pixels}`` mapped to 255.
        image_mode: The image's PIL mode (None when the header could not be read).
    """

    stats: Optional[dict]
    problems: List[str] = field(default_factory=list)
    unknown_pixels: Dict[int, int] = field(default_factory=dict)
    image_mode: Optional[str] = None


# pairing and conversion


def _list_files(folder: str, suffix: str, exclude_suffix: Optional[str]) -> Dict[str, str]:
    """Files under ``folder`` (as :func:`list_files` lists them) ending with ``suffix`` but not
    ``exclude_suffix``, keyed by their relative path without the suffix."""
    return {rel[:-len(suffix)]: osp.join(folder, rel) for rel in list_files(folder, suffix)
            if not (exclude_suffix and rel.endswith(exclude_suffix))}


def pair_files(image_dir: str, label_dir: str, image_suffix: str, label_suffix: str,
               out_suffix: str = TRAIN_ID_SUFFIX) -> Tuple[List[Sample], List[Rejected]]:
    """Pair images with raw labels by their relative path and name.

    Already converted ``*_labelTrainIds.png`` files are never taken for raw labels; files
    with other suffixes are not looked at; hidden files (macOS ``._*``) and symlink loops
    are left out with a note (:mod:`mmseg_iccld.datasets.folder_walk`), as the datasets
    leave them out.

    Args:
        image_dir: Image folder.
        label_dir: Raw label folder.
        image_suffix: Image suffix, e.g. ``'.png'`` or ``'_leftImg8bit.png'``.
        label_suffix: Raw label suffix, e.g. ``'.png'`` or ``'_gtFine_labelIds.png'``.
        out_suffix: Suffix of the train-id label that replaces ``label_suffix``.

    Returns:
        The pairs sorted by label path, and the images without label and labels without
        image, in this order, each sorted.
    """
    images = _list_files(image_dir, image_suffix, TRAIN_ID_SUFFIX)
    labels = _list_files(label_dir, label_suffix, TRAIN_ID_SUFFIX)
    unpaired = [
        Rejected(images[k], None, [f'{images[k]}: image has no label (expected '
                                   f'{osp.join(label_dir, k + label_suffix)})'])
        for k in sorted(set(images) - set(labels))
    ] + [
        Rejected(None, labels[k], [f'{labels[k]}: label has no image (expected '
                                   f'{osp.join(image_dir, k + image_suffix)})'])
        for k in sorted(set(labels) - set(images))
    ]
    samples = [
        Sample(images[k], labels[k], labels[k][:-len(label_suffix)] + out_suffix)
        for k in sorted(set(images) & set(labels))
    ]
    return samples, unpaired


def _check_image(path: str, decode: bool,
                 problems: List[str]) -> Tuple[Optional[Tuple[int, int]], Optional[str]]:
    """The image's ``(H, W)`` and PIL mode from its header, each None when the header cannot
    be read; every problem found is appended to ``problems``."""
    shape, mode = None, None
    try:
        check_file_complete(path)
        height, width, mode = read_image_header(path)
        shape = (height, width)
        if decode:
            with Image.open(path) as img:
                img.load()
    except DataFileError as e:
        problems.append(str(e))
    except Exception as e:  # a decode failure of the full image
        problems.append(f'{path}: cannot decode image ({type(e).__name__}: {e})')
    return shape, mode


def convert_sample(sample: Sample, reader: str, table: str, decode_image: bool = False,
                   unknown_ids_to_ignore: bool = False) -> SampleResult:
    """Check one pair and write its train-id label.

    Every check runs, so that one pass lists all of a pair's problems.

    Args:
        sample: The pair and the output path.
        reader: Key of ``READERS``.
        table: Key of ``TABLES``.
        decode_image: Decode the whole image (slow) instead of checking its header and end.
        unknown_ids_to_ignore: Map label ids outside the table to 255 (counted in the
            result) instead of failing.

    Returns:
        The statistics ``{"<train id>": pixels, ..., "file": sample.out}`` (None when a
        check failed), the problems found, the unknown ids mapped and the image mode.
    """
    problems: List[str] = []
    image_shape, mode = _check_image(sample.image, decode_image, problems)
    label_table: LabelTable = TABLES[table]
    ids, unknown = None, {}
    try:
        check_file_complete(sample.label)
        ids = READERS[reader](sample.label)
    except DataFileError as e:
        problems.append(str(e))
    if ids is not None:
        if image_shape is not None:
            try:
                check_same_size(image_shape, ids.shape, sample.image, sample.label)
            except DataFileError as e:
                problems.append(str(e))
        unknown = label_table.unknown_pixels(ids)
        if unknown and not unknown_ids_to_ignore:
            problems.append(
                f'{sample.label}: unknown {label_table.name} label ids {list(unknown)[:20]} '
                f'(valid ids are 0..{label_table.num_ids - 1}); {UNKNOWN_IDS_OPTION} maps '
                f'them to 255 (ignored)')
    if problems:
        # A stale label from an earlier run would hide the problem from the dataset loader.
        if osp.exists(sample.out):
            os.remove(sample.out)
        return SampleResult(None, problems, image_mode=mode)

    train_ids = label_table.to_train_ids(ids, unknown_to_ignore=unknown_ids_to_ignore)
    Image.fromarray(train_ids).save(sample.out)
    return SampleResult(class_stats(train_ids, sample.out), [], unknown, mode)


def _convert_task(task: tuple) -> SampleResult:
    return convert_sample(*task)


def convert_samples(samples: Sequence[Sample], reader: str, table: str, nproc: int = 1,
                    decode_images: bool = False,
                    unknown_ids_to_ignore: bool = False) -> List[SampleResult]:
    """Check and convert samples in ``nproc`` processes, with a progress bar.

    Args:
        samples: The pairs to convert.
        reader: Key of ``READERS``.
        table: Key of ``TABLES``.
        nproc: Number of worker processes.
        decode_images: Fully decode every image (see :func:`convert_sample`).
        unknown_ids_to_ignore: See :func:`convert_sample`.

    Returns:
        One result per sample, in order.
    """
    tasks = [(s, reader, table, decode_images, unknown_ids_to_ignore) for s in samples]
    if not tasks:
        return []
    if nproc > 1:
        return track_parallel_progress(_convert_task, tasks, nproc, chunksize=8)
    return track_progress(_convert_task, tasks)
