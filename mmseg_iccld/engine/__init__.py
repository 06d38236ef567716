# Each module registers itself on import; add one import line per module.
from . import checkpoint, hooks, optim_constructor  # noqa: F401
