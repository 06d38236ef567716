# Each module registers itself on import; add one import line per module.
from .inter_coder_head import InterCoderHead  # noqa: F401
from .daformer_head import DAFormerHead  # noqa: F401
from .hrda_head import HRDAAttentionHead, HRDAHead  # noqa: F401
from .iccld_hr_head import ICCLDHRHead  # noqa: F401
from .vfm_uda_head import VFMUDAHead  # noqa: F401
