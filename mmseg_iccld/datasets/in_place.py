"""Datasets read in place from the folders their official downloads unpack to (ACDC, Dark
Zurich): images and labels of one or more sub-folders, the labels already in Cityscapes train
ids. There is no conversion step, so the dataset checks, when it is built, what a converter
checks of the other datasets: every image pairs with its label and every label with its
image, and no file is empty, truncated or unreadable, nor a label of another size than its
image (headers and trailing bytes only, no decoding)."""
import copy
import logging
import os.path as osp
from typing import List, Optional, Sequence, Tuple

from mmengine.logging import print_log
from mmseg.datasets import CityscapesDataset
from mmseg.datasets.basesegdataset import BaseSegDataset

from .folder_walk import list_files
from .validation import check_folders, file_problems, format_problems

IMG_SUFFIX = '_rgb_anon.png'
LABEL_SUFFIX = '_gt_labelTrainIds.png'


class InPlaceDataset(BaseSegDataset):
    """Cityscapes' 19 classes on images ``<image folder>/<sequence>/<name>_rgb_anon.png`` with
    labels ``<label folder>/<sequence>/<name>_gt_labelTrainIds.png``.

    A subclass says which folder pairs make up a split (:meth:`folder_pairs`) and spells out
    its layout for messages (``LAYOUT``).

    Args:
        with_labels: Whether the samples have labels: every image must have one, and every
            label an image (a split without ground truth, such as a test split or an
            unlabelled target, sets False).
        skip_invalid: Leave out the images that fail a check, with a log line listing each
            and why, instead of failing. Only for splits without labels (an unlabelled
            training target): a split with labels is evaluated on and keeps every sample, as
            the converters never skip Cityscapes val.
        **kwargs: Passed to ``BaseSegDataset`` (``data_root``, ``pipeline``, ...).
    """

    METAINFO = copy.deepcopy(CityscapesDataset.METAINFO)
    LAYOUT: str = ''
    # every image has its label and every label its image once the dataset lists (the tools
    # need not scan its folders again)
    CHECKS_PAIRING = True

    def __init__(self, with_labels: bool = True, skip_invalid: bool = False,
                 **kwargs) -> None:
        if skip_invalid and with_labels:
            raise ValueError(f'{type(self).__name__}: skip_invalid is only for a split without '
                             f'labels (with_labels=False); a labelled split is evaluated on '
                             f'and keeps every sample')
        self.with_labels = with_labels
        self.skip_invalid = skip_invalid
        super().__init__(img_suffix=IMG_SUFFIX, seg_map_suffix=LABEL_SUFFIX, **kwargs)

    def folder_pairs(self) -> List[Tuple[str, Optional[str]]]:
        """``(image folder, label folder)`` of each part of the split, relative to
        ``data_root``."""
        raise NotImplementedError

    def load_data_list(self) -> List[dict]:
        """List the images of every part of the split with their labels, checking each.

        Returns:
            mmseg data infos, sorted by image path within each part.

        Raises:
            FileNotFoundError: When a folder is missing, a part holds no image, an image has
                no label or a label no image, or a file fails a check (one line per file and
                problem, all at once).
        """
        root = self.data_root or ''
        pairs = [(osp.join(root, img), osp.join(root, ann) if self.with_labels else None)
                 for img, ann in self.folder_pairs()]
        check_folders([(what, path) for img, ann in pairs
                       for what, path in (('image folder', img), ('label folder', ann))
                       if path is not None], self.LAYOUT)
        data_list, problems, skipped, skipped_lines = [], [], 0, []
        for img_dir, ann_dir in pairs:
            names = [rel[:-len(IMG_SUFFIX)] for rel in list_files(img_dir, IMG_SUFFIX)]
            if not names:
                raise FileNotFoundError(f'{type(self).__name__}: no *{IMG_SUFFIX} images in '
                                        f'{img_dir!r}. Expected layout:\n{self.LAYOUT}')
            problems += self._pairing_problems(names, img_dir, ann_dir)
            for name in names:
                info = dict(img_path=osp.join(img_dir, name + IMG_SUFFIX),
                            label_map=self.label_map, reduce_zero_label=False, seg_fields=[])
                if ann_dir is not None:
                    info['seg_map_path'] = osp.join(ann_dir, name + LABEL_SUFFIX)
                label = info.get('seg_map_path')
                found = file_problems(info['img_path'],
                                      label if label and osp.isfile(label) else None)
                if found and self.skip_invalid:
                    skipped, skipped_lines = skipped + 1, skipped_lines + found
                    continue
                problems += found
                data_list.append(info)
        if problems:
            raise FileNotFoundError(f'{type(self).__name__}: {len(problems)} problem(s) with '
                                    f'images and labels:\n{format_problems(problems)}')
        if skipped and not data_list:
            raise FileNotFoundError(f'{type(self).__name__}: no image passed the checks:\n'
                                    f'{format_problems(skipped_lines)}')
        if skipped:
            print_log(f'{type(self).__name__}: left out {skipped} image(s) that fail a check '
                      f'(skip_invalid=True):\n{format_problems(skipped_lines)}',
                      logger='current', level=logging.WARNING)
        return data_list

    @staticmethod
    def _pairing_problems(names: Sequence[str], img_dir: str,
                          ann_dir: Optional[str]) -> List[str]:
        """One line for each image without a label and each label without an image, worded
        as the converters word them."""
        if ann_dir is None:
            return []
        labels = {rel[:-len(LABEL_SUFFIX)] for rel in list_files(ann_dir, LABEL_SUFFIX)}
        problems = [f'{osp.join(img_dir, n + IMG_SUFFIX)}: image has no label (expected '
                    f'{osp.join(ann_dir, n + LABEL_SUFFIX)})' for n in names if n not in labels]
        problems += [f'{osp.join(ann_dir, n + LABEL_SUFFIX)}: label has no image (expected '
                     f'{osp.join(img_dir, n + IMG_SUFFIX)})'
                     for n in sorted(labels - set(names))]
        return problems
