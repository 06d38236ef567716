"""Switches ICCLD from phase 1 (DACS on E and D) to phase 2 (latent diffusion + adversarial
alignment) and ramps the adversarial weight."""
from typing import Optional

from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmseg.registry import HOOKS


@HOOKS.register_module()
class ICCLDPhaseHook(Hook):
    """Sets the training phase of an ICCLD UDA model from the runner's iteration.

    Phase 1 covers iterations ``[0, switch_iter)``, phase 2 ``[switch_iter, max_iters)``. In
    phase 2 the adversarial weight stays 0 for ``lambda_adv_delay_iters`` iterations (the
    discriminator learns the domains before the generator is asked to fool it), then grows
    linearly to ``lambda_adv`` over ``lambda_adv_ramp_iters`` iterations. Both are pure
    functions of the iteration, so a resumed run continues with exactly the same values.

    Args:
        switch_iter: First iteration of phase 2.
        lambda_adv: Final weight of the generator's adversarial loss (eq. 3).
        lambda_adv_ramp_iters: Length of the linear ramp; 0 uses ``lambda_adv`` at once.
        lambda_adv_delay_iters: Iterations of phase 2 at ``lambda_adv = 0`` before the ramp.
    """

    priority = 'VERY_HIGH'  # before the model sees the iteration's batch

    def __init__(self,
                 switch_iter: int,
                 lambda_adv: float = 0.01,
                 lambda_adv_ramp_iters: int = 0,
                 lambda_adv_delay_iters: int = 0) -> None:
        if min(switch_iter, lambda_adv, lambda_adv_ramp_iters, lambda_adv_delay_iters) < 0:
            raise ValueError(f'{type(self).__name__}: switch_iter, lambda_adv, '
                             'lambda_adv_ramp_iters and lambda_adv_delay_iters must be >= 0')
        self.switch_iter = switch_iter
        self.lambda_adv = lambda_adv
        self.lambda_adv_ramp_iters = lambda_adv_ramp_iters
        self.lambda_adv_delay_iters = lambda_adv_delay_iters

    def phase_at(self, iteration: int) -> int:
        """The ICCLD training phase (1 or 2) of a 0-based iteration."""
        return 2 if iteration >= self.switch_iter else 1

    def lambda_adv_at(self, iteration: int) -> float:
        """The adversarial weight of a 0-based iteration."""
        start = self.switch_iter + self.lambda_adv_delay_iters
        if iteration < start:
            return 0.0
        if self.lambda_adv_ramp_iters == 0:
            return self.lambda_adv
        progress = (iteration - start + 1) / self.lambda_adv_ramp_iters
        return self.lambda_adv * min(1.0, progress)

    def before_train_iter(self,
                          runner,
                          batch_idx: int,
                          data_batch: Optional[dict] = None) -> None:
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        if not hasattr(model, 'set_phase'):
            raise TypeError(f'{type(self).__name__} needs an ICCLD UDA model (with '
                            f'set_phase), got {type(model).__name__}')
        phase = self.phase_at(runner.iter)
        if model.set_phase(phase, lambda_adv=self.lambda_adv_at(runner.iter)):
            runner.logger.info(f'ICCLD: phase {phase} from iteration {runner.iter}')

