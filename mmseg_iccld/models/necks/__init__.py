# Each module registers itself on import; add one import line per module.
from .latent_projector import LatentProjector  # noqa: F401
