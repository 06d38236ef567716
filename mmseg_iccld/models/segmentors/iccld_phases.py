"""ICCLD's two training phases: the ``phase`` buffer, its switch, and the modules that stop
training in phase 2 (``phase2_frozen``)."""
from typing import List, Sequence

import torch


class ICCLDPhases:
    """Phase state of :class:`ICCLD` (an ``nn.Module`` with ``backbone``, ``neck``,
    ``diffusion`` and ``decode_head``).

    Phase 1 trains E and D with D reading m_hat0 = 0; phase 2 adds the latent diffusion.
    """

    def init_phases(self, phase: int, phase2_frozen: Sequence[str]) -> None:
        """Register the ``phase`` buffer and set the initial phase.

        Args:
            phase: Initial phase, 1 or 2.
            phase2_frozen: Names of submodules that stop training in phase 2.
        """
        for name in phase2_frozen:
            if not isinstance(getattr(self, name, None), torch.nn.Module):
                raise ValueError(f'phase2_frozen names {name!r}, which is not a submodule '
                                 f'of ICCLD (backbone, neck, diffusion, decode_head)')
        self.phase2_frozen = tuple(phase2_frozen)
        self._frozen_params: List[torch.nn.Parameter] = []
        # a buffer, so checkpoints (and resumed runs) know which phase they are in; the
        # forward passes read its host copy, so they never wait for the device
        self.register_buffer('phase', torch.tensor(1, dtype=torch.long))
        self._phase = 1
        self.set_phase(phase)

    def set_phase(self, phase: int) -> None:
        """Switch between phase 1 (D reads m_hat0 = 0) and phase 2 (latent diffusion).

        Only a change of phase touches the modules (``phase2_frozen``); the phase hook calls
        this every iteration, and the modes of the modules (the EMA teacher keeps its dropout
        off) stay as their owners set them.

        Args:
            phase: 1 or 2.
        """
        if phase not in (1, 2):
            raise ValueError(f'phase must be 1 or 2, got {phase}')
        changed = phase != self._phase
        self.phase.fill_(phase)
        self._phase = phase
        if changed:
            self._freeze_for_phase()

    def phase_loaded(self) -> None:
        """Take the phase of a state dict just loaded into the ``phase`` buffer."""
        self._phase = int(self.phase)
        self._freeze_for_phase()

    def _freeze_for_phase(self) -> None:
        """Stop (phase 2) or restore (phase 1) the training of ``phase2_frozen``; a model
        without frozen modules is left as it is."""
        if not self.phase2_frozen:
            return
        frozen = self._phase == 2
        if frozen and not self._frozen_params:
            self._frozen_params = [p for name in self.phase2_frozen
                                   for p in getattr(self, name).parameters() if p.requires_grad]
            for param in self._frozen_params:
                param.requires_grad_(False)
        elif not frozen and self._frozen_params:
            for param in self._frozen_params:
                param.requires_grad_(True)
            self._frozen_params = []
        for name in self.phase2_frozen:
            module = getattr(self, name)
            if frozen:
                module.eval()
            else:
                module.train(self.training)

    def train(self, mode: bool = True):
        """nn.Module's train, with the modules frozen in phase 2 kept in eval mode."""
        super().train(mode)
        if getattr(self, '_phase', 1) == 2:
            for name in self.phase2_frozen:
                getattr(self, name).eval()
        return self

    @property
    def current_phase(self) -> int:
        """The training phase, 1 or 2: the ``phase`` buffer, read on the host.

        The buffer changes only through :meth:`set_phase` and checkpoint loading, which both
        update this copy.
        """
        return self._phase

    @property
    def in_phase2(self) -> bool:
        """Whether the model is in phase 2 (latent diffusion)."""
        return self._phase == 2
