"""Synthia RAND-CITYSCAPES (Ros et al., CVPR 2016) with the 19 Cityscapes classes."""
from mmseg.registry import DATASETS

from .converted_source import ConvertedSourceDataset


@DATASETS.register_module()
class SynthiaDataset(ConvertedSourceDataset):
    """Synthia images with labels converted to Cityscapes train ids.

    Synthia never contains terrain, truck and train (train ids 9, 14, 16). Run
    ``tools/convert_datasets/synthia.py <data_root>`` once to write the
    ``*_labelTrainIds.png`` labels and the rare-class statistics. Arguments as
    ``ConvertedSourceDataset``.
    """

    DATA_PREFIX = dict(img_path='RGB', seg_map_path='GT/LABELS')
    LAYOUT = """\
  <data_root>/RGB/<name>.png                        RGB images (from the Synthia download)
  <data_root>/GT/LABELS/<name>.png                  raw labels (16-bit, Synthia class ids)
  <data_root>/GT/LABELS/<name>_labelTrainIds.png    written by tools/convert_datasets/synthia.py"""
    CONVERTER = 'tools/convert_datasets/synthia.py'
