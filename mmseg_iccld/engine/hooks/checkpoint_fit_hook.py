"""A checkpoint that does not fit the model stops the run before anything is loaded.

mmengine loads a checkpoint's weights non-strictly: missing, unexpected and reshaped keys are
logged as a warning and the run trains on a partly loaded model. On resume it then hands the
checkpoint's optimizer states to optimizers of another layout and fails with
``KeyError: 'param_groups'`` (another config's checkpoint) deep inside ``load_state_dict``.

``CheckpointFitHook`` compares the checkpoint with the model (keys and shapes), and on resume
with the optimizers and parameter schedulers (their names and parameter groups), in
``after_load_checkpoint``: mmengine calls it after reading the file and before loading any of
it. A mismatch raises :class:`CheckpointMismatchError`, one line naming the file and what
differs (optimizer settings edited since the checkpoint, which resume ignores, are one
warning instead: ``resume_schedule``); for ``load_from`` (not resume) ``strict=False`` loads the matching weights anyway,
with a warning.

Under distributed training ``MMSeparateDistributedDataParallel`` wraps each trainable child
of a UDA model in DDP, so its checkpoints name the student ``model.module.backbone...`` where
a single-process run has ``model.backbone...`` (and a teacher copied from a wrapped student
``teacher.module.module...``). Before comparing, the hook renames such keys
to the model's layout, in the checkpoint itself, so that a run resumes (or loads) a
checkpoint of the other kind instead of silently leaving the student unloaded.
"""
from typing import Dict, List

from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.optim import OptimWrapper, OptimWrapperDict
from mmseg.registry import HOOKS

from ..resume_schedule import optimizer_setting_differences, resume_settings_note
from ..state_dicts import state_dict_differences
from ..wrapped_keys import matching_keys


class CheckpointMismatchError(ValueError):
    """A checkpoint does not fit the model, optimizers or schedulers of the config."""


def align_wrapped_keys(state: Dict[str, object],
                       expected: Dict[str, object]) -> Dict[str, object]:
    """``state`` with the keys that differ from the model's only by DDP wrappers renamed to
    the model's (either way round, at any depth: :func:`~..wrapped_keys.matching_keys`);
    other keys unchanged.

    Args:
        state: The checkpoint's state dict.
        expected: The model's.
    """
    renamed = {key: target for target, key in matching_keys(state, expected).items()}
    return {renamed.get(k, k): v for k, v in state.items()}


def fit_checkpoint_state(checkpoint: dict, expected: Dict[str, object]) -> Dict[str, object]:
    """The checkpoint's weights under the keys of the model, written back into ``checkpoint``:
    DDP's leading ``module.`` removed (as mmengine's ``revise_keys`` does), the wrappers of
    children aligned (:func:`align_wrapped_keys`)."""
    state = checkpoint['state_dict'] if 'state_dict' in checkpoint else checkpoint
    fitted = {(k[len('module.'):] if k.startswith('module.') else k): v
              for k, v in state.items()}
    fitted = align_wrapped_keys(fitted, expected)
    state.clear()
    state.update(fitted)
    return fitted


def _group_sizes(optimizer_state: dict) -> List[int]:
    return [len(group.get('params', ())) for group in optimizer_state.get('param_groups', ())]


def optimizer_differences(saved: object, wrapper) -> List[str]:
    """What keeps the checkpoint's optimizer states ``saved`` from loading into ``wrapper``.

    Args:
        saved: ``checkpoint['optimizer']``.
        wrapper: The runner's built ``OptimWrapper`` or ``OptimWrapperDict``.
    """
    if isinstance(wrapper, OptimWrapperDict):
        names = sorted(wrapper.optim_wrappers)
        if not isinstance(saved, dict) or 'param_groups' in saved:
            return [f'it holds the state of one optimizer, this config trains '
                    f'{len(names)} ({", ".join(names)})']
        if sorted(saved) != names:
            return [f'it holds optimizers {", ".join(sorted(saved))}, this config trains '
                    f'{", ".join(names)}']
        return [problem for name in names for problem in _group_differences(
            saved[name], wrapper.optim_wrappers[name], f'optimizer {name}')]
    if not isinstance(saved, dict) or 'param_groups' not in saved:
        names = sorted(saved) if isinstance(saved, dict) else []
        return [f'it holds optimizers {", ".join(names)}, this config trains one']
    return _group_differences(saved, wrapper, 'the optimizer')


def _group_differences(saved: dict, wrapper: OptimWrapper, what: str) -> List[str]:
    have = _group_sizes(saved)
    want = _group_sizes(wrapper.optimizer.state_dict())
    if have != want:
        return [f'{what} has parameter groups of {have} parameters in the checkpoint, '
                f'{want} in this config']
    return []


def scheduler_differences(saved: object, schedulers) -> List[str]:
    """What keeps ``checkpoint['param_schedulers']`` from loading into the runner's."""
    if isinstance(schedulers, dict):
        if not isinstance(saved, dict):
            return [f'it holds one list of parameter schedulers, this config schedules '
                    f'{", ".join(sorted(schedulers))}']
        if sorted(saved) != sorted(schedulers):
            return [f'it schedules {", ".join(sorted(saved))}, this config '
                    f'{", ".join(sorted(schedulers))}']
        pairs = [(f' of {name}', saved[name], schedulers[name]) for name in sorted(saved)]
    elif isinstance(schedulers, list):
        if not isinstance(saved, list):
            return [f'it schedules {", ".join(sorted(saved))}, this config has one list of '
                    f'parameter schedulers']
        pairs = [('', saved, schedulers)]
    else:
        return []
    return [f'{len(have)} parameter schedulers{where} in the checkpoint, {len(want)} in this '
            f'config' for where, have, want in pairs if len(have) != len(want)]


@HOOKS.register_module()
class CheckpointFitHook(Hook):
    """Refuses a checkpoint that does not fit the model (and, on resume, the optimizers and
    parameter schedulers) before mmengine loads it.

    Args:
        strict: For ``load_from`` without resume: refuse weights that fit only partly. With
            False they load with a warning (mmengine's behaviour). Resume is always strict.
    """

    priority = 'VERY_HIGH'  # before any other hook reads or changes the checkpoint

    def __init__(self, strict: bool = True) -> None:
        self.strict = strict

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        resuming = bool(getattr(runner, '_resume', False))
        source = getattr(runner, '_load_from', None) or 'the checkpoint'
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        expected = model.state_dict()
        differences = state_dict_differences(expected, fit_checkpoint_state(checkpoint, expected))
        what = f'{type(model).__name__} of this config'
        if resuming:
            # OptimWrapperDict is an OptimWrapper too; before train() builds it, a config
            if not differences and 'optimizer' in checkpoint and \
                    isinstance(runner.optim_wrapper, OptimWrapper):
                differences = optimizer_differences(checkpoint['optimizer'],
                                                    runner.optim_wrapper)
            if not differences and 'param_schedulers' in checkpoint:
                differences = scheduler_differences(checkpoint['param_schedulers'],
                                                    runner.param_schedulers)
            if differences:
                raise CheckpointMismatchError(
                    f'resume: {source} is not a checkpoint of the {what}: '
                    f'{"; ".join(differences)} (to start a new run from its weights, give it '
                    f'as load_from without --resume)')
            if 'optimizer' in checkpoint and isinstance(runner.optim_wrapper, OptimWrapper):
                edited = optimizer_setting_differences(checkpoint['optimizer'],
                                                       runner.optim_wrapper)
                if edited:
                    runner.logger.warning(resume_settings_note(source, edited))
        elif differences:
            if self.strict:
                raise CheckpointMismatchError(
                    f'load_from: {source} does not fit the {what}: {"; ".join(differences)} '
                    f'(--cfg-options load_strict=False loads the matching weights anyway)')
            runner.logger.warning(f'load_from: {source} fits the {what} only partly: '
                                  f'{"; ".join(differences)}; loading the matching weights '
                                  f'(load_strict=False)')

