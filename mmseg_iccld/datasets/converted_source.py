"""A synthetic source data set whose labels a converter rewrote as Cityscapes train ids."""
import copy
from typing import List, Optional

from mmseg.datasets import CityscapesDataset
from mmseg.datasets.basesegdataset import BaseSegDataset

from .listing import checked_data_list


class ConvertedSourceDataset(BaseSegDataset):
    """Images with ``*_labelTrainIds.png`` labels written by the data set's converter.

    Classes and palette are Cityscapes' 19. A subclass names its folders (``DATA_PREFIX``),
    the layout its error messages show (``LAYOUT``) and its converter script (``CONVERTER``).

    Args:
        img_suffix: Image file suffix.
        seg_map_suffix: Converted label suffix.
        data_prefix: Image and label folders, relative to ``data_root``; the subclass's
            ``DATA_PREFIX`` when not given.
        **kwargs: Passed to ``BaseSegDataset``.
    """

    METAINFO = copy.deepcopy(CityscapesDataset.METAINFO)
    DATA_PREFIX: dict = {}
    LAYOUT: str = ''
    CONVERTER: str = ''

    def __init__(self,
                 img_suffix: str = '.png',
                 seg_map_suffix: str = '_labelTrainIds.png',
                 data_prefix: Optional[dict] = None,
                 **kwargs) -> None:
        if data_prefix is None:
            data_prefix = dict(self.DATA_PREFIX)
        super().__init__(
            img_suffix=img_suffix, seg_map_suffix=seg_map_suffix, data_prefix=data_prefix,
            **kwargs)

    def load_data_list(self) -> List[dict]:
        """List image/label pairs, failing with a clear message on a broken layout.

        Returns:
            mmseg data infos, in the split file's order, or sorted by image path.

        Raises:
            FileNotFoundError: When a folder is missing, no image is found, or an image has
                no converted label.
            SplitFileError: When the split file (``ann_file``) does not exist or names no
                image.
        """
        return checked_data_list(self, self.LAYOUT, self.CONVERTER)
