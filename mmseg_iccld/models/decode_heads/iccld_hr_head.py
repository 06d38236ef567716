"""HRDA's multi-resolution head around ICCLD's decoder D (``ICCLDHR``, docs/method.md 6.3).

Each view is D's input, ``(encoder stages, z0, m_hat0)``: the context view's mask estimate is
the chain's, the detail windows' their crops of it. D (``InterCoderHead``) decodes both
views; the scale attention reads the context view's encoder stages, as HRDA's reads its
backbone features; fusion and losses are HRDA's.
"""
from typing import Optional, Sequence, Tuple

from mmseg.registry import MODELS
from torch import Tensor

from .hrda_head import HRDAHead

# D's input of one view: encoder stages, z0 and the mask estimate (None: m_hat0 = 0)
ICCLDView = Tuple[Sequence[Tensor], Tensor, Optional[Tensor]]


@MODELS.register_module()
class ICCLDHRHead(HRDAHead):
    """:class:`HRDAHead` whose views are D's inputs ``(stages, z0, m_hat0)``.

    Args:
        single_scale_head: Config of ``InterCoderHead`` (give ``in_index`` explicitly: the
            scale attention reads the same stages).
        **kwargs: The other arguments of :class:`HRDAHead`.
    """

    def decode_view(self, view: ICCLDView) -> Tensor:
        """D's logits of one view."""
        return self.head(*view)

    def view_stages(self, view: ICCLDView) -> Sequence[Tensor]:
        """The encoder stages of one view."""
        return view[0]
