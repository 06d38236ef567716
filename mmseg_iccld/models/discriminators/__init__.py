# Each module registers itself on import; add one import line per module.
from .domain_discriminator import DomainDiscriminator  # noqa: F401
