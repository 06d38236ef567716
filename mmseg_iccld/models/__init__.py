# Each module registers itself on import; add one import line per module.
from . import (backbones, decode_heads, diffusion, discriminators, losses, necks,  # noqa: F401
               segmentors, uda)
from . import data_preprocessor  # noqa: F401
