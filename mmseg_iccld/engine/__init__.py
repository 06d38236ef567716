# Each module registers itself on import; add one import line per module.
from . import checkpoint, hooks, layer_decay, optim_constructor  # noqa: F401
