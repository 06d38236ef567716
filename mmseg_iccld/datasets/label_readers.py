"""Readers of raw label files: GTA5's palette PNGs, Cityscapes' ``*_labelIds.png`` and
Synthia's 16-bit PNGs, each failing with the file's name when it cannot be read."""
import cv2
import numpy as np
from PIL import Image

from .validation import DataFileError


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
