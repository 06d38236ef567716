"""Checkpoints of earlier ICCLD versions: what still loads (renamed keys) and what cannot
(another layout of eps_theta), with a message that says so."""
from typing import Dict

# the phase buffer's name in earlier checkpoints
LEGACY_PHASE_KEY = 'diffusion_stage'
# parameters of eps_theta in checkpoints written before MaskDiffusion held them
LEGACY_PREFIXES = ('neck.unet.', 'neck.cond_proj.')


def rename_legacy_keys(state: Dict[str, object], prefix: str = '') -> Dict[str, object]:
    """``state`` with the phase buffer's earlier name (``diffusion_stage``) replaced, in
    place, for every ICCLD under ``prefix`` (the student's and the teacher's alike).

    Args:
        state: A state dict (keys as in a checkpoint).
        prefix: Only keys that start with it are renamed.

    Returns:
        ``state``.
    """
    for key in [k for k in state if k.startswith(prefix)]:
        head, _, name = key.rpartition('.')
        if name == LEGACY_PHASE_KEY:
            state[f'{head}.phase' if head else 'phase'] = state.pop(key)
    return state


def check_layout(state: Dict[str, object], prefix: str = '') -> None:
    """Refuse the weights of the earlier layout (eps_theta inside the neck).

    Args:
        state: A state dict.
        prefix: The ICCLD's prefix in it.

    Raises:
        KeyError: Naming the first key of the earlier layout.
    """
    legacy = [k for k in state if k.startswith(tuple(prefix + p for p in LEGACY_PREFIXES))]
    if legacy:
        raise KeyError(
            f'{legacy[0]}: a checkpoint of the earlier ICCLD layout (eps_theta inside the '
            'neck, epsilon prediction, D trained on noised labels); this version keeps '
            "eps_theta in 'diffusion' and trains phase 2 differently, so retrain it")
