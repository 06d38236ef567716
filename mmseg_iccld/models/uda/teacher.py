"""The DACS mean teacher: an exponential moving average of the student.

mmengine's ``ExponentialMovingAverage`` averages as ``ema = (1 - m) * ema + m * x``. DAFormer's
teacher uses ``m = 1 - alpha_t`` with the warm-up ``alpha_t = min(1 - 1 / (t + 1), alpha)``, so
early teachers follow the student closely. Here ``t`` is the teacher's ``steps`` buffer, which
checkpoints save: the first update copies the student (``steps`` 0), and the update after the
optimizer step of iteration ``i`` has ``steps = i + 1``, the iteration index DAFormer uses when
it updates at the start of the next iteration.
"""
from typing import Optional

import torch
import torch.nn as nn
from mmcv.cnn.bricks.drop import DropPath
from mmengine.model import ExponentialMovingAverage
from mmseg.registry import MODELS
from torch.nn.modules.dropout import _DropoutNd


def disable_dropout(module: nn.Module) -> None:
    """Put the dropout and drop-path layers of ``module`` in eval mode, leaving the rest.

    Other backbones bring their own ``DropPath`` (timm's, for one), so it is matched by class
    name as well.

    Args:
        module: Any module; changed in place.
    """
    for m in module.modules():
        if isinstance(m, (_DropoutNd, DropPath)) or type(m).__name__ == 'DropPath':
            m.training = False


@MODELS.register_module()
class EMATeacher(ExponentialMovingAverage):
    """DAFormer's EMA teacher, with the ``min(1 - 1 / (t + 1), alpha)`` warm-up.

    Parameters are averaged; buffers (BN statistics) are copied from the student at every
    update (``update_buffers=False``). The teacher runs in train mode like the student (so
    BN uses batch statistics, as in DAFormer), but dropout and drop path never switch on.

    Args:
        model: The student (unwrapped, not a DDP wrapper); it is deep-copied.
        alpha: Final EMA decay (DAFormer: 0.999).
        device: Device of the copy; None keeps the student's.
    """

    def __init__(self, model: nn.Module, alpha: float = 0.999,
                 device: Optional[torch.device] = None) -> None:
        if not 0.0 < alpha < 1.0:
            raise ValueError(f'alpha must be in (0, 1), got {alpha}')
        super().__init__(model, momentum=1.0 - alpha, interval=1, device=device,
                         update_buffers=False)
        self.alpha = alpha
        self._host_steps: Optional[int] = None
        disable_dropout(self.module)

    def alpha_at(self, steps: int) -> float:
        """EMA decay of the update made when the ``steps`` buffer equals ``steps`` (>= 1)."""
        return min(1.0 - 1.0 / (steps + 1), self.alpha)

    @property
    def host_steps(self) -> int:
        """The ``steps`` buffer as a Python int, counted on the host.

        Read from the buffer once (after construction or a checkpoint load) and counted up by
        :meth:`update_parameters`, so the training loop never waits for the device to tell it.
        """
        if self._host_steps is None:
            self._host_steps = int(self.steps)
        return self._host_steps

    def _load_from_state_dict(self, *args, **kwargs) -> None:
        super()._load_from_state_dict(*args, **kwargs)
        self._host_steps = None  # a checkpoint brought its own steps

    @torch.no_grad()
    def update_parameters(self, model: nn.Module) -> None:
        """Copy the student (first call) or average it in (later calls); copy its buffers.

        What mmengine's ``update_parameters`` does with ``interval=1`` and
        ``update_buffers=False``, with the decay taken from :attr:`host_steps` instead of the
        device, and with multi-tensor (``torch._foreach_*``) operations: a few kernel launches
        per update instead of two per parameter tensor.

        Args:
            model: The student (unwrapped).
        """
        steps = self.host_steps
        source = dict(model.named_parameters())
        averaged, current = [], []
        for name, param in self.avg_parameters.items():
            if steps == 0 or param.dtype.is_floating_point:
                averaged.append(param.data)
                current.append(source[name].data.to(param.device))
        if steps == 0:
            torch._foreach_copy_(averaged, current)
        elif averaged:
            alpha = self.alpha_at(steps)
            torch._foreach_mul_(averaged, alpha)
            torch._foreach_add_(averaged, current, alpha=1.0 - alpha)
        buffers = list(zip(self.module.buffers(), model.buffers()))
        if buffers:
            torch._foreach_copy_([own.data for own, _ in buffers],
                                 [src.data.to(own.device) for own, src in buffers])
        self.steps.add_(1)
        self._host_steps = steps + 1

    def train(self, mode: bool = True) -> 'EMATeacher':
        """Set train/eval mode; dropout and drop path stay off."""
        super().train(mode)
        disable_dropout(self.module)
        return self
