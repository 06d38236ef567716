"""Dataset listings checked when a dataset is built, so that a missing file stops a run before
its first iteration and never in the middle of training.

- :func:`list_samples`: mmseg's listing of an image folder or a split file (``ann_file``),
  walking folders as the converters do (:mod:`mmseg_iccld.datasets.folder_walk`: symlink
  loops skipped, hidden files ignored) and naming the split file when it is missing or empty.
  ``ConvertedSourceDataset`` lists with it, and ``UDADataset`` makes its two datasets list
  with it (:func:`use_checked_listing`).
- :func:`checked_data_list`: ``ConvertedSourceDataset`` (GTA5, Synthia) lists its samples with
  the folders and converted labels checked, leaving out what the converter skipped.
- :func:`leave_out_skipped`, :func:`check_training_files`, :func:`make_labels_optional`: what
  ``UDADataset`` checks of its two datasets (source images and labels, target images; target
  labels are never trained on and may be missing).
"""
import functools
import logging
import os.path as osp
from typing import List

from mmcv.transforms import LoadAnnotations
from mmengine.dataset import BaseDataset
from mmengine.logging import print_log
from mmseg.datasets.basesegdataset import BaseSegDataset

from .conversion_report import skipped_indices
from .folder_walk import list_files
from .transforms import SkipMissingLabel
from .validation import check_folders, check_labels_exist, format_problems


class SplitFileError(ValueError):
    """A dataset's split file (``ann_file``) does not exist or names no image."""


def read_split_file(dataset: BaseSegDataset) -> List[str]:
    """The image names of a dataset's split file, one per line (blank lines left out).

    Args:
        dataset: The dataset, its ``ann_file`` already joined with ``data_root``.

    Returns:
        The names, in the file's order, without the image suffix.

    Raises:
        SplitFileError: When the file does not exist or names no image.
    """
    path, who = dataset.ann_file, type(dataset).__name__
    if not osp.isfile(path):
        raise SplitFileError(f'{who}: the split file (ann_file) {path} does not exist')
    with open(path) as f:
        names = [line.strip() for line in f if line.strip()]
    if not names:
        raise SplitFileError(f'{who}: the split file (ann_file) {path} is empty: it names no '
                             f'image (one name per line, without the suffix '
                             f'{dataset.img_suffix!r})')
    return names


def list_samples(dataset: BaseSegDataset) -> List[dict]:
    """mmseg's ``BaseSegDataset.load_data_list``, listing folders with :func:`list_files`.

    The images are the names of the split file (``ann_file``) when the dataset has one, and
    otherwise the ``img_suffix`` files below the image folder, sorted. An image
    ``<img_dir>/<name><img_suffix>`` is paired with ``<ann_dir>/<name><seg_map_suffix>``.

    Args:
        dataset: The dataset, its prefixes already joined with ``data_root``. Datasets on a
            remote storage backend (``backend_args`` set) are listed by mmseg unchanged.

    Returns:
        mmseg data infos.

    Raises:
        SplitFileError: When the split file does not exist or names no image.
    """
    if dataset.backend_args:
        return BaseSegDataset.load_data_list(dataset)
    img_dir = dataset.data_prefix.get('img_path')
    ann_dir = dataset.data_prefix.get('seg_map_path')
    if dataset.ann_file and not osp.isdir(dataset.ann_file):
        names = read_split_file(dataset)
    else:
        suffix = dataset.img_suffix
        names = [rel[:-len(suffix)] for rel in list_files(img_dir, suffix)]
    data_list = []
    for name in names:
        info = dict(img_path=osp.join(img_dir, name + dataset.img_suffix))
        if ann_dir is not None:
            info['seg_map_path'] = osp.join(ann_dir, name + dataset.seg_map_suffix)
        info.update(label_map=dataset.label_map, reduce_zero_label=dataset.reduce_zero_label,
                    seg_fields=[])
        data_list.append(info)
    return data_list


def use_checked_listing(dataset) -> None:
    """Make a dataset built with ``lazy_init=True`` list its samples with
    :func:`list_samples` when it is fully initialised.

    Only datasets that list with ``BaseSegDataset``'s own ``load_data_list`` (mmseg's
    ``CityscapesDataset`` among them) are changed; the change is to this instance only.

    Args:
        dataset: The dataset, not yet fully initialised.
    """
    if isinstance(dataset, BaseSegDataset) and \
            type(dataset).load_data_list is BaseSegDataset.load_data_list:
        dataset.load_data_list = functools.partial(list_samples, dataset)


def checked_data_list(dataset: BaseSegDataset, layout: str, converter: str) -> List[dict]:
    """:func:`list_samples` with the dataset's folders and converted labels checked.

    Images that the converter's report (``<data_root>/conversion_report.json``) lists as
    skipped are left out, with a log line saying how many.

    Args:
        dataset: The dataset, its ``data_prefix`` already joined with ``data_root``. Datasets
            on a remote storage backend (``backend_args`` set) are listed unchecked.
        layout: The dataset's expected layout, for messages.
        converter: The converter script that writes the dataset's converted labels.

    Returns:
        mmseg data infos.

    Raises:
        FileNotFoundError: When a folder is missing, no image is found, or an image has no
            converted label.
        SplitFileError: When the split file does not exist or names no image.
    """
    if dataset.backend_args:
        return list_samples(dataset)
    img_dir = dataset.data_prefix.get('img_path')
    ann_dir = dataset.data_prefix.get('seg_map_path')
    folders = [('image folder', img_dir)]
    if ann_dir is not None:
        folders.append(('label folder', ann_dir))
    check_folders(folders, layout)
    data_list = list_samples(dataset)
    if not data_list:
        raise FileNotFoundError(f'no *{dataset.img_suffix} images in {img_dir!r}. Expected '
                                f'layout:\n{layout}')
    skipped = skipped_indices([info['img_path'] for info in data_list], dataset.data_root,
                              type(dataset).__name__)
    data_list = [info for i, info in enumerate(data_list) if i not in skipped]
    if ann_dir is not None:
        root = dataset.data_root or '<data_root>'
        check_labels_exist(data_list, '.png', dataset.seg_map_suffix,
                           f'python {converter} {root}', layout)
    return data_list


def _is_local(dataset) -> bool:
    """Whether ``dataset`` is an mmengine dataset whose files can be looked at here."""
    return isinstance(dataset, BaseDataset) and not getattr(dataset, 'backend_args', None)


def full_init_listed(dataset: BaseDataset, role: str) -> None:
    """Fully initialise a lazily built dataset, naming the folder when it lists no image.

    Args:
        dataset: A dataset built with ``lazy_init=True``.
        role: ``'source'`` or ``'target'``, for messages.

    Raises:
        FileNotFoundError: When the image folder does not exist or holds no image.
    """
    name = type(dataset).__name__
    img_dir = getattr(dataset, 'data_prefix', {}).get('img_path')
    if _is_local(dataset) and img_dir and not dataset.ann_file and not osp.isdir(img_dir):
        raise FileNotFoundError(f'UDADataset: the {role} image folder {img_dir!r} does not '
                                f'exist ({name}, data_root {dataset.data_root!r})')
    try:
        dataset.full_init()
    except SplitFileError:
        raise
    except ValueError:
        # mmengine cannot serialise an empty listing; anything else is re-raised as it is.
        if dataset.load_data_list():
            raise
        raise FileNotFoundError(f'UDADataset: the {role} dataset ({name}) lists no images in '
                                f'{img_dir!r}') from None


def leave_out_skipped(dataset, role: str) -> None:
    """Remove from a built dataset the samples its converter's report lists as skipped.

    Args:
        dataset: The dataset; only mmengine datasets with a ``data_root`` are looked at.
        role: ``'source'`` or ``'target'``, for the log line.
    """
    if not _is_local(dataset) or not dataset.data_root:
        return
    paths = [dataset.get_data_info(i).get('img_path', '') for i in range(len(dataset))]
    skipped = skipped_indices(paths, dataset.data_root, f'UDADataset ({role})')
    if skipped:
        dataset.get_subset_([i for i in range(len(paths)) if i not in skipped])


def check_training_files(source, target) -> None:
    """Check that every file UDA training reads exists: source images and labels and target
    images. Target labels are not needed; a note counts those that are missing.

    Datasets that are not mmengine datasets, or on a remote storage backend, are not checked.

    Args:
        source: The source dataset.
        target: The target dataset, or None (source-only training).

    Raises:
        FileNotFoundError: When a dataset is empty, or listing every missing file.
    """
    missing, target_unlabelled, target_total = [], [], 0
    for role, dataset in (('source', source), ('target', target)):
        if dataset is None or not _is_local(dataset):
            continue
        if len(dataset) == 0:
            raise FileNotFoundError(f'UDADataset: the {role} dataset ({type(dataset).__name__})'
                                    f' holds no samples')
        for i in range(len(dataset)):
            info = dataset.get_data_info(i)
            if not osp.isfile(info['img_path']):
                missing.append(f'{info["img_path"]}: {role} image not found')
            label = info.get('seg_map_path')
            if label is None or osp.isfile(label):
                continue
            if role == 'source':
                missing.append(f'{label}: source label not found (image {info["img_path"]})')
            else:
                target_unlabelled.append(label)
        if role == 'target':
            target_total = len(dataset)
    if missing:
        raise FileNotFoundError(f'UDADataset: {len(missing)} file(s) that training reads do '
                                f'not exist:\n{format_problems(missing)}')
    if target_unlabelled:
        print_log(f'UDADataset: {len(target_unlabelled)} of {target_total} target label(s) do '
                  f'not exist, e.g. {target_unlabelled[0]}; target labels are never trained '
                  f'on, so these samples are loaded without one', logger='current',
                  level=logging.WARNING)


def make_labels_optional(dataset) -> None:
    """Wrap every label loader of ``dataset``'s pipeline in :class:`SkipMissingLabel`.

    Args:
        dataset: A dataset whose pipeline is an mmengine ``Compose`` (others are left as
            they are).
    """
    transforms = getattr(getattr(dataset, 'pipeline', None), 'transforms', None)
    if transforms is None:
        return
    for i, transform in enumerate(transforms):
        if isinstance(transform, LoadAnnotations):
            transforms[i] = SkipMissingLabel(transform)
