"""Config values that cannot work, found before anything is built.

``--cfg-options`` turns what it cannot read as a number into a string:
``train_cfg.max_iters=abc`` reaches ``IterBasedTrainLoop`` as ``'abc'`` and fails deep inside
the runner, ``optim_wrapper.optimizer.lr=fast`` inside torch. Other values are accepted and do
nothing: ``train_cfg.max_iters=0`` trains nothing, an ICCLD ``switch_iter`` at or beyond
``max_iters`` never reaches phase 2. This module names such values:

- :func:`argument_problems`: a value of a typed config (``dict(type=...)``) whose class
  takes a number (by the parameter's annotation, else its default) but gets a string, None,
  or a fraction where an ``int`` is annotated; a string where the default is a tuple of
  numbers (``betas``);
- :func:`schedule_problems`: a training loop with nothing to do, a phase switch that is
  never reached.
"""
import inspect
import math
import numbers
import re
from typing import Callable, List, Optional, Tuple

from .signatures import declared_parameters

_NUMERIC = frozenset({'int', 'float', 'Tensor', 'Number', 'Real'})
_IDENTIFIER = re.compile(r'[A-Za-z_][\w.]*')


class ConfigValueError(ValueError):
    """A config value has a type its class cannot take, or leaves nothing to do."""


def _annotation_members(annotation) -> Optional[set]:
    """The type names of an annotation (``Optional[int]`` -> ``{'int', 'None'}``), or None.

    Works on annotation objects and on the strings of ``from __future__ import annotations``.
    """
    if annotation is inspect.Parameter.empty:
        return None
    text = annotation.__name__ if isinstance(annotation, type) else str(annotation)
    tokens = {token.split('.')[-1] for token in _IDENTIFIER.findall(text)}
    members = tokens - {'Union', 'Optional', 'typing'}
    if 'Optional' in tokens or 'NoneType' in members:
        members = (members - {'NoneType'}) | {'None'}
    return members


def _is_number(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def expected_type(parameter: inspect.Parameter) -> Optional[Tuple[str, bool]]:
    """What ``parameter`` takes when that is a number: ``('an int' | 'a number' | 'a sequence
    of numbers', None allowed)``; None when it takes anything else (or cannot be told).

    The annotation decides; without one, a number as default means a number (of any kind:
    ``eta_min=0`` takes ``1e-6``), a tuple of numbers a sequence of numbers.
    """
    members = _annotation_members(parameter.annotation)
    default = parameter.default
    optional = default is None or default is inspect.Parameter.empty
    if members is not None and members - {'None'} and members - {'None'} <= _NUMERIC:
        kind = 'an int' if members - {'None'} == {'int'} else 'a number'
        return kind, 'None' in members or default is None
    if isinstance(default, (tuple, list)) and default and all(map(_is_number, default)):
        return 'a sequence of numbers', optional
    if members is None and _is_number(default):
        return 'a number', True
    return None


def _wrong(value, kind: str, allows_none: bool) -> bool:
    if kind == 'a sequence of numbers':
        items = value if isinstance(value, (list, tuple)) else [value]
        return any(isinstance(item, str) for item in items)
    if value is None:
        return not allows_none
    if isinstance(value, str):
        return True
    return kind == 'an int' and isinstance(value, float) \
        and not (math.isinf(value) or value.is_integer())  # end=float('inf') is fine


def argument_problems(cfg: dict, where: str, target: Callable) -> List[str]:
    """The arguments of the typed config ``cfg`` (built as ``target``) whose value is not the
    number the class takes.

    Args:
        cfg: ``dict(type=..., ...)``.
        where: Its dotted key, for the message.
        target: The class (or function) the config builds.

    Returns:
        Phrases such as ``"train_cfg.max_iters is 'abc', not an int (IterBasedTrainLoop)"``.
    """
    parameters = declared_parameters(target)
    problems = []
    for key, value in cfg.items():
        parameter = parameters.get(key)
        expected = expected_type(parameter) if parameter is not None else None
        if expected is not None and _wrong(value, *expected):
            problems.append(f'{where}.{key} is {value!r}, not {expected[0]} '
                            f'({getattr(target, "__name__", target)})')
    return problems


def _number(cfg, key: str):
    value = cfg.get(key) if isinstance(cfg, dict) else None
    return value if _is_number(value) else None


def schedule_problems(cfg, resolve: Callable[[str, object], object]) -> List[str]:
    """A training loop with nothing to do; an ICCLD phase switch training never reaches.

    Args:
        cfg: The merged config.
        resolve: ``resolve(registry_name, type)``: the class a config ``type`` stands for,
            or None.

    Returns:
        Phrases such as ``'train_cfg.max_iters is 0: nothing to train (at least 1)'``.
    """
    from .hooks.iccld_phase_hook import ICCLDPhaseHook
    train_cfg = cfg.get('train_cfg')
    problems = []
    for key in ('max_iters', 'max_epochs'):
        value = _number(train_cfg, key)
        if value is not None and value < 1:
            problems.append(f'train_cfg.{key} is {value}: nothing to train (at least 1)')
    max_iters = _number(train_cfg, 'max_iters')
    for i, hook in enumerate(cfg.get('custom_hooks') or []):
        hook_class = resolve('HOOKS', hook.get('type')) if isinstance(hook, dict) else None
        switch_iter = _number(hook, 'switch_iter')
        if not (inspect.isclass(hook_class) and issubclass(hook_class, ICCLDPhaseHook)) \
                or switch_iter is None or max_iters is None or max_iters < 1:
            continue
        # switch_iter == max_iters is the phase-1 control (phase 1 for the whole schedule)
        if switch_iter > max_iters:
            problems.append(
                f'custom_hooks.{i}.switch_iter is {switch_iter} but train_cfg.max_iters is '
                f'{max_iters}: the switch lies past the end of the schedule (switch_iter = '
                f'max_iters trains phase 1 only)')
    return problems
