"""ACDC (Sakaridis et al., "ACDC: The Adverse Conditions Dataset with Correspondences for
Semantic Driving Scene Understanding", ICCV 2021), read in place from its downloads
``rgb_anon_trainvaltest.zip`` and ``gt_trainval.zip``."""
from typing import List, Optional, Sequence, Tuple

from mmseg.registry import DATASETS

from .in_place import InPlaceDataset

CONDITIONS = ('fog', 'night', 'rain', 'snow')
SPLITS = ('train', 'val', 'test')


@DATASETS.register_module()
class ACDCDataset(InPlaceDataset):
    """ACDC's images of some or all of its four conditions, one split.

    Args:
        split: ``'train'``, ``'val'`` or ``'test'`` (no ground truth: ``with_labels=False``).
        conditions: Some of ``('fog', 'night', 'rain', 'snow')``; all by default, as the
            anchors' Cityscapes -> ACDC benchmark.
        with_labels: Whether to pair each image with its label; default: all splits but
            ``'test'``.
        **kwargs: ``skip_invalid`` (:class:`InPlaceDataset`) and the arguments of
            ``BaseSegDataset`` (``data_root``, ``pipeline``, ...).
    """

    LAYOUT = """\
  <data_root>/rgb_anon/<condition>/<split>/<sequence>/<name>_rgb_anon.png
  <data_root>/gt/<condition>/<split>/<sequence>/<name>_gt_labelTrainIds.png
  (condition: fog, night, rain, snow; split: train, val, test; the test split has no gt)"""

    def __init__(self, split: str = 'train', conditions: Sequence[str] = CONDITIONS,
                 with_labels: Optional[bool] = None, **kwargs) -> None:
        if split not in SPLITS:
            raise ValueError(f'ACDCDataset: split must be one of {SPLITS}, got {split!r}')
        unknown = [c for c in conditions if c not in CONDITIONS]
        if unknown or not conditions:
            raise ValueError(f'ACDCDataset: conditions must be some of {CONDITIONS}, got '
                             f'{list(conditions)}')
        self.split = split
        self.conditions = tuple(conditions)
        super().__init__(with_labels=split != 'test' if with_labels is None else with_labels,
                         **kwargs)

    def folder_pairs(self) -> List[Tuple[str, str]]:
        """``rgb_anon/<condition>/<split>`` and ``gt/<condition>/<split>`` per condition."""
        return [(f'rgb_anon/{c}/{self.split}', f'gt/{c}/{self.split}') for c in self.conditions]
