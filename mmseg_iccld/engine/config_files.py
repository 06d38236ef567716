"""The files a config is made of: the file and its ``_base_`` chain, read without running it.

mmengine's ``Config.fromfile`` loads each ``_base_`` file by recursion, so two files that name
each other (``a.py``: ``_base_ = ['b.py']``, ``b.py``: ``_base_ = ['a.py']``) end in a
``RecursionError`` with a traceback a thousand frames deep. :func:`check_base_chain` reads the
``_base_`` lists with ``ast`` first and names the loop instead. Only local files are followed
(``pkg::path`` entries of other packages and computed lists are left to mmengine).
"""
import ast
import os.path as osp
from typing import List, Optional


class ConfigBaseCycleError(ValueError):
    """The ``_base_`` files of a config include one another."""


def base_files(path: str) -> List[str]:
    """The local files ``path`` names in its ``_base_`` (absolute paths, in order).

    Args:
        path: A config file; one that cannot be read or parsed (a .json or .yaml config)
            has none.
    """
    try:
        with open(path) as f:
            tree = ast.parse(f.read())
    except (OSError, SyntaxError, UnicodeDecodeError, ValueError):
        return []
    files = []
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == '_base_' for t in node.targets):
            try:
                bases = ast.literal_eval(node.value)
            except (ValueError, TypeError, SyntaxError):
                continue
            for base in [bases] if isinstance(bases, str) else list(bases):
                if isinstance(base, str) and '::' not in base:
                    files.append(osp.abspath(osp.join(osp.dirname(path), base)))
    return files


def config_files(path: str) -> List[str]:
    """``path`` and every local file of its ``_base_`` chain, each once."""
    files: List[str] = []
    pending = [osp.abspath(path)]
    while pending:
        file = pending.pop(0)
        if file in files or not osp.isfile(file):
            continue
        files.append(file)
        pending += base_files(file)
    return files


def find_base_cycle(path: str) -> Optional[List[str]]:
    """A loop of ``_base_`` files reachable from ``path``, or None.

    Returns:
        The files of the loop, the first one repeated at the end (``[a, b, a]``).
    """
    done = set()

    def visit(file: str, stack: List[str]) -> Optional[List[str]]:
        if file in stack:
            return stack[stack.index(file):] + [file]
        if file in done or not osp.isfile(file):
            return None
        for base in base_files(file):
            cycle = visit(base, stack + [file])
            if cycle is not None:
                return cycle
        done.add(file)
        return None

    return visit(osp.abspath(path), [])


def check_base_chain(path: str) -> None:
    """Raise one line naming the files when the ``_base_`` chain of ``path`` is a loop.

    Raises:
        ConfigBaseCycleError: ``config a.py: its _base_ files form a loop: a.py -> b.py ->
            a.py (a file cannot be its own base; remove one of these _base_ entries)``.
    """
    cycle = find_base_cycle(path)
    if cycle is None:
        return
    folder = osp.dirname(osp.commonpath(cycle)) if len(set(cycle)) == 1 else \
        osp.commonpath(cycle)
    shown = ' -> '.join(osp.relpath(file, folder) for file in cycle)
    raise ConfigBaseCycleError(
        f'config {path}: its _base_ files form a loop: {shown} (a config cannot be its own '
        f'base; remove one of these _base_ entries)')
