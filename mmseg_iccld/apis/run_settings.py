"""What a finished run was trained with, against what its config and options give now.

``uda_results.py`` reuses runs (their metrics under ``--work-root``, or an earlier report's
runs) instead of training them again. A config edited since (a teacher's ``alpha``, a loss
weight) would otherwise hand back results of the old settings under the new config's name, so
a run is reused only when the settings that decide its training and its test are equal:
``model``, the optimiser and schedules, the data of training and test, the seed, and the custom
hooks except the two that ``tools/train.py`` adds and that change nothing (checkpoint fit, the
non-finite report). Checkpoint intervals, logging and paths are not compared.
"""
import argparse
import hashlib
import json
import os.path as osp

from mmengine.config import Config

from mmseg_iccld.engine.cfg_options import CfgOptionsAction

from mmseg_iccld.apis.config_loading import load_config

SETTINGS = ('model', 'optim_wrapper', 'param_scheduler', 'train_dataloader', 'train_cfg',
            'randomness', 'custom_hooks', 'test_dataloader', 'test_evaluator')
# added by tools/train.py to every run; they check and report, they do not change training
REPORTING_HOOKS = ('CheckpointFitHook', 'NonFiniteReportHook')


def parse_options(options: list) -> dict:
    """``['model.alpha=0.98', ...]`` parsed as ``tools/train.py --cfg-options`` parses them."""
    if not options:
        return {}
    parser = argparse.ArgumentParser()
    parser.add_argument('--cfg-options', nargs='+', action=CfgOptionsAction)
    return parser.parse_args(['--cfg-options', *options]).cfg_options


def _plain(value):
    """The value with tuples as lists and dict keys as strings, as JSON writes it."""
    return json.loads(json.dumps(value, sort_keys=True, default=str))


def run_settings(cfg: Config) -> dict:
    """The settings of ``cfg`` that decide a run's training and test (``SETTINGS``)."""
    settings = {key: _plain(cfg.get(key)) for key in SETTINGS}
    settings['custom_hooks'] = [hook for hook in settings['custom_hooks'] or []
                                if not (isinstance(hook, dict)
                                        and hook.get('type') in REPORTING_HOOKS)]
    return settings


def settings_now(config: str, options: list) -> dict:
    """``run_settings`` of ``config`` with ``options`` merged, as a run would be trained now."""
    return run_settings(load_config(config, parse_options(options)))


def settings_digest(settings: dict) -> str:
    """sha256 of the settings, for reports (equal settings, equal digest)."""
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()


def differences(old, new, prefix: str = '') -> list:
    """``'key.path: old -> new'`` for every leaf where the two settings differ."""
    if isinstance(old, dict) and isinstance(new, dict):
        return [line for key in sorted(set(old) | set(new))
                for line in differences(old.get(key), new.get(key),
                                        f'{prefix}.{key}' if prefix else str(key))]
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        return [line for i, (a, b) in enumerate(zip(old, new))
                for line in differences(a, b, f'{prefix}.{i}')]
    return [] if old == new else [f'{prefix}: {old!r} -> {new!r}']


def check_trained_as_now(dumped: str, config: str, options: list) -> None:
    """Raise ValueError naming the run's dumped config and each setting that differs from
    ``config`` with ``options``; nothing when the run's dump is absent (runs older than it)."""
    if not osp.isfile(dumped):
        return
    changed = differences(run_settings(Config.fromfile(dumped)), settings_now(config, options))
    if changed:
        shown = '\n  '.join(changed[:8]) + (f'\n  ... {len(changed) - 8} more'
                                             if len(changed) > 8 else '')
        raise ValueError(
            f'{osp.dirname(dumped)} was trained with other settings than {config} gives now '
            f'(its config {dumped}, then -> now):\n  {shown}\n'
            'Retrain it with --fresh, or give the new runs another --work-root or --tag.')
