"""Switches ICCLD from step 1 (DACS on E and D) to step 2 (latent diffusion + adversarial
alignment) and ramps the adversarial weight."""
from typing import Optional

from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmseg.registry import HOOKS


@HOOKS.register_module()
class ICCLDStepHook(Hook):
    """Sets the training step of an ICCLD UDA model from the runner's iteration.

    Step 1 covers iterations ``[0, switch_iter)``, step 2 ``[switch_iter, max_iters)``. In
    step 2 the adversarial weight stays 0 for ``lambda_adv_delay_iters`` iterations (the
    discriminator learns the domains before the generator is asked to fool it), then grows
    linearly to ``lambda_adv`` over ``lambda_adv_ramp_iters`` iterations. Both are pure
    functions of the iteration, so a resumed run continues with exactly the same values.

    Args:
        switch_iter: First iteration of step 2.
        lambda_adv: Final weight of the generator's adversarial loss (eq. 3).
        lambda_adv_ramp_iters: Length of the linear ramp; 0 uses ``lambda_adv`` at once.
        lambda_adv_delay_iters: Iterations of step 2 at ``lambda_adv = 0`` before the ramp.
    """

    priority = 'VERY_HIGH'  # before the model sees the iteration's batch

    def __init__(self,
                 switch_iter: int,
                 lambda_adv: float = 0.01,
                 lambda_adv_ramp_iters: int = 0,
                 lambda_adv_delay_iters: int = 0) -> None:
        if min(switch_iter, lambda_adv, lambda_adv_ramp_iters, lambda_adv_delay_iters) < 0:
            raise ValueError('ICCLDStepHook: switch_iter, lambda_adv, lambda_adv_ramp_iters '
                             'and lambda_adv_delay_iters must be >= 0')
        self.switch_iter = switch_iter
        self.lambda_adv = lambda_adv
        self.lambda_adv_ramp_iters = lambda_adv_ramp_iters
        self.lambda_adv_delay_iters = lambda_adv_delay_iters

    def step_at(self, iteration: int) -> int:
        """The ICCLD training step (1 or 2) of a 0-based iteration."""
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
        if not hasattr(model, 'set_training_step'):
            raise TypeError(f'ICCLDStepHook needs an ICCLD UDA model (with '
                            f'set_training_step), got {type(model).__name__}')
        step = self.step_at(runner.iter)
        if step != model.training_step:
            runner.logger.info(f'ICCLD: step {step} from iteration {runner.iter}')
        model.set_training_step(step, lambda_adv=self.lambda_adv_at(runner.iter))
