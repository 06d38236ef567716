"""``--cfg-options KEY=VALUE ...`` of the tools: mmengine's ``DictAction``, with one line for
the values it cannot read.

``DictAction`` reads numbers, True/False/None, strings, and lists or tuples of them
(``a,b``, ``[a,b]``, ``(a,b)``). A value whose commas all lie inside brackets that do not
enclose the whole value, such as ``model.x=dict(a=1,b=2)``, sends its parser into endless
recursion (``RecursionError``, a thousand frames); ``dict(a=1)`` becomes the string
``'dict(a=1)'``. :class:`CfgOptionsAction` names the option and the forms that work: a dict
is set key by key (``model.x.a=1 model.x.b=2``).
"""
import ast
from typing import Optional

from mmengine.config import DictAction


class ConfigOptionError(ValueError):
    """A ``--cfg-options`` entry cannot be read."""


def _keywords_of_dict_call(value: str) -> Optional[dict]:
    """``{'a': '1', 'b': "'x'"}`` for ``dict(a=1, b='x')``; None for anything else."""
    try:
        node = ast.parse(value.strip('\'"'), mode='eval').body
    except SyntaxError:
        return None
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
            and node.func.id == 'dict' and not node.args):
        return None
    if any(keyword.arg is None for keyword in node.keywords):
        return None
    return {keyword.arg: ast.unparse(keyword.value) for keyword in node.keywords}


def _refusal(key: str, value: str, reason: str) -> ConfigOptionError:
    keywords = _keywords_of_dict_call(value)
    if keywords:
        shown = ' '.join(f'{key}.{name}={text}' for name, text in keywords.items())
        how = f'set a dict key by key: {shown}'
    else:
        how = 'set a dict key by key (KEY.NAME=VALUE ...)'
    return ConfigOptionError(
        f'--cfg-options {key}={value} cannot be read ({reason}); {how}; lists are '
        f'written a,b or [a,b], tuples (a,b)')


class CfgOptionsAction(DictAction):
    """mmengine's ``DictAction`` that refuses, in one line, what it cannot read.

    Raises:
        ConfigOptionError: For an entry without ``=``, a ``dict(...)`` value, unbalanced
            brackets, or brackets that send ``DictAction``'s parser into endless recursion.
    """

    def __call__(self, parser, namespace, values, option_string=None):
        for entry in values or []:
            if '=' not in entry:
                raise ConfigOptionError(f'--cfg-options {entry} is not KEY=VALUE')
            key, value = entry.split('=', maxsplit=1)
            if _keywords_of_dict_call(value) is not None:
                raise _refusal(key, value, 'a dict(...) value is read as a string')
            try:
                self._parse_iterable(value)
            except RecursionError:
                raise _refusal(key, value, 'commas inside brackets that do not enclose the '
                               'whole value') from None
            except AssertionError:
                raise _refusal(key, value, 'unbalanced brackets') from None
        super().__call__(parser, namespace, values, option_string)
