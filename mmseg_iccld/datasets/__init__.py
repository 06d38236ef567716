# Each module registers itself on import; add one import line per module.
from . import uda_dataset  # noqa: F401
from . import (acdc, dark_zurich, gta, mapillary, pseudo_label_margins, synthia,  # noqa: F401
               transforms)
