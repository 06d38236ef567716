"""Checks that a test split is complete before a checkpoint is scored on it.

mmseg lists a split by its images: a label whose image is missing (deleted, or lost in an
incomplete copy) leaves the split smaller without a word, and a split without any image
fails inside the metric with numpy's "need at least one array to concatenate".
"""
import copy
import os
import os.path as osp
from typing import List, Tuple


def orphan_labels(img_dir: str, ann_dir: str, img_suffix: str,
                  seg_map_suffix: str) -> List[Tuple[str, str]]:
    """The labels below ``ann_dir`` whose image, as mmseg pairs them, does not exist.

    mmseg pairs ``<img_dir>/<path><img_suffix>`` with ``<ann_dir>/<path><seg_map_suffix>``.

    Args:
        img_dir: The image folder.
        ann_dir: The label folder.
        img_suffix: The images' suffix (e.g. ``'_leftImg8bit.png'``).
        seg_map_suffix: The labels' suffix (e.g. ``'_gtFine_labelTrainIds.png'``).

    Returns:
        ``(label, expected image)`` pairs, sorted by label.
    """
    orphans = []
    for folder, _, files in os.walk(ann_dir):
        for name in files:
            if not name.endswith(seg_map_suffix):
                continue
            label = osp.join(folder, name)
            stem = osp.relpath(label, ann_dir)[:-len(seg_map_suffix)]
            image = osp.join(img_dir, stem + img_suffix)
            if not osp.isfile(image):
                orphans.append((label, image))
    return sorted(orphans)


def check_test_split(dataset_cfg) -> None:
    """Raise when the test split of a config is empty, or a label of it has no image.

    Checked on a lazily built copy of the dataset, which lists its images without storing
    them: mmengine cannot build an empty dataset at all (its serialisation fails with the
    numpy error). Only datasets derived from mmengine's ``BaseDataset`` are checked, and
    labels only where the images are found by scanning a local folder (an mmseg dataset
    without ``ann_file``); a list file chooses its images itself.

    Args:
        dataset_cfg: The config of the test dataset (``test_dataloader.dataset``), with the
            registry scope of the runner in effect.

    Raises:
        FileNotFoundError: For a missing image folder or an empty split, naming the folder,
            and for labels without an image, naming the first of them.
    """
    from mmengine.dataset import BaseDataset
    from mmseg.registry import DATASETS
    dataset_cfg = copy.deepcopy(dict(dataset_cfg))
    dataset_type = DATASETS.get(dataset_cfg.get('type'))
    if not (isinstance(dataset_type, type) and issubclass(dataset_type, BaseDataset)):
        return
    dataset_cfg['lazy_init'] = True
    dataset = DATASETS.build(dataset_cfg)
    prefix = getattr(dataset, 'data_prefix', None) or {}
    img_dir, ann_dir = prefix.get('img_path'), prefix.get('seg_map_path')
    local = not getattr(dataset, 'backend_args', None)
    if local and img_dir and not osp.isdir(img_dir):
        raise FileNotFoundError(f'the image folder {img_dir} of the test split does not exist')
    if not dataset.load_data_list():
        raise FileNotFoundError(f'the test split is empty: {empty_split(dataset)}')
    # a dataset that pairs its images and labels itself (ACDC, Dark Zurich) has checked them
    scanned = local and img_dir and ann_dir and not getattr(dataset, 'ann_file', None) \
        and osp.isdir(ann_dir) and not getattr(dataset, 'CHECKS_PAIRING', False)
    if scanned and hasattr(dataset, 'img_suffix') and hasattr(dataset, 'seg_map_suffix'):
        orphans = orphan_labels(img_dir, ann_dir, dataset.img_suffix, dataset.seg_map_suffix)
        if orphans:
            label, image = orphans[0]
            raise FileNotFoundError(
                f'the test split is incomplete: {len(orphans)} label(s) without an image, '
                f'e.g. {label} (its image {image} is missing): restore the image or remove '
                'the label')


def empty_split(dataset) -> str:
    """Where the images of an empty split were looked for, for a message."""
    img_dir = (getattr(dataset, 'data_prefix', None) or {}).get('img_path')
    if not img_dir:
        return f'the {type(dataset).__name__} lists no images'
    return f"no *{getattr(dataset, 'img_suffix', '')} images in {img_dir}"


def count_images(dataset) -> int:
    """The number of images of the built test dataset; an error when there are none.

    Args:
        dataset: The test dataloader's dataset.

    Raises:
        FileNotFoundError: For an empty split, naming its image folder where it has one.
    """
    size = len(dataset)
    if size == 0:
        raise FileNotFoundError(f'the test split is empty: {empty_split(dataset)}')
    return size
