"""Mapillary Vistas v1.2 (Neuhold et al., ICCV 2017) scored on the 19 Cityscapes classes.

mmseg's ``MapillaryDataset_v1`` reads the download as it unpacks (``<split>/images/*.jpg``,
labels ``*.png`` holding the 66 class ids); this subclass keeps its listing and turns the ids
into Cityscapes train ids as the labels load, through mmseg's own ``label_map`` (applied by
``LoadAnnotations``), with HRDA's grouping (``MAPILLARY_V1_TABLE``): nothing is converted on
disk. Domain-generalisation runs test on its validation split.
"""
import copy
from typing import Dict, Optional, Sequence

from mmseg.datasets import CityscapesDataset, MapillaryDataset_v1
from mmseg.registry import DATASETS

from .label_tables import MAPILLARY_V1_TABLE


@DATASETS.register_module()
class MapillaryCityscapesDataset(MapillaryDataset_v1):
    """Mapillary Vistas v1.2 images with their labels mapped to the 19 Cityscapes classes.

    Args:
        **kwargs: The arguments of mmseg's ``MapillaryDataset_v1`` (``data_root``,
            ``data_prefix``: ``img_path='validation/images'`` and ``seg_map_path=
            'validation/v1.2/labels'`` in the Vistas 2.0 download, ``'validation/labels'``
            in the v1.2 one, ``pipeline``, ...).
    """

    METAINFO = copy.deepcopy(CityscapesDataset.METAINFO)

    @classmethod
    def get_label_map(cls, new_classes: Optional[Sequence] = None) -> Dict[int, int]:
        """The Mapillary id -> Cityscapes train id map ``LoadAnnotations`` applies.

        Args:
            new_classes: The classes of the dataset's metainfo; only the 19 Cityscapes
                classes in their order are possible.

        Returns:
            ``{id: train id}`` for all 66 ids (255 for those not scored).
        """
        if new_classes is not None and tuple(new_classes) != cls.METAINFO['classes']:
            raise ValueError('MapillaryCityscapesDataset scores the 19 Cityscapes classes in '
                             f'their order; metainfo asks for {list(new_classes)}')
        return dict(MAPILLARY_V1_TABLE.id_to_train_id)
