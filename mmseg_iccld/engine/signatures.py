"""The keyword arguments a registered class accepts, ``**kwargs`` followed where possible.

A config's ``dict(type='X', ...)`` becomes ``X(**rest)``. Where ``X.__init__`` has no
``**kwargs``, a misspelt key fails at once; where it has, the key is swallowed: mmengine's
``CheckpointHook`` keeps its ``**kwargs`` for ``Runner.save_checkpoint`` (so a typo fails at
the first save, after hours of training), and a decode head hands its own to
``BaseDecodeHead``. :func:`accepted_keywords` collects the names along such chains by reading
the source of each ``__init__``:

- ``super().__init__(..., **kwargs)`` (or ``Base.__init__(self, ..., **kwargs)``) continues
  with the next ``__init__`` in the method resolution order (or with ``Base``);
- ``kwargs.get('name')``, ``kwargs.pop('name')``, ``kwargs['name']`` and ``'name' in kwargs``
  add ``name``;
- ``**kwargs`` that is never used adds nothing (the keys are silently dropped);
- any other use (stored, handed to another builder) makes the answer unknown, unless
  :func:`kwargs_targets` says where the keys end up.

An unknown answer is None: the caller then accepts any key rather than guess.
:func:`declared_parameters` gives the ``inspect.Parameter`` of each name met along the same
chain, whose annotation and default say what type of value the argument takes.
"""
import ast
import functools
import inspect
import textwrap
from typing import Callable, Dict, FrozenSet, Optional, Set, Tuple

import torch.nn as nn

# __init__s that take no keyword arguments at all (nn.Module's raises on any)
_NO_KEYWORDS = (object.__init__, nn.Module.__init__)
_READ_METHODS = ('get', 'pop', 'setdefault')
_HARMLESS_METHODS = ('update', 'keys', 'items', 'values', 'copy')
Parameters = Dict[str, inspect.Parameter]


@functools.lru_cache(maxsize=None)
def kwargs_targets() -> Dict[type, Callable]:
    """Classes that store their ``**kwargs`` and pass them to a known callable later."""
    from mmengine.hooks import CheckpointHook
    from mmengine.runner import Runner
    return {CheckpointHook: Runner.save_checkpoint}


def _parameters(function: Callable) -> Optional[inspect.Signature]:
    try:
        return inspect.signature(function)
    except (TypeError, ValueError):
        return None


def _named(signature: inspect.Signature, skip_first: bool) -> Dict[str, inspect.Parameter]:
    parameters = list(signature.parameters.values())[1 if skip_first else 0:]
    return {p.name: p for p in parameters
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}


def _var_keyword(signature: inspect.Signature) -> Optional[str]:
    return next((p.name for p in signature.parameters.values()
                 if p.kind == p.VAR_KEYWORD), None)


class _KwargsUses(ast.NodeVisitor):
    """How a function body uses its ``**kwargs`` parameter ``name``."""

    def __init__(self, name: str, scope: dict) -> None:
        self.name = name
        self.scope = scope
        self.keys: Set[str] = set()
        self.forwards_to_super = False
        self.forwards_to: Set[type] = set()
        self.unresolved = False
        self._accounted: Set[int] = set()

    def _is_kwargs(self, node) -> bool:
        return isinstance(node, ast.Name) and node.id == self.name

    def visit_Call(self, node: ast.Call) -> None:
        for keyword in node.keywords:
            if keyword.arg is None and self._is_kwargs(keyword.value):
                self._accounted.add(id(keyword.value))
                self._forward(node.func)
        func = node.func
        if isinstance(func, ast.Attribute) and self._is_kwargs(func.value):
            self._accounted.add(id(func.value))
            if func.attr in _READ_METHODS and node.args \
                    and isinstance(node.args[0], ast.Constant):
                self.keys.add(str(node.args[0].value))
            elif func.attr not in _HARMLESS_METHODS:
                self.unresolved = True
        self.generic_visit(node)

    def _forward(self, func) -> None:
        if not (isinstance(func, ast.Attribute) and func.attr == '__init__'):
            self.unresolved = True
        elif isinstance(func.value, ast.Call) and isinstance(func.value.func, ast.Name) \
                and func.value.func.id == 'super':
            self.forwards_to_super = True
        elif isinstance(func.value, ast.Name) and inspect.isclass(
                self.scope.get(func.value.id)):
            self.forwards_to.add(self.scope[func.value.id])
        else:
            self.unresolved = True

    def visit_Subscript(self, node: ast.Subscript) -> None:
        if self._is_kwargs(node.value) and isinstance(node.slice, ast.Constant):
            self._accounted.add(id(node.value))
            self.keys.add(str(node.slice.value))
        self.generic_visit(node)

    def visit_Compare(self, node: ast.Compare) -> None:
        if len(node.ops) == 1 and isinstance(node.ops[0], (ast.In, ast.NotIn)) \
                and self._is_kwargs(node.comparators[0]) \
                and isinstance(node.left, ast.Constant):
            self._accounted.add(id(node.comparators[0]))
            self.keys.add(str(node.left.value))
        self.generic_visit(node)

    def visit_Name(self, node: ast.Name) -> None:
        if node.id == self.name and id(node) not in self._accounted:
            self.unresolved = True


def _kwargs_uses(init: Callable, name: str) -> Optional[_KwargsUses]:
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(init)))
    except (OSError, TypeError, SyntaxError):
        return None
    function = tree.body[0] if tree.body else None
    if not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
        return None
    uses = _KwargsUses(name, getattr(init, '__globals__', {}))
    for statement in function.body:  # not the signature: its **kwargs is the definition
        uses.visit(statement)
    return uses


@functools.lru_cache(maxsize=None)
def _class_chain(cls: type) -> Tuple[Optional[FrozenSet[str]], Parameters]:
    """The names ``cls(...)`` accepts (None: unknown) and the parameters seen on the way.

    The parameters are those of the ``__init__`` chain as far as it could be followed, the
    first definition of a name winning (a subclass's ``interval: int`` over its base's).
    """
    mro = cls.__mro__
    names: Set[str] = set()
    parameters: Parameters = {}

    def seen(found: Parameters) -> None:
        names.update(found)
        for name, parameter in found.items():
            parameters.setdefault(name, parameter)

    start = 0
    while True:
        owner = next((c for c in mro[start:] if '__init__' in vars(c)), object)
        init = vars(owner).get('__init__', object.__init__)
        if init in _NO_KEYWORDS:
            return frozenset(names), parameters
        signature = _parameters(init)
        if signature is None:
            return None, parameters
        seen(_named(signature, skip_first=True))
        var_keyword = _var_keyword(signature)
        if var_keyword is None:
            return frozenset(names), parameters
        if owner in kwargs_targets():
            target = _parameters(kwargs_targets()[owner])
            if target is None:
                return None, parameters
            seen(_named(target, skip_first=True))
            return (None if _var_keyword(target) is not None else frozenset(names)), parameters
        uses = _kwargs_uses(init, var_keyword)
        if uses is None or uses.unresolved:
            return None, parameters
        names |= uses.keys
        for base in uses.forwards_to:
            accepted, found = _class_chain(base)
            seen(found)
            if accepted is None:
                return None, parameters
            names |= accepted
        if not uses.forwards_to_super:
            return frozenset(names), parameters
        start = mro.index(owner) + 1


@functools.lru_cache(maxsize=None)
def accepted_keywords(target: Callable) -> Optional[FrozenSet[str]]:
    """The keyword arguments ``target(...)`` accepts, following ``**kwargs`` (module docstring).

    Args:
        target: A class (its ``__init__`` chain is read) or a function.

    Returns:
        The names, or None when some ``**kwargs`` goes where it cannot be followed.
    """
    if inspect.isclass(target):
        return _class_chain(target)[0]
    signature = _parameters(target)
    if signature is None or _var_keyword(signature) is not None:
        return None
    return frozenset(_named(signature, skip_first=False))


@functools.lru_cache(maxsize=None)
def declared_parameters(target: Callable) -> Parameters:
    """The named parameters of ``target``'s ``__init__`` chain (or of the function ``target``),
    as far as :func:`accepted_keywords` can follow it: their annotations and defaults say
    which type each argument takes.

    Args:
        target: A class or a function.

    Returns:
        ``{name: inspect.Parameter}``; empty when no signature can be read.
    """
    if inspect.isclass(target):
        return dict(_class_chain(target)[1])
    signature = _parameters(target)
    return {} if signature is None else _named(signature, skip_first=False)
