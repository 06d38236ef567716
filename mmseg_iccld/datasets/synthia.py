"""Synthia RAND-CITYSCAPES (Ros et al., CVPR 2016) with the 19 Cityscapes classes."""
import copy
from typing import List

from mmseg.datasets import CityscapesDataset
from mmseg.datasets.basesegdataset import BaseSegDataset
from mmseg.registry import DATASETS

from .listing import checked_data_list

SYNTHIA_LAYOUT = """\
  <data_root>/RGB/<name>.png                        RGB images (from the Synthia download)
  <data_root>/GT/LABELS/<name>.png                  raw labels (16-bit, Synthia class ids)
  <data_root>/GT/LABELS/<name>_labelTrainIds.png    written by tools/convert_datasets/synthia.py"""


@DATASETS.register_module()
class SynthiaDataset(BaseSegDataset):
    """Synthia images with labels converted to Cityscapes train ids.

    Classes and palette are Cityscapes' 19; Synthia never contains terrain, truck and train
    (train ids 9, 14, 16). Run ``tools/convert_datasets/synthia.py <data_root>`` once to write
    the ``*_labelTrainIds.png`` labels and the rare-class statistics.

    Args:
        img_suffix: Image file suffix.
        seg_map_suffix: Converted label suffix.
        data_prefix: Image and label folders, relative to ``data_root``.
        **kwargs: Passed to ``BaseSegDataset``.
    """

    METAINFO = copy.deepcopy(CityscapesDataset.METAINFO)

    def __init__(self,
                 img_suffix: str = '.png',
                 seg_map_suffix: str = '_labelTrainIds.png',
                 data_prefix: dict = dict(img_path='RGB', seg_map_path='GT/LABELS'),
                 **kwargs) -> None:
        super().__init__(
            img_suffix=img_suffix, seg_map_suffix=seg_map_suffix, data_prefix=data_prefix,
            **kwargs)

    def load_data_list(self) -> List[dict]:
        """List image/label pairs, failing with a clear message on a broken layout.

        Returns:
            mmseg data infos, sorted by image path.

        Raises:
            FileNotFoundError: When a folder is missing, no image is found, or an image has
                no converted label.
        """
        return checked_data_list(self, BaseSegDataset.load_data_list, SYNTHIA_LAYOUT,
                                 'tools/convert_datasets/synthia.py')
