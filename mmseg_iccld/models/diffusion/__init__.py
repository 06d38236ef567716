# Each module registers itself on import; add one import line per module.
from .mask_diffusion import DiffusionDraw, DiffusionLoss, MaskDiffusion  # noqa: F401
