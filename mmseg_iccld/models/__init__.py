# Each module registers itself on import; add one import line per module.
from . import (backbones, decode_heads, discriminators, losses, necks, segmentors,  # noqa: F401
               uda)
from . import data_preprocessor  # noqa: F401
