"""Checkpoint keys of a distributed run, matched to the keys of the model that loads them.

A run under DistributedDataParallel names its weights after the wrappers it had: a raw state
dict of a wrapped model starts every key with ``module.`` (``module.model.backbone...``),
mmengine's ``MMSeparateDistributedDataParallel`` wraps each trainable child, which adds
``module.`` after the child's name (``model.module.backbone...``), and a teacher copied from a
wrapped student carries one level more (``teacher.module.module.backbone...``). mmengine's
loader only strips a leading ``module.`` (``revise_keys``), so such a checkpoint loads with the
network left at its random initialisation, or does not fit at all.

Here a checkpoint key matches a model key when the two are equal without their ``module``
levels. The model's own ``module`` levels (the EMA teacher's ``teacher.module.``, mmengine's
averaged model) are matched the same way, so tools keep naming prefixes as the model does.
Exact matches come first; a key matching none, or several, keeps its name, so that a check
of the result reports it.
"""
from collections import defaultdict
from typing import Dict

WRAPPER_LEVEL = 'module'


def unwrapped_key(key: str) -> str:
    """``key`` without its ``module`` levels (``model.module.backbone.x`` ->
    ``model.backbone.x``); a prefix keeps its trailing dot (``teacher.module.`` ->
    ``teacher.``)."""
    return '.'.join(part for part in key.split('.') if part != WRAPPER_LEVEL)


def matching_keys(state: Dict[str, object], expected: Dict[str, object],
                  prefix: str = '') -> Dict[str, str]:
    """The checkpoint key of each model key, whatever wrappers the saving run had.

    Args:
        state: The checkpoint's state dict.
        expected: The model's state dict (or any mapping with its keys).
        prefix: Where the model's weights lie in ``state``, as the undistributed model names
            it (``'model.'`` for a UDA wrapper's student, ``''`` for the model itself).

    Returns:
        ``{model key: checkpoint key}`` for every model key with exactly one match.
    """
    pairs = {key[len(prefix):]: key for key in state
             if key.startswith(prefix) and key[len(prefix):] in expected}
    taken = set(pairs.values())
    by_bare_name = defaultdict(list)
    for key in expected:
        if key not in pairs:
            by_bare_name[unwrapped_key(key)].append(key)
    bare_prefix = unwrapped_key(prefix)
    candidates = defaultdict(list)
    for key in state:
        bare = unwrapped_key(key)
        if key in taken or not bare.startswith(bare_prefix):
            continue
        targets = by_bare_name.get(bare[len(bare_prefix):], [])
        if len(targets) == 1:
            candidates[targets[0]].append(key)
    pairs.update({target: keys[0] for target, keys in candidates.items() if len(keys) == 1})
    return pairs


def weights_for(state: Dict[str, object], expected: Dict[str, object],
                prefix: str = '') -> Dict[str, object]:
    """The weights under ``prefix`` of ``state`` for a model whose state dict is ``expected``,
    keyed as in it (:func:`matching_keys`).

    Entries under ``prefix`` that match no model key are kept under their name below it, so
    that comparing the result with ``expected`` names them as unexpected.

    Args:
        state: The checkpoint's state dict.
        expected: The model's state dict.
        prefix: As for :func:`matching_keys`.

    Returns:
        The weights; equal to ``expected`` in keys when the checkpoint fits.
    """
    pairs = matching_keys(state, expected, prefix)
    weights = {target: state[key] for target, key in pairs.items()}
    used = set(pairs.values())
    for key, value in state.items():
        if key not in used and key.startswith(prefix):
            weights.setdefault(key[len(prefix):], value)
    return weights
