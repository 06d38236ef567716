"""A warning at the end of a run in which iterations were skipped for a non-finite loss.

Under ``nonfinite='skip'`` the UDA models drop an iteration whose loss holds a NaN or an
infinity and log a warning for it (``NonFiniteLossGuard``); among thousands of log lines
those are easy to miss, and the run otherwise ends as if nothing happened. This hook repeats
the count once the training loop has finished. Models without a guard are left alone.
"""
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmseg.registry import HOOKS


@HOOKS.register_module()
class NonFiniteReportHook(Hook):
    """Warns after training when the model's non-finite loss guard skipped any iteration."""

    priority = 'VERY_LOW'

    def after_train(self, runner) -> None:
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        guard = getattr(model, 'loss_guard', None)
        if guard is None or not guard.skipped:
            return
        runner.logger.warning(
            f'{guard.skipped} of the {guard.steps} iterations of this run were skipped for a '
            f'non-finite loss (nonfinite=\'skip\'); the log names the iteration and the loss '
            f'terms of each')
