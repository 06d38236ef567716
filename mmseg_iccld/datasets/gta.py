"""GTA5 (Richter et al., "Playing for Data", ECCV 2016) with the 19 Cityscapes classes."""
import copy
from typing import List

from mmseg.datasets import CityscapesDataset
from mmseg.datasets.basesegdataset import BaseSegDataset
from mmseg.registry import DATASETS

from .listing import checked_data_list

GTA5_LAYOUT = """\
  <data_root>/images/<name>.png                  RGB images (from the GTA5 download)
  <data_root>/labels/<name>.png                  raw labels (Cityscapes label ids)
  <data_root>/labels/<name>_labelTrainIds.png    written by tools/convert_datasets/gta.py"""


@DATASETS.register_module()
class GTA5Dataset(BaseSegDataset):
    """GTA5 images with labels converted to Cityscapes train ids.

    Classes and palette are Cityscapes'. Run ``tools/convert_datasets/gta.py <data_root>``
    once to write the ``*_labelTrainIds.png`` labels and the rare-class statistics.

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
                 data_prefix: dict = dict(img_path='images', seg_map_path='labels'),
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
        return checked_data_list(self, BaseSegDataset.load_data_list, GTA5_LAYOUT,
                                 'tools/convert_datasets/gta.py')
