"""Comparing a checkpoint's state dict with a model's: one wording for every tool and hook."""
from typing import Dict, List


def _some(keys: List[str], limit: int = 3) -> str:
    return ', '.join(keys[:limit]) + (', ...' if len(keys) > limit else '')


def state_dict_differences(expected: Dict[str, object], state: Dict[str, object],
                           limit: int = 3) -> List[str]:
    """What keeps ``state`` from loading into a model whose state dict is ``expected``.

    Args:
        expected: The model's state dict.
        state: The checkpoint's.
        limit: How many offending keys to name per kind.

    Returns:
        Phrases such as ``'3 of the model's 120 keys missing (a, b, c)'``; empty when the
        keys and shapes agree.
    """
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    reshaped = [f'{k} {tuple(state[k].shape)} in the checkpoint, {tuple(expected[k].shape)} '
                f'in the model' for k in expected
                if k in state and hasattr(state[k], 'shape') and hasattr(expected[k], 'shape')
                and tuple(state[k].shape) != tuple(expected[k].shape)]
    problems = []
    if missing:
        problems.append(f'{len(missing)} of the model\'s {len(expected)} keys missing '
                        f'({_some(missing, limit)})')
    if unexpected:
        problems.append(f'{len(unexpected)} unexpected keys ({_some(unexpected, limit)})')
    if reshaped:
        problems.append(f'{len(reshaped)} shape mismatches ({_some(reshaped, limit)})')
    return problems
