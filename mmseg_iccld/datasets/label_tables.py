"""Label id -> Cityscapes train id tables for GTA5, Synthia and Cityscapes.

GTA5 labels use Cityscapes' label ids, so GTA5 and Cityscapes share the table that
``cityscapesscripts`` ships (read from it, never retyped). Synthia (RAND-CITYSCAPES) has its
own 23 class ids; its table maps them as DAFormer's converter (which HRDA and MIC reuse) does,
except for the three ids of classes Synthia has no pixels of: 16 terrain, 18 truck and 20
train are ignored (255) here, where DAFormer maps them to train ids 9, 14 and 16. Its
converter notes that Synthia holds no such pixels; where that is so, both give the same labels
and class statistics (see ``SYNTHIA_TABLE``).
"""
from dataclasses import dataclass, field
from typing import Dict, List

import numpy as np
from cityscapesscripts.helpers.labels import labels as _cityscapes_labels

IGNORE_INDEX = 255
NUM_TRAIN_CLASSES = 19


@dataclass(frozen=True)
class LabelTable:
    """A complete map from a dataset's label ids to train ids.

    Args:
        name: Dataset name, used in error messages.
        id_to_train_id: Train id (0..18, or 255 for ignored) of every id in ``[0, num_ids)``.
        num_ids: Number of valid label ids; an id ``>= num_ids`` is unknown to the dataset.
    """

    name: str
    id_to_train_id: Dict[int, int]
    num_ids: int
    lut: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        missing = sorted(set(range(self.num_ids)) - set(self.id_to_train_id))
        extra = sorted(set(self.id_to_train_id) - set(range(self.num_ids)))
        if missing or extra:
            raise ValueError(f'{self.name} label table: ids {missing} have no train id and '
                             f'ids {extra} lie outside [0, {self.num_ids})')
        bad = {k: v for k, v in self.id_to_train_id.items()
               if not (0 <= v < NUM_TRAIN_CLASSES or v == IGNORE_INDEX)}
        if bad:
            raise ValueError(f'{self.name} label table: invalid train ids {bad}')
        lut = np.full(self.num_ids, IGNORE_INDEX, dtype=np.uint8)
        for label_id, train_id in self.id_to_train_id.items():
            lut[label_id] = train_id
        object.__setattr__(self, 'lut', lut)

    def unknown_pixels(self, label_ids: np.ndarray) -> Dict[int, int]:
        """Pixels of each id in ``label_ids`` that the table does not know.

        Args:
            label_ids: Integer label map, any shape.

        Returns:
            ``{id: pixels}`` for the distinct ids outside ``[0, num_ids)``, ascending; empty
            when all are known.
        """
        values, counts = np.unique(label_ids, return_counts=True)
        return {int(v): int(n) for v, n in zip(values, counts) if v < 0 or v >= self.num_ids}

    def unknown_ids(self, label_ids: np.ndarray) -> List[int]:
        """Ids in ``label_ids`` that the table does not know.

        Args:
            label_ids: Integer label map, any shape.

        Returns:
            The sorted distinct ids outside ``[0, num_ids)``; empty when all are known.
        """
        return list(self.unknown_pixels(label_ids))

    def to_train_ids(self, label_ids: np.ndarray, unknown_to_ignore: bool = False) -> np.ndarray:
        """Map label ids to train ids.

        Args:
            label_ids: Integer label map ``(H, W)``.
            unknown_to_ignore: Map ids outside ``[0, num_ids)`` to the ignore index. When
                False, every id must lie in ``[0, num_ids)`` (check with :meth:`unknown_ids`
                first).

        Returns:
            ``(H, W)`` uint8 train ids, 255 where the id is ignored.
        """
        if not unknown_to_ignore:
            return self.lut[label_ids]
        known = (label_ids >= 0) & (label_ids < self.num_ids)
        train_ids = np.full(label_ids.shape, IGNORE_INDEX, dtype=np.uint8)
        train_ids[known] = self.lut[label_ids[known]]
        return train_ids


def _cityscapes_id_to_train_id() -> Dict[int, int]:
    # License plate has id -1 and cannot occur in an 8-bit label image; trainId -1 and 255 are
    # both "not trained on" in cityscapesscripts.
    return {
        label.id: (label.trainId if 0 <= label.trainId < NUM_TRAIN_CLASSES else IGNORE_INDEX)
        for label in _cityscapes_labels if label.id >= 0
    }


CITYSCAPES_TABLE = LabelTable('Cityscapes', _cityscapes_id_to_train_id(), num_ids=34)
# GTA5 annotates with Cityscapes' label ids (Richter et al., 2016).
GTA5_TABLE = LabelTable('GTA5', _cityscapes_id_to_train_id(), num_ids=34)

# Synthia RAND-CITYSCAPES ids: 0 void, 1 sky, 2 building, 3 road, 4 sidewalk, 5 fence,
# 6 vegetation, 7 pole, 8 car, 9 traffic sign, 10 pedestrian, 11 bicycle, 12 motorcycle,
# 13 parking-slot, 14 road-work, 15 traffic light, 16 terrain, 17 rider, 18 truck, 19 bus,
# 20 train, 21 wall, 22 lanemarking. The 16 trained ids map as in DAFormer's converter. Synthia
# has no terrain, truck or train (its class list names them; DAFormer's converter notes they are
# not present), and the Synthia benchmark evaluates 16 classes without them. DAFormer maps ids
# 16, 18 and 20 to train ids 9, 14 and 16; this table maps them to 255, so that pixels of them,
# should a copy of Synthia hold any, are neither trained as classes that are never evaluated nor
# drawn by rare class sampling, which favours the rarest classes.
_SYNTHIA_TRAINED = {3: 0, 4: 1, 2: 2, 21: 3, 5: 4, 7: 5, 15: 6, 9: 7, 6: 8, 1: 10, 10: 11,
                    17: 12, 8: 13, 19: 15, 12: 17, 11: 18}
SYNTHIA_TABLE = LabelTable(
    'Synthia', {i: _SYNTHIA_TRAINED.get(i, IGNORE_INDEX) for i in range(23)}, num_ids=23)


def _mapillary_v1_id_to_train_id() -> Dict[int, int]:
    # Mapillary Vistas v1.2's 66 classes in id order are mmseg's MapillaryDataset_v1 class
    # list; the grouping into the 19 Cityscapes classes is HRDA's for domain generalisation.
    from mmseg.datasets import MapillaryDataset_v1
    names = MapillaryDataset_v1.METAINFO['classes']
    train_id = {name: i for i, name in enumerate(_CITYSCAPES_TRAIN_NAMES)}
    return {i: train_id.get(_MAPILLARY_TO_CITYSCAPES.get(name), IGNORE_INDEX)
            for i, name in enumerate(names)}


_CITYSCAPES_TRAIN_NAMES = tuple(
    label.name for label in sorted(_cityscapes_labels, key=lambda label: label.trainId)
    if 0 <= label.trainId < NUM_TRAIN_CLASSES)
# Mapillary Vistas v1.2 class -> Cityscapes class; every other class is ignored (255).
_MAPILLARY_TO_CITYSCAPES = {
    'Road': 'road', 'Lane Marking - General': 'road', 'Manhole': 'road',
    'Curb': 'sidewalk', 'Sidewalk': 'sidewalk',
    'Building': 'building', 'Wall': 'wall', 'Fence': 'fence',
    'Pole': 'pole', 'Utility Pole': 'pole',
    'Traffic Light': 'traffic light', 'Traffic Sign (Front)': 'traffic sign',
    'Vegetation': 'vegetation', 'Terrain': 'terrain', 'Sky': 'sky', 'Person': 'person',
    'Bicyclist': 'rider', 'Motorcyclist': 'rider', 'Other Rider': 'rider',
    'Car': 'car', 'Truck': 'truck', 'Bus': 'bus', 'On Rails': 'train',
    'Motorcycle': 'motorcycle', 'Bicycle': 'bicycle',
}
MAPILLARY_V1_TABLE = LabelTable('Mapillary Vistas v1.2', _mapillary_v1_id_to_train_id(),
                                num_ids=66)
