"""Loading transforms that check what they load and name the file when it is wrong.

Drop-in replacements for mmcv's ``LoadImageFromFile`` and mmseg's ``LoadAnnotations``, for
any mmseg dataset (GTA5Dataset, SynthiaDataset, mmseg's CityscapesDataset, ...). The stock
transforms decode a truncated PNG into a half-grey image, cast a 16-bit label to uint8 by
wrapping, and accept raw label ids in place of train ids; these raise instead.
"""
from typing import Optional

import mmcv
import mmengine.fileio as fileio
import numpy as np
from mmcv.transforms import LoadImageFromFile
from mmseg.datasets.transforms import LoadAnnotations
from mmseg.registry import TRANSFORMS

from .validation import DataFileError, check_bytes_complete, check_label_values, check_same_size


def _read_bytes(path: str, backend_args: Optional[dict], what: str) -> bytes:
    try:
        data = fileio.get(path, backend_args=backend_args)
    except FileNotFoundError as e:
        raise DataFileError(f'{path}: {what} file not found') from e
    check_bytes_complete(data, path)
    return data


def _decode(data: bytes, path: str, flag: str, backend: str, what: str) -> np.ndarray:
    try:
        array = mmcv.imfrombytes(data, flag=flag, backend=backend)
    except Exception as e:  # decoders raise many exception types for broken files
        raise DataFileError(f'{path}: cannot decode {what} ({type(e).__name__}: {e})') from e
    if array is None or array.size == 0:
        raise DataFileError(f'{path}: cannot decode {what} (the decoder returned nothing)')
    return array


@TRANSFORMS.register_module()
class LoadImageFromFileChecked(LoadImageFromFile):
    """``LoadImageFromFile`` that rejects missing, truncated and undecodable images.

    Required Keys: ``img_path``. Modified Keys: ``img`` ``(H, W, 3)`` uint8 (BGR by default),
    ``img_shape``, ``ori_shape``. Arguments are those of mmcv's ``LoadImageFromFile``.

    Raises:
        DataFileError: Naming the file, when it is missing, empty, truncated (PNG without
            IEND, JPEG without EOI) or cannot be decoded.
    """

    def transform(self, results: dict) -> Optional[dict]:
        """Load and check ``results['img_path']``.

        Args:
            results: Result dict from the dataset.

        Returns:
            ``results`` with the image and its shape, or None when ``ignore_empty`` is set
            and the file is bad.
        """
        filename = results['img_path']
        try:
            data = _read_bytes(filename, self.backend_args, 'image')
            img = _decode(data, filename, self.color_type, self.imdecode_backend, 'image')
        except DataFileError:
            if self.ignore_empty:
                return None
            raise
        if self.to_float32:
            img = img.astype(np.float32)
        results['img'] = img
        results['img_shape'] = img.shape[:2]
        results['ori_shape'] = img.shape[:2]
        return results


@TRANSFORMS.register_module()
class LoadAnnotationsChecked(LoadAnnotations):
    """mmseg's ``LoadAnnotations`` that checks the label it loads.

    Required Keys: ``seg_map_path``, ``reduce_zero_label``, optionally ``label_map`` and
    ``ori_shape`` (set by the image loader). Added Keys: ``gt_seg_map`` ``(H, W)`` uint8,
    ``seg_fields``.

    Args:
        num_classes: Number of classes; the loaded label (after ``reduce_zero_label`` and
            ``label_map``) may only hold ``[0, num_classes)`` and ``ignore_index``.
        ignore_index: The ignored label value.
        check_size: Whether to require the label's size to equal the image's original size
            (``results['ori_shape']``, when an image was loaded before).
        reduce_zero_label: As in ``LoadAnnotations``.
        backend_args: As in ``LoadAnnotations``.
        imdecode_backend: As in ``LoadAnnotations``.

    Raises:
        DataFileError: Naming the label file, when it is missing, truncated, undecodable,
            not single-channel, of another size than its image, or holds invalid values.
    """

    def __init__(self,
                 num_classes: int = 19,
                 ignore_index: int = 255,
                 check_size: bool = True,
                 reduce_zero_label: Optional[bool] = None,
                 backend_args: Optional[dict] = None,
                 imdecode_backend: str = 'pillow') -> None:
        super().__init__(reduce_zero_label=reduce_zero_label, backend_args=backend_args,
                         imdecode_backend=imdecode_backend)
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.check_size = check_size

    def _load_seg_map(self, results: dict) -> None:
        path = results['seg_map_path']
        data = _read_bytes(path, self.backend_args, 'label')
        label = _decode(data, path, 'unchanged', self.imdecode_backend, 'label').squeeze()
        if label.ndim != 2:
            raise DataFileError(f'{path}: a label must have one channel, this one has shape '
                                f'{label.shape} (a color-coded label?)')
        if label.dtype != np.uint8:
            if label.min() < 0 or label.max() > 255:
                raise DataFileError(
                    f'{path}: label of type {label.dtype} holds values outside 0..255 '
                    f'(min {label.min()}, max {label.max()}); a raw label needs converting')
            label = label.astype(np.uint8)
        if self.check_size and 'ori_shape' in results:
            check_same_size(results['ori_shape'], label.shape, results.get('img_path', '?'),
                            path)

        if self.reduce_zero_label is None:
            self.reduce_zero_label = results['reduce_zero_label']
        if self.reduce_zero_label != results['reduce_zero_label']:
            raise ValueError(f'LoadAnnotationsChecked(reduce_zero_label='
                             f'{self.reduce_zero_label}) disagrees with the dataset\'s '
                             f'reduce_zero_label={results["reduce_zero_label"]}')
        if self.reduce_zero_label:
            # uint8 arithmetic: 0 -> 255 first so that it stays ignored after the shift
            label[label == 0] = 255
            label = label - 1
            label[label == 254] = 255
        if results.get('label_map') is not None:
            original = label.copy()
            for old_id, new_id in results['label_map'].items():
                label[original == old_id] = new_id

        check_label_values(label, self.num_classes, self.ignore_index, path)
        results['gt_seg_map'] = label
        results['seg_fields'].append('gt_seg_map')

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(num_classes={self.num_classes}, '
                f'ignore_index={self.ignore_index}, check_size={self.check_size}, '
                f'reduce_zero_label={self.reduce_zero_label}, '
                f"imdecode_backend='{self.imdecode_backend}', backend_args={self.backend_args})")
