"""What a resumed run keeps of the checkpoint's optimizer settings, said in one line.

On resume, torch's ``Optimizer.load_state_dict`` puts the checkpoint's parameter groups in
place of the ones the config built: a learning rate (or weight decay, betas, momentum) edited
in the config since the checkpoint was written is ignored, and the run continues the old
schedule without a word. :func:`optimizer_setting_differences` finds those edits, so that the
run can say which settings it continues with and how to train with the new ones instead.

The learning rate is compared as ``initial_lr`` where the schedulers set it (the rate the
schedule starts from, not the scheduled rate at the checkpoint's iteration).
"""
import math
from typing import Dict, List, Tuple

from mmengine.optim import OptimWrapperDict

# parameter-group entries that are not settings of the config
_NOT_SETTINGS = frozenset({'params', 'param_names'})


def _settings(group: dict) -> Dict[str, object]:
    settings = {k: v for k, v in group.items() if k not in _NOT_SETTINGS}
    if 'initial_lr' in settings:
        settings['lr'] = settings.pop('initial_lr')
    return settings


def _same(a: object, b: object) -> bool:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=0.0)
    if isinstance(a, (tuple, list)) and isinstance(b, (tuple, list)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


def _optimizers(saved: object, wrapper) -> List[Tuple[str, dict, object]]:
    """``(name, saved state, built optimizer)`` per optimizer; '' names a single one."""
    if isinstance(wrapper, OptimWrapperDict):
        return [(name, saved[name], wrapper.optim_wrappers[name].optimizer)
                for name in sorted(wrapper.optim_wrappers) if name in saved]
    return [('', saved, wrapper.optimizer)]


def optimizer_setting_differences(saved: object, wrapper) -> List[str]:
    """The settings of the checkpoint's parameter groups that differ from the config's.

    Args:
        saved: ``checkpoint['optimizer']`` (its layout fits ``wrapper``: checked before).
        wrapper: The runner's ``OptimWrapper`` or ``OptimWrapperDict``, built from the config
            and not yet loaded.

    Returns:
        One entry per differing setting, e.g. ``'optimizer group 0 lr: 6e-05 in the
        checkpoint, 0.0001 in the config'``; empty when the config asks for what the
        checkpoint holds.
    """
    found = []
    for name, state, optimizer in _optimizers(saved, wrapper):
        where = f'optimizer {name}' if name else 'optimizer'
        for index, (old, new) in enumerate(zip(state.get('param_groups', ()),
                                               optimizer.param_groups)):
            old, new = _settings(old), _settings(new)
            for key in sorted(set(old) & set(new)):
                if not _same(old[key], new[key]):
                    found.append(f'{where} group {index} {key}: {old[key]} in the checkpoint, '
                                 f'{new[key]} in the config')
    return found


def resume_settings_note(checkpoint: str, differences: List[str], limit: int = 3) -> str:
    """The warning a resumed run logs when the config's settings differ from the checkpoint's.

    Args:
        checkpoint: The checkpoint resumed from, for the message.
        differences: :func:`optimizer_setting_differences`.
        limit: How many differences to name.
    """
    shown = '; '.join(differences[:limit])
    more = f'; {len(differences) - limit} more' if len(differences) > limit else ''
    return (f'resume: the config\'s optimizer settings differ from those {checkpoint} was '
            f'trained with ({shown}{more}); the run continues with the checkpoint\'s, as '
            f'--resume does. To train with the config\'s, start a new run from its weights: '
            f'--cfg-options load_from={checkpoint} without --resume')
