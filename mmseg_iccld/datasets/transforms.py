"""Loading transforms that check what they load and name the file when it is wrong.

Drop-in replacements for mmcv's ``LoadImageFromFile`` and mmseg's ``LoadAnnotations``, for
any mmseg dataset (GTA5Dataset, SynthiaDataset, mmseg's CityscapesDataset, ...). The stock
transforms decode a truncated PNG into a half-grey image, cast a 16-bit label to uint8 by
wrapping, and accept raw label ids in place of train ids; these raise instead. Images that
are not RGB (grayscale, palette, with alpha) are loaded as RGB with a note the first time.
``SkipMissingLabel`` makes a label loader tolerate samples without label (``UDADataset``
wraps its target's label loaders in it, as target labels are never trained on).
"""
import io
from typing import Optional, Union

import mmcv
import mmengine.fileio as fileio
import numpy as np
from mmcv.transforms import BaseTransform, LoadImageFromFile
from mmseg.datasets.transforms import LoadAnnotations
from mmseg.registry import TRANSFORMS
from PIL import Image

from .validation import (DataFileError, check_bytes_complete, check_label_values,
                         check_same_size, note_once, rgb_conversion)


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


def _note_if_not_rgb(data: bytes, path: str) -> None:
    """Note, once per process, an image that is loaded as RGB although it is not RGB."""
    try:
        with Image.open(io.BytesIO(data)) as img:  # reads the header only
            mode = img.mode
    except Exception:  # the decoder has already read it; its header is only looked at here
        return
    how = rgb_conversion(mode)
    if how:
        note_once('image not RGB',
                  f'{path}: {mode} image, loaded as RGB ({how}); further images that are not '
                  f'RGB are loaded the same way without a note')


@TRANSFORMS.register_module()
class LoadImageFromFileChecked(LoadImageFromFile):
    """``LoadImageFromFile`` that rejects missing, truncated and undecodable images.

    Required Keys: ``img_path``. Modified Keys: ``img`` ``(H, W, 3)`` uint8 (BGR by default),
    ``img_shape``, ``ori_shape``. Arguments are those of mmcv's ``LoadImageFromFile``.

    With ``color_type='color'`` (the default) a grayscale, palette or RGBA image is decoded to
    three color channels (gray copied, palette looked up, alpha dropped); the first such image
    a process loads is named in a warning.

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
            if self.color_type == 'color':
                _note_if_not_rgb(data, filename)
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


@TRANSFORMS.register_module()
class SkipMissingLabel(BaseTransform):
    """Run a label loader only for samples whose label file exists.

    For labels that are not needed, such as the target labels of unsupervised domain
    adaptation: a sample without its label file loads without ``gt_seg_map``; a label that
    exists is loaded (and checked) by ``loader``.

    Required Keys: ``seg_map_path`` (may be None). Added Keys: those of ``loader``, when the
    label exists.

    Args:
        loader: The label loader, a config (e.g. ``dict(type='LoadAnnotationsChecked')``) or
            a built ``LoadAnnotations``.
    """

    def __init__(self, loader: Union[dict, LoadAnnotations]) -> None:
        self.loader = TRANSFORMS.build(loader) if isinstance(loader, dict) else loader

    def transform(self, results: dict) -> dict:
        """Load the label with ``loader`` when its file exists.

        Args:
            results: Result dict from the dataset.

        Returns:
            ``results``, with the label when it exists.
        """
        path = results.get('seg_map_path')
        backend_args = getattr(self.loader, 'backend_args', None)
        if path is None or not fileio.exists(path, backend_args=backend_args):
            return results
        return self.loader(results)

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(loader={self.loader!r})'
