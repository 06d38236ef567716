"""Dark Zurich (Sakaridis et al., "Guided Curriculum Model Adaptation and Uncertainty-Aware
Evaluation for Semantic Nighttime Image Segmentation", ICCV 2019), read in place from its
downloads ``Dark_Zurich_train_anon.zip``, ``Dark_Zurich_val_anon.zip`` and
``Dark_Zurich_test_anon_withoutGt.zip``."""
from typing import List, Optional, Tuple

from mmseg.registry import DATASETS

from .in_place import InPlaceDataset

SPLITS = ('train', 'val', 'test')
CONDITIONS = ('day', 'twilight', 'night')


@DATASETS.register_module()
class DarkZurichInPlaceDataset(InPlaceDataset):
    """One condition of one split of Dark Zurich, in the layout of its downloads.

    mmseg's own ``DarkZurichDataset`` lists one image folder; this one takes the split and the
    condition and checks that images and labels pair up.

    The UDA target of the anchors' Cityscapes -> Dark Zurich benchmark is the unlabelled night
    training set (``split='train'``); the labelled night val split (50 images) validates, and
    the night test split (151 images, labels held by the evaluation server) is predicted.

    Args:
        split: ``'train'``, ``'val'`` or ``'test'``.
        condition: ``'night'`` (default), or for the train split ``'day'`` / ``'twilight'``.
        with_labels: Whether to pair each image with its label; default: only ``'val'`` has
            labels.
        **kwargs: ``skip_invalid`` (:class:`InPlaceDataset`) and the arguments of
            ``BaseSegDataset`` (``data_root``, ``pipeline``, ...).
    """

    LAYOUT = """\
  <data_root>/rgb_anon/<split>/<condition>/<sequence>/<name>_rgb_anon.png
  <data_root>/gt/val/night/<sequence>/<name>_gt_labelTrainIds.png
  (split: train, val, test; condition: night, and day / twilight in train)"""

    def __init__(self, split: str = 'train', condition: str = 'night',
                 with_labels: Optional[bool] = None, **kwargs) -> None:
        if split not in SPLITS:
            raise ValueError(f'DarkZurichInPlaceDataset: split must be one of {SPLITS}, got '
                             f'{split!r}')
        if condition not in CONDITIONS or (split != 'train' and condition != 'night'):
            raise ValueError(f'DarkZurichInPlaceDataset: the {split} split has the conditions '
                             f'{CONDITIONS if split == "train" else ("night", )}, got '
                             f'{condition!r}')
        self.split = split
        self.condition = condition
        super().__init__(with_labels=split == 'val' if with_labels is None else with_labels,
                         **kwargs)

    def folder_pairs(self) -> List[Tuple[str, str]]:
        """``rgb_anon/<split>/<condition>`` and ``gt/<split>/<condition>``."""
        return [(f'rgb_anon/{self.split}/{self.condition}', f'gt/{self.split}/{self.condition}')]
