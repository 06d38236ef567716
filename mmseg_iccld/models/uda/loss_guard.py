"""A guard against non-finite losses in the UDA training loops.

A NaN or infinite loss term, once backpropagated and stepped, turns every weight into NaN;
the next checkpoint then holds a dead model, and the EMA teacher follows within an iteration.
The guard checks each loss dict before its backward pass and applies one of two policies:

- ``'raise'`` (default): a ``FloatingPointError`` naming the term(s) and the iteration,
  raised before the backward pass and the optimizer step, so weights, teacher and the
  checkpoints on disk stay as they were;
- ``'skip'``: the iteration is dropped: no optimizer step, no teacher update, gradients
  zeroed, and the buffers (BN statistics, which the forward pass already updated with the
  bad batch) restored. The log gets ``nonfinite_skipped``, the number of iterations skipped
  so far (mmengine logs its current value, not a window mean), and a warning naming the
  terms. ICCLD's discriminator loss is checked after the student's step: when it alone is
  non-finite, the discriminator's step and the teacher update are what is skipped.

Skipping has a limit: when more than ``max_skips`` of the last ``window`` iterations were
skipped (by default 10 of 100), a ``FloatingPointError`` stops the run, as under ``'raise'``;
a run that keeps producing non-finite losses is broken, and its checkpoints would only
record that. The model config sets the policy as ``nonfinite='skip'`` (the default limit) or
``nonfinite=dict(policy='skip', max_skips=20, window=500)``. The ``NonFiniteReportHook``
(added by ``tools/train.py``) warns at the end of a run in which any iteration was skipped.

Under distributed training every rank takes the same decision (one all-reduced flag per
check), so no rank waits in a collective that another rank has left. With ``'skip'`` the
backward pass still runs, because DDP expects one backward per forward; its gradients are
discarded.
"""
import difflib
import logging
from collections import deque
from typing import Deque, Dict, List, Optional, Union

import torch
import torch.nn as nn
from mmengine import dist
from mmengine.logging import MessageHub, print_log
from torch import Tensor

NONFINITE_POLICIES = ('raise', 'skip')
# at most this many skipped iterations within the last DEFAULT_WINDOW iterations
DEFAULT_MAX_SKIPS = 10
DEFAULT_WINDOW = 100


def nonfinite_terms(losses: Dict[str, object]) -> List[str]:
    """Names of the loss terms of ``losses`` that hold a NaN or an infinity.

    Only the terms mmengine's ``parse_losses`` sums (keys containing ``'loss'``) are
    checked: an accuracy does not reach the weights.

    Args:
        losses: A loss dict: tensors or lists of tensors.

    Returns:
        The offending keys, in the dict's order.
    """
    terms = {}
    for name, value in losses.items():
        values = value if isinstance(value, (list, tuple)) else [value]
        values = [v.detach() for v in values if isinstance(v, Tensor)]
        if 'loss' in name and values:
            terms[name] = torch.stack([torch.isfinite(v).all() for v in values]).all()
    if not terms:
        return []
    # one host-device synchronisation for the whole dict; the names only when needed
    finite = torch.stack(list(terms.values()))
    if bool(finite.all()):
        return []
    return [name for name, ok in zip(terms, finite.tolist()) if not ok]


def current_iteration(fallback: int) -> int:
    """The runner's 0-based iteration (the message hub's ``'iter'``), else ``fallback``."""
    iteration = MessageHub.get_current_instance().get_info('iter')
    return fallback if iteration is None else int(iteration)


def _any_rank(flag: bool) -> bool:
    """Whether ``flag`` is true on any rank (the flag itself outside distributed runs)."""
    if not dist.is_distributed():
        return flag
    value = torch.tensor([float(flag)], device=dist.get_comm_device())
    dist.all_reduce(value, op='max')
    return bool(value.item() > 0)


class NonFiniteLossGuard:
    """Checks the loss dicts of one training iteration and enforces a policy.

    Usage in a ``train_step``: :meth:`begin` once (after any one-time initialisation),
    :meth:`check` on each loss dict before its backward pass, :meth:`skip_step` instead of
    deciding on the optimizer step and the teacher update, and :meth:`log_vars` into the log.

    Args:
        policy: ``'raise'`` or ``'skip'`` (module docstring), or a dict with ``policy`` and
            optionally ``max_skips`` and ``window``, as the model config's ``nonfinite``.
        max_skips: Under ``'skip'``, the most iterations that may be skipped within the last
            ``window`` iterations; one more raises ``FloatingPointError``.
        window: The number of recent iterations ``max_skips`` counts over.
    """

    def __init__(self, policy: Union[str, dict] = 'raise', max_skips: int = DEFAULT_MAX_SKIPS,
                 window: int = DEFAULT_WINDOW) -> None:
        if isinstance(policy, dict):
            options = dict(max_skips=max_skips, window=window, policy='raise')
            unknown = [k for k in policy if k not in options]
            if unknown:
                near = difflib.get_close_matches(unknown[0], list(options), n=1)
                hint = f' (did you mean {near[0]!r}?)' if near else ''
                raise ValueError(f'nonfinite: unknown key {unknown[0]!r}{hint}; the keys are '
                                 f'{", ".join(sorted(options))}')
            options.update(policy)
            policy, max_skips, window = options['policy'], options['max_skips'], options['window']
        if policy not in NONFINITE_POLICIES:
            raise ValueError(f'nonfinite must be one of {NONFINITE_POLICIES}, got {policy!r}')
        if int(max_skips) < 0 or int(window) < 1:
            raise ValueError(f'nonfinite: max_skips must be >= 0 and window >= 1, got '
                             f'max_skips={max_skips}, window={window}')
        self.policy = policy
        self.max_skips = int(max_skips)
        self.window = int(window)
        self.skipped = 0
        self._recent: Deque[int] = deque()  # iterations skipped within the window
        self._steps_seen = 0
        self._iteration = 0
        self._bad: List[str] = []
        self._skipping = False
        self._buffers: Optional[Dict[str, Tensor]] = None
        self._module: Optional[nn.Module] = None

    def begin(self, module: nn.Module) -> None:
        """Start an iteration; under ``'skip'``, remember the buffers of ``module``.

        Args:
            module: The whole UDA model (student, teacher, ...): its buffers are restored
                when the iteration is skipped.
        """
        self._iteration = current_iteration(self._steps_seen)
        self._steps_seen += 1
        self._bad = []
        self._skipping = False
        if self.policy == 'skip':
            self._module = module
            self._buffers = {name: b.detach().clone() for name, b in module.named_buffers()}

    def check(self, losses: Dict[str, object]) -> None:
        """Check one loss dict (keys already prefixed, e.g. ``'src.decode.loss_ce'``).

        Args:
            losses: The dict that is about to be summed and backpropagated.

        Raises:
            FloatingPointError: Under ``'raise'``, naming the non-finite terms and the
                iteration (on the other ranks: that another process saw one).
        """
        bad = nonfinite_terms(losses)
        if not _any_rank(bool(bad)):
            return
        if self.policy == 'raise':
            where = (f'non-finite loss {", ".join(self._describe(losses, bad))}' if bad else
                     'non-finite loss on another process')
            raise FloatingPointError(
                f'{where} at iteration {self._iteration}; training stopped before updating '
                f'the weights with it (set nonfinite=\'skip\' in the UDA model config to '
                f'skip such steps instead)')
        self._bad += bad or ['<another process>']

    def skip_step(self) -> bool:
        """Whether the iteration's remaining updates must be skipped; restores the buffers.

        The answer stays True for the rest of the iteration once a non-finite term was
        seen, so a later update of the same iteration (the discriminator's, the teacher's)
        asks again and the iteration is counted once.

        Returns:
            True under ``'skip'`` after a non-finite term (on any rank); the caller then
            zeroes the gradients and makes neither an optimizer step nor a teacher update.

        Raises:
            FloatingPointError: When skipping this iteration makes more than ``max_skips``
                skipped iterations within the last ``window`` (every rank alike: the
                decision to skip is shared).
        """
        if not self._bad:
            return self._skipping
        if self._buffers is not None:
            with torch.no_grad():
                for name, buffer in self._module.named_buffers():
                    if name in self._buffers:
                        buffer.copy_(self._buffers[name])
        if not self._skipping:
            self.skipped += 1
            self._count_recent()
        self._skipping = True
        print_log(f'iteration {self._iteration}: non-finite loss {", ".join(self._bad)}; '
                  f'the iteration\'s updates are skipped ({self.skipped} skipped iterations '
                  f'so far)', logger='current', level=logging.WARNING)
        self._bad = []
        return True

    @property
    def steps(self) -> int:
        """The number of iterations this guard has seen (since the process started)."""
        return self._steps_seen

    def _count_recent(self) -> None:
        """Record the skipped iteration; raise when the window holds too many."""
        self._recent.append(self._iteration)
        while self._recent and self._recent[0] <= self._iteration - self.window:
            self._recent.popleft()
        if len(self._recent) > self.max_skips:
            raise FloatingPointError(
                f'non-finite loss {", ".join(self._bad)} at iteration {self._iteration}: '
                f'{len(self._recent)} of the last {self.window} iterations had a non-finite '
                f'loss (nonfinite max_skips={self.max_skips}); training stopped, no update '
                f'used a non-finite loss')

    def log_vars(self) -> Dict[str, Tensor]:
        """``{'nonfinite_skipped': count}`` under ``'skip'``; nothing under ``'raise'``."""
        if self.policy != 'skip':
            return {}
        return {'nonfinite_skipped': torch.tensor(float(self.skipped))}

    @staticmethod
    def _describe(losses: Dict[str, object], names: List[str]) -> List[str]:
        described = []
        for name in names:
            value = losses[name]
            if isinstance(value, Tensor) and value.numel() == 1:
                described.append(f'{name} = {value.item()}')
            else:
                described.append(name)
        return described
