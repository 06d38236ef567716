# Each module registers itself on import; add one import line per module.
from . import synthia_metric  # noqa: F401
from . import per_class_metric  # noqa: F401
from . import uncertainty_metric  # noqa: F401
from . import prediction_count  # noqa: F401
