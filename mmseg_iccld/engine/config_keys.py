"""The keys of config sections that builders read, not class arguments: dataloaders and
``paramwise_cfg``.

mmengine's ``Runner.build_dataloader`` takes ``dataset``, ``sampler``, ``collate_fn`` and a
few more out of a dataloader config and hands the rest to torch's ``DataLoader``;
``DefaultOptimWrapperConstructor`` reads the options it knows from ``paramwise_cfg`` and
copies every entry of a ``custom_keys`` item into the parameter group, where the optimizer
ignores what it does not know. A misspelt ``bias_lr_mul`` or ``lr_mul`` then changes nothing,
silently. The names these builders read are taken from their source (``cfg.pop('name')``,
``cfg.get('name')``, ``cfg['name']``, ``'name' in cfg``), so they follow mmengine's version.
"""
import ast
import functools
import inspect
import textwrap
from typing import Callable, FrozenSet, Optional

from .config_values import argument_problems
from .signatures import accepted_keywords

_READS = ('get', 'pop', 'setdefault')
# keys of a custom_keys item the constructor turns into the group's lr and weight decay
_MULTIPLIERS = ('lr_mult', 'decay_mult')


def _is(node, expression: str) -> bool:
    return ast.unparse(node) == expression


@functools.lru_cache(maxsize=None)
def read_keys(function: Callable, expression: str) -> Optional[FrozenSet[str]]:
    """The constant keys ``function`` (or each method of a class) reads from ``expression``.

    Args:
        function: A function or a class.
        expression: The mapping as the source writes it, e.g. ``'self.paramwise_cfg'``.

    Returns:
        The names, or None when the source cannot be read.
    """
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(function)))
    except (OSError, TypeError, SyntaxError):
        return None
    keys = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                and node.func.attr in _READS and _is(node.func.value, expression) \
                and node.args and isinstance(node.args[0], ast.Constant):
            keys.add(node.args[0].value)
        elif isinstance(node, ast.Subscript) and _is(node.value, expression) \
                and isinstance(node.slice, ast.Constant):
            keys.add(node.slice.value)
        elif isinstance(node, ast.Compare) and len(node.ops) == 1 \
                and isinstance(node.ops[0], (ast.In, ast.NotIn)) \
                and _is(node.comparators[0], expression) \
                and isinstance(node.left, ast.Constant):
            keys.add(node.left.value)
    return frozenset(k for k in keys if isinstance(k, str))


def _child(where: str, key: str) -> str:
    return f'{where}[{key!r}]' if '.' in str(key) else f'{where}.{key}'


def check_paramwise(checker, cfg, where: str, optimizer: Optional[Callable]) -> None:
    """The keys of a ``paramwise_cfg`` of ``DefaultOptimWrapperConstructor``.

    Args:
        checker: The config check's collector (``unknown``).
        cfg: The ``paramwise_cfg``.
        where: Its dotted key.
        optimizer: The optimizer class, whose arguments a ``custom_keys`` item may also set
            for its parameter group; None when unknown.
    """
    from mmengine.optim import DefaultOptimWrapperConstructor
    if not isinstance(cfg, dict):
        return
    valid = read_keys(DefaultOptimWrapperConstructor, 'self.paramwise_cfg')
    if valid:
        checker.unknown(cfg, valid, where, 'read by DefaultOptimWrapperConstructor')
    custom_keys = cfg.get('custom_keys')
    accepted = accepted_keywords(optimizer) if optimizer is not None else None
    if not isinstance(custom_keys, dict) or accepted is None:
        return
    group_keys = (accepted - {'params'}) | set(_MULTIPLIERS)
    for name, item in custom_keys.items():
        if isinstance(item, dict):
            checker.unknown(item, group_keys, _child(f'{where}.custom_keys', name),
                            f'lr_mult, decay_mult or an argument of {optimizer.__name__}')


def check_dataloader(checker, cfg, where: str) -> None:
    """The keys of a dataloader config, and of its dataset, sampler and functions; values
    where ``DataLoader`` takes a number (``batch_size``, ``num_workers``) and gets none.

    Args:
        checker: The config check's collector (``unknown``, ``typed``).
        cfg: ``train_dataloader``, ``val_dataloader`` or ``test_dataloader``.
        where: Its key.
    """
    from mmengine.runner import Runner
    from torch.utils.data import DataLoader
    if not isinstance(cfg, dict):
        return
    read = read_keys(Runner.build_dataloader, 'dataloader_cfg')
    accepted = accepted_keywords(DataLoader)
    if read is not None and accepted is not None:
        checker.unknown(cfg, read | accepted, where, 'an argument of DataLoader')
    checker.values += argument_problems(cfg, where, DataLoader)
    checker.typed(cfg.get('dataset'), f'{where}.dataset', 'DATASETS', recurse=True)
    for key in ('sampler', 'batch_sampler'):
        checker.typed(cfg.get(key), f'{where}.{key}', 'DATA_SAMPLERS')
    for key in ('collate_fn', 'worker_init_fn'):
        checker.typed(cfg.get(key), f'{where}.{key}', 'FUNCTIONS')
