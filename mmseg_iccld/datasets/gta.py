"""GTA5 (Richter et al., "Playing for Data", ECCV 2016) with the 19 Cityscapes classes."""
from mmseg.registry import DATASETS

from .converted_source import ConvertedSourceDataset


@DATASETS.register_module()
class GTA5Dataset(ConvertedSourceDataset):
    """GTA5 images with labels converted to Cityscapes train ids.

    Run ``tools/convert_datasets/gta.py <data_root>`` once to write the
    ``*_labelTrainIds.png`` labels and the rare-class statistics. Arguments as
    ``ConvertedSourceDataset``.
    """

    DATA_PREFIX = dict(img_path='images', seg_map_path='labels')
    LAYOUT = """\
  <data_root>/images/<name>.png                  RGB images (from the GTA5 download)
  <data_root>/labels/<name>.png                  raw labels (Cityscapes label ids)
  <data_root>/labels/<name>_labelTrainIds.png    written by tools/convert_datasets/gta.py"""
    CONVERTER = 'tools/convert_datasets/gta.py'
