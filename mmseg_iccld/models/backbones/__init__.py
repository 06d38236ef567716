from .dinov2 import DINOv2  # noqa: F401
from .mit_sdpa import MixVisionTransformerSDPA  # noqa: F401
