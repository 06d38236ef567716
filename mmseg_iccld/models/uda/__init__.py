# Each module registers itself on import; add one import line per module.
from .dacs import DACS  # noqa: F401
from .iccld_uda import ICCLDUDA  # noqa: F401
from .source_only import SourceOnly  # noqa: F401
