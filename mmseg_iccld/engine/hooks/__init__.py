# Each module registers itself on import; add one import line per module.
from . import checkpoint_fit_hook  # noqa: F401
from . import iccld_phase_hook  # noqa: F401
from . import nonfinite_report_hook  # noqa: F401
from . import rng_state_hook  # noqa: F401
