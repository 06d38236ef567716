"""Checks that the pretrained files a config names exist, before anything is built.

mmengine loads ``init_cfg=dict(type='Pretrained', checkpoint=...)`` only when the runner
initialises the weights, after the datasets are built, and a missing file then surfaces as a
bare "can not be found". Training scripts call :func:`check_pretrained_files` first, so the
error comes at once and says where the weights come from.
"""
import os.path as osp
from typing import Any, Iterator, List, Tuple

MIT_WEIGHTS_HELP = (
    'MixVisionTransformer (MiT) backbones start from SegFormer\'s ImageNet-1k weights: '
    'download mit_b5.pth (or mit_b0..b4) from the SegFormer release '
    '(https://github.com/NVlabs/SegFormer, "ImageNet-1K pretrained weights"), then convert '
    'the keys with mmseg\'s converter: python <mmseg>/tools/model_converters/mit2mmseg.py '
    'mit_b5.pth pretrained/mit_b5.pth (installed as '
    'mmseg/.mim/tools/model_converters/mit2mmseg.py).')


def _is_local(path: str) -> bool:
    """Whether ``path`` names a local file (not a URL or an ``open-mmlab://``-style scheme)."""
    return '://' not in path


def _walk_checkpoints(node: Any, where: str) -> Iterator[Tuple[str, str, Any]]:
    """Yield ``(where, checkpoint, owner)`` for every pretrained file named under ``node``.

    ``owner`` is the dict whose ``init_cfg`` (or deprecated ``pretrained``) names the file.
    """
    if isinstance(node, dict):
        init_cfgs = node.get('init_cfg')
        if isinstance(init_cfgs, dict):
            init_cfgs = [init_cfgs]
        for i, init_cfg in enumerate(init_cfgs or []):
            if isinstance(init_cfg, dict) and init_cfg.get('type') == 'Pretrained' \
                    and isinstance(init_cfg.get('checkpoint'), str):
                suffix = '' if isinstance(node.get('init_cfg'), dict) else f'[{i}]'
                yield f'{where}.init_cfg{suffix}.checkpoint', init_cfg['checkpoint'], node
        if isinstance(node.get('pretrained'), str):
            yield f'{where}.pretrained', node['pretrained'], node
        for key, value in node.items():
            if key != 'init_cfg':
                yield from _walk_checkpoints(value, f'{where}.{key}')
    elif isinstance(node, (list, tuple)):
        for i, value in enumerate(node):
            yield from _walk_checkpoints(value, f'{where}[{i}]')


def find_pretrained_files(cfg: Any) -> List[Tuple[str, str]]:
    """Local pretrained files a config needs.

    Args:
        cfg: An mmengine ``Config`` (or dict) with ``model`` and optionally ``load_from``.

    Returns:
        ``(config key, path)`` pairs: every ``init_cfg`` of type ``Pretrained`` and every
        ``pretrained`` string under ``model``, and ``load_from``; URLs are left out.
    """
    found = [(where, path) for where, path, _ in _walk_checkpoints(cfg.get('model'), 'model')]
    if cfg.get('load_from'):
        found.append(('load_from', cfg['load_from']))
    return [(where, path) for where, path in found if _is_local(path)]


def check_pretrained_files(cfg: Any) -> None:
    """Fail early, with instructions, when a pretrained file of the config is missing.

    Args:
        cfg: An mmengine ``Config`` (or dict).

    Raises:
        FileNotFoundError: Listing every missing file with the config key naming it, and for
            MiT backbones where to get and how to convert the weights.
    """
    missing, init_keys, needs_mit_help = [], [], False
    for where, path, owner in _walk_checkpoints(cfg.get('model'), 'model'):
        if _is_local(path) and not osp.isfile(path):
            missing.append(f'{path} (set by {where})')
            init_keys.append(where[:-len('.checkpoint')] if where.endswith('.checkpoint')
                             else where)
            needs_mit_help |= str(owner.get('type')).startswith('MixVisionTransformer')
    load_from = cfg.get('load_from')
    if load_from and _is_local(load_from) and not osp.isfile(load_from):
        missing.append(f'{load_from} (set by load_from)')
    if not missing:
        return
    message = 'pretrained file(s) not found: ' + '; '.join(missing) + '.'
    if needs_mit_help:
        message += ' ' + MIT_WEIGHTS_HELP
    message += ' Relative paths are read from the working directory.'
    if init_keys:
        message += (' To train from scratch instead, drop the initialisation: '
                    f'--cfg-options {init_keys[0]}=None')
    raise FileNotFoundError(message)
