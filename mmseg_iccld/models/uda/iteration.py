"""What one UDA iteration carries from one part to the next.

``DACS.train_step`` runs the parts of an iteration in a fixed order (``docs/method.md``,
3.1); each part reads what the earlier ones left in a :class:`UDAIteration` and adds its own
results. A method that needs more (ICCLD: the shared diffusion draw, the discriminator's
inputs) subclasses it.
"""
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Union

from mmengine.optim import OptimWrapper, OptimWrapperDict
from mmseg.utils import SampleList
from torch import Tensor


@dataclass
class UDAIteration:
    """The state of one iteration between its parts.

    Attributes:
        data: The preprocessed batch (``inputs``, ``data_samples``, ``target_inputs``,
            ``target_data_samples``).
        optim_wrapper: The student's optimizer wrapper.
        optim_wrappers: The wrapper or wrapper dict the runner passed (other networks' steps).
        pseudo_labels: The teacher's target pseudo-labels ``(N, H, W)``.
        pseudo_weights: Their pixel weights ``(N, H, W)``.
        pseudo_weight: The batch's confident fraction, 0-dim.
        mixed_inputs: The ClassMix images ``(N, 3, H, W)``, augmented.
        mixed_samples: Their data samples (``gt_sem_seg``, ``seg_weight``).
        losses: The detached total of each backpropagated pass, in order.
        log_vars: The detached log variables of the passes and steps, in order.
    """

    data: dict
    optim_wrapper: OptimWrapper
    optim_wrappers: Union[OptimWrapper, OptimWrapperDict]
    pseudo_labels: Optional[Tensor] = None
    pseudo_weights: Optional[Tensor] = None
    pseudo_weight: Optional[Tensor] = None
    mixed_inputs: Optional[Tensor] = None
    mixed_samples: Optional[SampleList] = None
    losses: List[Tensor] = field(default_factory=list)
    log_vars: Dict[str, Tensor] = field(default_factory=OrderedDict)

    def add_pass(self, loss: Tensor, log_vars: Dict[str, Tensor]) -> None:
        """Record one backpropagated pass: its total and its log variables."""
        self.losses.append(loss)
        self.log_vars.update(log_vars)

    def total_loss(self) -> Tensor:
        """The sum of the passes' totals, in the order they ran."""
        total = self.losses[0]
        for loss in self.losses[1:]:
            total = total + loss
        return total
