# Each module registers itself on import; add one import line per module.
from . import iccld_phase_hook  # noqa: F401
from . import rng_state_hook  # noqa: F401
