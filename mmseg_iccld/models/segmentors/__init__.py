# Each module registers itself on import; add one import line per module.
from .iccld import ICCLD  # noqa: F401
from .hrda_encoder_decoder import HRDAEncoderDecoder  # noqa: F401
from .iccld_hr import ICCLDHR  # noqa: F401
