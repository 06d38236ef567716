"""Misspelt config keys, found before anything is built.

mmengine reads the config's top-level keys it knows and ignores the rest, and many classes
take ``**kwargs``: a typo such as ``default_hooks.checkpoint.intervl=2`` trains to the end and
fails at the first save, ``train_cfgg`` or ``load_form`` is silently ignored.
:func:`check_config` compares

- the top-level keys with those mmengine's ``Runner`` reads (its signature and the few it
  reads from the config), the keys the configs under ``configs/`` define, and the helper
  variables the config's own files use (``crop_size = ...`` read by a pipeline);
- ``model`` (and every typed model config inside it), ``data_preprocessor``, each hook of
  ``default_hooks`` and ``custom_hooks``, ``optim_wrapper`` (the wrapper and its optimizer,
  also per child of ``MultiOptimWrapperConstructor``), the loops of ``train_cfg``,
  ``val_cfg`` and ``test_cfg``, and ``param_scheduler`` with the arguments their classes
  accept (:func:`~mmseg_iccld.engine.signatures.accepted_keywords`);
- ``paramwise_cfg`` and the dataloaders (with their datasets, samplers and functions) with
  what their builders read (:mod:`.config_keys`).

Every problem is named with its dotted key and the nearest valid name, all in one line.
Once the keys are right, the same walk finds the values that cannot work
(:mod:`.config_values`, :mod:`.config_classes`), also in one line.
"""
import ast
import difflib
import glob
import inspect
import os.path as osp
import re
from typing import Iterable, List, Set

from mmengine import registry as mmengine_registry

from .config_classes import class_count_problems
from .config_files import config_files
from .config_keys import check_dataloader, check_paramwise
from .config_values import ConfigValueError, argument_problems, schedule_problems
from .signatures import accepted_keywords

# config keys mmengine, mmseg's tools and this project read besides Runner's arguments
EXTRA_TOP_LEVEL_KEYS = frozenset({
    'runner_type', 'custom_imports', 'model_wrapper_cfg', 'sync_bn', 'find_unused_parameters',
    'activation_checkpointing', 'efficient_conv_bn_eval', 'compile', 'gpu_ids',
    'tta_model', 'tta_pipeline', 'load_strict'})
# keys mmengine consumes itself before calling the class
_BUILD_KEYS = frozenset({'type', '_scope_'})
# registries mmengine's runner reads as they are, not those of the config's scope
_UNSCOPED = frozenset({'FUNCTIONS'})
_CONFIGS = osp.join(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))), 'configs')
_BASE_TEMPLATE = re.compile(r'\{\{\s*_base_\.(\w+)')


class ConfigKeyError(ValueError):
    """A config holds keys that nothing reads."""


def runner_keys() -> Set[str]:
    """The top-level keys mmengine's ``Runner`` (and the tools) read."""
    from mmengine.runner import Runner
    parameters = inspect.signature(Runner.__init__).parameters
    return (set(parameters) - {'self', 'cfg'}) | EXTRA_TOP_LEVEL_KEYS


def _assigned_names(path: str) -> Set[str]:
    try:
        with open(path) as f:
            tree = ast.parse(f.read())
    except (OSError, SyntaxError, UnicodeDecodeError):
        return set()
    names = set()
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else \
            [node.target] if isinstance(node, ast.AnnAssign) else []
        names |= {t.id for t in targets if isinstance(t, ast.Name)}
    return names


def repository_config_keys(folder: str = _CONFIGS) -> Set[str]:
    """The top-level names the configs under ``folder`` assign."""
    names = set()
    for path in glob.glob(osp.join(folder, '**', '*.py'), recursive=True):
        names |= _assigned_names(path)
    return names


def used_names(path: str) -> Set[str]:
    """The names the config at ``path`` and its ``_base_`` files read: helper variables."""
    names = set()
    for file in config_files(path):
        try:
            with open(file) as f:
                text = f.read()
            tree = ast.parse(text)
        except (OSError, SyntaxError, UnicodeDecodeError):  # a .json or .yaml config
            continue
        names |= set(_BASE_TEMPLATE.findall(text))
        for node in ast.walk(tree):
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
                names.add(node.id)
            elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) \
                    and node.value.id == '_base_':
                names.add(node.attr)
    return names


def _hint(key: str, valid: Iterable[str]) -> str:
    near = difflib.get_close_matches(key, sorted(valid), n=1, cutoff=0.75)
    return f' (did you mean {near[0]}?)' if near else ''


class _Checker:
    """Collects the problems of one config."""

    def __init__(self, scope: str) -> None:
        self.scope = scope
        self.problems: List[str] = []  # misspelt keys
        self.values: List[str] = []  # values of a type their class cannot take

    def resolve(self, kind: str, name):
        """The class ``name`` stands for in the registry ``kind``, or None."""
        if not isinstance(name, str):
            return name if callable(name) else None
        registry = getattr(mmengine_registry, kind)
        try:
            if kind in _UNSCOPED:
                return registry.get(name)
            with registry.switch_scope_and_registry(self.scope) as scoped:
                return scoped.get(name)
        except (KeyError, ImportError, TypeError):
            return None

    def typed(self, cfg, where: str, kind: str, default_type=None,
              extra: Iterable[str] = (), recurse: bool = False) -> None:
        """Check the keys of ``cfg`` (``dict(type=...)``) against its class's arguments."""
        if not isinstance(cfg, dict):
            return
        target = self.resolve(kind, cfg.get('type', default_type))
        accepted = accepted_keywords(target) if target is not None else None
        if accepted is not None:
            self.unknown(cfg, accepted | set(extra), where,
                         f'an argument of {target.__name__}')
        if target is not None:
            self.values += argument_problems(
                {k: v for k, v in cfg.items() if k not in _BUILD_KEYS}, where, target)
        if recurse:
            for key, value in cfg.items():
                if key.endswith('_cfg') or key in _BUILD_KEYS:
                    continue  # norm_cfg, init_cfg, ...: read by builders, not a model class
                items = value if isinstance(value, (list, tuple)) else [value]
                for i, item in enumerate(items):
                    if isinstance(item, dict) and 'type' in item:
                        suffix = f'.{i}' if isinstance(value, (list, tuple)) else ''
                        self.typed(item, f'{where}.{key}{suffix}', kind, recurse=True)

    def unknown(self, cfg: dict, valid: Iterable[str], where: str, what: str) -> None:
        """Name each key of ``cfg`` outside ``valid``: ``WHERE.KEY is not WHAT (hint)``."""
        valid = set(valid)
        for key in cfg:
            if key not in valid and key not in _BUILD_KEYS:
                self.problems.append(f'{where}.{key} is not {what}{_hint(str(key), valid)}')

    def optim_wrapper(self, cfg, where: str) -> None:
        if not isinstance(cfg, dict):
            return
        constructor = cfg.get('constructor', 'DefaultOptimWrapperConstructor')
        if constructor == 'MultiOptimWrapperConstructor':
            for name, child in cfg.items():
                if name != 'constructor':
                    self.optim_wrapper(child, f'{where}.{name}')
        elif constructor == 'DefaultOptimWrapperConstructor':
            self.typed(cfg, where, 'OPTIM_WRAPPERS', default_type='OptimWrapper',
                       extra=('constructor', 'paramwise_cfg'))
            optimizer = cfg.get('optimizer')
            self.typed(optimizer, f'{where}.optimizer', 'OPTIMIZERS')
            check_paramwise(self, cfg.get('paramwise_cfg'), f'{where}.paramwise_cfg',
                            self.resolve('OPTIMIZERS', optimizer.get('type'))
                            if isinstance(optimizer, dict) else None)

    def loop(self, cfg, where: str, default_type: str, extra=()) -> None:
        if isinstance(cfg, dict):
            extra = () if 'type' in cfg else extra
            self.typed(cfg, where, 'LOOPS', default_type=cfg.get('type', default_type),
                       extra=extra)

    def schedulers(self, cfg, where: str) -> None:
        if isinstance(cfg, dict) and 'type' not in cfg:  # one list per optimizer
            for name, value in cfg.items():
                self.schedulers(value, f'{where}.{name}')
            return
        for i, item in enumerate(cfg if isinstance(cfg, (list, tuple)) else [cfg]):
            suffix = f'.{i}' if isinstance(cfg, (list, tuple)) else ''
            self.typed(item, f'{where}{suffix}', 'PARAM_SCHEDULERS',
                       extra=('convert_to_iter_based', ))


def _check(cfg) -> _Checker:
    """Walk every section of ``cfg`` the check knows; the checker holds what it found."""
    checker = _Checker(cfg.get('default_scope', None) or 'mmengine')
    known = runner_keys() | repository_config_keys()
    filename = getattr(cfg, 'filename', None)
    helpers = used_names(filename) if filename else set()
    for key in cfg:
        if key not in known and key not in helpers:
            checker.problems.append(f'unknown top-level key {key}{_hint(key, runner_keys())}')

    checker.typed(cfg.get('model'), 'model', 'MODELS', recurse=True)
    checker.typed(cfg.get('data_preprocessor'), 'data_preprocessor', 'MODELS')
    for name, hook in (cfg.get('default_hooks') or {}).items():
        checker.typed(hook, f'default_hooks.{name}', 'HOOKS', extra=('priority', ))
    for i, hook in enumerate(cfg.get('custom_hooks') or []):
        checker.typed(hook, f'custom_hooks.{i}', 'HOOKS', extra=('priority', ))
    checker.optim_wrapper(cfg.get('optim_wrapper'), 'optim_wrapper')
    train_cfg = cfg.get('train_cfg')
    if isinstance(train_cfg, dict):
        by_epoch = train_cfg.get('by_epoch', True)
        checker.loop(train_cfg, 'train_cfg',
                     'EpochBasedTrainLoop' if by_epoch else 'IterBasedTrainLoop',
                     extra=('by_epoch', ))
    checker.loop(cfg.get('val_cfg'), 'val_cfg', 'ValLoop')
    checker.loop(cfg.get('test_cfg'), 'test_cfg', 'TestLoop')
    if cfg.get('param_scheduler') is not None:
        checker.schedulers(cfg.get('param_scheduler'), 'param_scheduler')
    for name in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        check_dataloader(checker, cfg.get(name), name)
    return checker


def find_config_problems(cfg) -> List[str]:
    """Every misspelt key of ``cfg`` (an mmengine ``Config``), as phrases.

    Args:
        cfg: The merged config (``--cfg-options`` applied).

    Returns:
        Phrases such as ``'train_cfg.max_iter is not an argument of IterBasedTrainLoop (did
        you mean max_iters?)'``; empty when every key is known.
    """
    return _check(cfg).problems


def find_value_problems(cfg) -> List[str]:
    """Every value of ``cfg`` that cannot work (:mod:`.config_values`,
    :mod:`.config_classes`), as phrases; meaningful once its keys are right."""
    return _value_problems(cfg, _check(cfg))


def _value_problems(cfg, checker: _Checker) -> List[str]:
    return checker.values + schedule_problems(cfg, checker.resolve) + \
        class_count_problems(cfg, checker.resolve)


def check_config(cfg, config: str) -> None:
    """Raise one line naming every misspelt key of ``cfg``, else every value that cannot
    work, before anything is built.

    Args:
        cfg: The merged config.
        config: The config file, for the message.

    Raises:
        ConfigKeyError: ``config CONFIG: train_cfg.max_iter is not an argument of ...``.
        ConfigValueError: ``config CONFIG: train_cfg.max_iters is 'abc', not an int ...``.
    """
    checker = _check(cfg)
    if checker.problems:
        raise ConfigKeyError(f'config {config}: {"; ".join(checker.problems)}')
    problems = _value_problems(cfg, checker)
    if problems:
        raise ConfigValueError(f'config {config}: {"; ".join(problems)}')
