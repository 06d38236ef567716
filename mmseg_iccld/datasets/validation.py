"""Checks of image and label files that fail loudly, naming the file and the problem.

A truncated PNG or JPEG often decodes to a partly grey image without an error, and a label of
the wrong size or with raw label ids trains silently on garbage. These checks are shared by the
converters (which run them on the whole dataset before anyone trains) and by the checked
loading transforms (which run them on every sample they load).
"""
import logging
import os.path as osp
from typing import List, Optional, Sequence, Tuple

import numpy as np
from mmengine.logging import print_log
from PIL import Image

PNG_SIGNATURE = b'\x89PNG\r\n\x1a\n'
# Length 0, type IEND, CRC of "IEND": the fixed last 12 bytes of every complete PNG.
PNG_IEND = b'\x00\x00\x00\x00IEND\xaeB`\x82'
JPEG_SOI = b'\xff\xd8'
JPEG_EOI = b'\xff\xd9'


class DataFileError(ValueError):
    """A data file is missing, unreadable, truncated or inconsistent with its pair."""


def _trailer_problem(head: bytes, tail: bytes) -> Optional[str]:
    """Problem with a file's first and last bytes, or None when they look complete.

    Args:
        head: The first bytes of the file (at least 8).
        tail: The last bytes of the file (at least 12, fewer only when the file is smaller).

    Returns:
        A description of the problem, or None.
    """
    if not head:
        return 'file is empty'
    if head.startswith(PNG_SIGNATURE):
        if not tail.endswith(PNG_IEND):
            return 'truncated PNG (the file does not end with the IEND chunk)'
    elif head.startswith(JPEG_SOI):
        # Some cameras pad JPEGs with zero bytes after the end-of-image marker.
        if not tail.rstrip(b'\x00').endswith(JPEG_EOI):
            return 'truncated JPEG (the file does not end with the EOI marker)'
    return None


def check_bytes_complete(data: bytes, path: str) -> None:
    """Raise when the encoded image in ``data`` is empty or truncated.

    PNG must end with its IEND chunk and JPEG with the EOI marker; other formats are left
    to the decoder.

    Args:
        data: The file's bytes.
        path: The file's path, for the error message.

    Raises:
        DataFileError: Naming ``path`` and what is wrong.
    """
    problem = _trailer_problem(data[:16], data[-64:])
    if problem:
        raise DataFileError(f'{path}: {problem}')


def check_file_complete(path: str) -> None:
    """Raise when the image file at ``path`` is missing, empty or truncated.

    Reads only the first and last bytes, so it is cheap enough to run on a whole dataset.

    Args:
        path: Image file path.

    Raises:
        DataFileError: Naming ``path`` and what is wrong.
    """
    if not osp.isfile(path):
        raise DataFileError(f'{path}: file not found')
    with open(path, 'rb') as f:
        head = f.read(16)
        size = f.seek(0, 2)
        f.seek(max(0, size - 64))
        tail = f.read()
    problem = _trailer_problem(head, tail)
    if problem:
        raise DataFileError(f'{path}: {problem}')


def read_image_header(path: str) -> Tuple[int, int, str]:
    """Read an image's size and PIL mode from its header, without decoding the pixels.

    Args:
        path: Image file path.

    Returns:
        ``(height, width, mode)``, e.g. ``(1052, 1914, 'RGB')``.

    Raises:
        DataFileError: When the header cannot be read.
    """
    try:
        with Image.open(path) as img:
            width, height = img.size
            mode = img.mode
    except Exception as e:  # PIL raises several exception types for broken files
        raise DataFileError(f'{path}: unreadable image ({type(e).__name__}: {e})') from e
    return height, width, mode


def read_image_size(path: str) -> Tuple[int, int]:
    """Read an image's size from its header, without decoding the pixels.

    Args:
        path: Image file path.

    Returns:
        ``(height, width)``.

    Raises:
        DataFileError: When the header cannot be read.
    """
    return read_image_header(path)[:2]


def rgb_conversion(mode: str) -> Optional[str]:
    """What loading an image of PIL mode ``mode`` as 3-channel color does to it.

    The checked image loader decodes every image to three color channels, as OpenCV's
    ``IMREAD_COLOR`` does: gray is copied to the three channels, palette indices are looked
    up, an alpha channel is dropped.

    Args:
        mode: PIL image mode (``'RGB'``, ``'RGBA'``, ``'L'``, ``'P'``, ...).

    Returns:
        None for ``'RGB'``; otherwise a short description, e.g. ``'alpha channel dropped'``.
    """
    if mode == 'RGB':
        return None
    steps = []
    if mode[0] in 'LI1':
        steps.append('gray copied to the three channels')
    if mode.startswith('P'):
        steps.append('palette colors looked up')
    if 'A' in mode:
        steps.append('alpha channel dropped')
    return ', '.join(steps) or f'{mode} converted to RGB'


_NOTED: set = set()


def note_once(key: str, message: str) -> None:
    """Log ``message`` as a warning the first time ``key`` is seen in this process.

    Args:
        key: What the note is about; a key already noted is not noted again.
        message: The note.
    """
    if key in _NOTED:
        return
    _NOTED.add(key)
    print_log(message, logger='current', level=logging.WARNING)


def check_same_size(image_shape: Sequence[int], label_shape: Sequence[int], image_path: str,
                    label_path: str) -> None:
    """Raise when an image and its label differ in height or width.

    Args:
        image_shape: Image shape, ``(H, W)`` or ``(H, W, C)``.
        label_shape: Label shape, ``(H, W)``.
        image_path: Image file path, for the message.
        label_path: Label file path, for the message.

    Raises:
        DataFileError: Naming the label and both sizes (as width x height).
    """
    ih, iw = image_shape[:2]
    lh, lw = label_shape[:2]
    if (ih, iw) != (lh, lw):
        raise DataFileError(f'{label_path}: label size {lw}x{lh} differs from the size '
                            f'{iw}x{ih} of its image {image_path} (width x height)')


def file_problems(image: str, label: Optional[str] = None) -> List[str]:
    """Every problem of an image and its label that the files' first and last bytes and their
    headers show: missing, empty, truncated, an unreadable header, a label whose size is not
    the image's. Pixels are not decoded, so a whole dataset is checked in seconds.

    Args:
        image: Image file path.
        label: Label file path; None for an image without one.

    Returns:
        One line per problem, each starting with the file it is about; empty when none.
    """
    problems, sizes = [], []
    for path in (image, label):
        if path is None:
            continue
        try:
            check_file_complete(path)
            sizes.append(read_image_size(path))
        except DataFileError as e:
            problems.append(str(e))
    if len(sizes) == 2:
        try:
            check_same_size(sizes[0], sizes[1], image, label)
        except DataFileError as e:
            problems.append(str(e))
    return problems


def check_label_values(label: np.ndarray, num_classes: int, ignore_index: int,
                       path: str) -> None:
    """Raise when a train-id label holds values outside ``[0, num_classes) U {ignore_index}``.

    Args:
        label: Label map ``(H, W)`` of train ids.
        num_classes: Number of classes.
        ignore_index: The ignored value.
        path: Label file path, for the message.

    Raises:
        DataFileError: Naming the file and the invalid values.
    """
    values = np.unique(label)
    bad = [int(v) for v in values if not (0 <= v < num_classes or v == ignore_index)]
    if bad:
        shown = bad[:20] + (['...'] if len(bad) > 20 else [])
        raise DataFileError(
            f'{path}: label values {shown} lie outside [0, {num_classes}) and are not the '
            f'ignore index {ignore_index}. Is this a raw label-id file instead of a converted '
            f'*_labelTrainIds.png? (see docs/datasets.md)')


def format_problems(problems: Sequence[str], limit: int = 20) -> str:
    """Join problem descriptions into one message, at most ``limit`` of them in full.

    Args:
        problems: One line per problem.
        limit: How many to spell out.

    Returns:
        A multi-line string.
    """
    lines = [f'  - {p}' for p in problems[:limit]]
    if len(problems) > limit:
        lines.append(f'  ... and {len(problems) - limit} more')
    return '\n'.join(lines)


def check_folders(folders: Sequence[Tuple[str, str]], layout: str) -> None:
    """Raise when a dataset folder does not exist.

    Args:
        folders: ``(description, path)`` pairs, e.g. ``('image folder', 'data/gta/images')``.
        layout: The expected layout, spelled out for the message.

    Raises:
        FileNotFoundError: Naming the missing folder and the expected layout.
    """
    for what, path in folders:
        if not path or not osp.isdir(path):
            raise FileNotFoundError(f'{what} {path!r} does not exist. Expected layout:\n{layout}')


def check_labels_exist(data_list: Sequence[dict], raw_suffix: str, seg_map_suffix: str,
                       convert_cmd: str, layout: str) -> None:
    """Raise when an image of a dataset has no converted label.

    Args:
        data_list: mmseg data infos (``img_path``, ``seg_map_path``).
        raw_suffix: Suffix of the raw label next to the converted one (e.g. ``'.png'``).
        seg_map_suffix: Suffix of the converted label (e.g. ``'_labelTrainIds.png'``).
        convert_cmd: The converter command line to suggest.
        layout: The expected layout, spelled out for the message.

    Raises:
        FileNotFoundError: Naming the files without a label; suggesting ``convert_cmd`` when
            the raw label exists but the converted one does not.
    """
    unconverted, unlabelled = [], []
    for info in data_list:
        seg_path = info['seg_map_path']
        if osp.isfile(seg_path):
            continue
        raw_path = seg_path[:-len(seg_map_suffix)] + raw_suffix
        if osp.isfile(raw_path):
            unconverted.append(seg_path)
        else:
            unlabelled.append(f'{info["img_path"]} has no label {seg_path}')
    if unconverted:
        raise FileNotFoundError(
            f'{len(unconverted)} raw label(s) are not converted to train ids yet, e.g. '
            f'{unconverted[0]} is missing. Run: {convert_cmd}\n'
            f'{format_problems(unconverted, limit=5)}')
    if unlabelled:
        raise FileNotFoundError(f'{len(unlabelled)} image(s) have no label. Expected layout:\n'
                                f'{layout}\n{format_problems(unlabelled)}')
