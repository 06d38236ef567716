# Each module registers itself on import; add one import line per module.
from .diffusion_latent_neck import DiffusionLatentNeck  # noqa: F401
