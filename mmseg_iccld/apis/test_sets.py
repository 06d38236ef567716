"""One test call over several test sets: domain generalisation's Cityscapes, BDD100K, Mapillary.

A config's ``test_sets`` names dataset configs (``configs/_base_/datasets/dg_test_sets.py``).
``tools/test.py`` evaluates the checkpoint on each in turn, each exactly as it evaluates a
config's single test set (a fresh runner whose ``test_dataloader`` holds that set), in its own
folder, and then sums the sets up in one file and one table. A set without a ``pipeline``
takes the ``test_dataloader``'s, so one list of sets serves every test scale.
"""
import copy
import json
import os.path as osp
import time
from typing import Callable, Dict, Optional

from .result_files import check_output_folder, write_result_text

SUMMARY_TABLE = 'test_sets.md'


def config_label(config: str) -> str:
    """``<folder>/<name>`` of a config file, the row label of its tables."""
    return osp.join(osp.basename(osp.dirname(osp.abspath(config))),
                    osp.splitext(osp.basename(config))[0])


def per_set_args(args, name: str):
    """The command line for one test set: its own output folders and table prefix.

    Args:
        args: The parsed command line of ``tools/test.py``.
        name: The test set's name in ``test_sets``.

    Returns:
        A copy of ``args`` with ``--out`` and ``--show-dir`` in a ``name`` subfolder and
        ``--table-out`` suffixed ``_name``.
    """
    one = copy.copy(args)
    for key in ('out', 'show_dir'):
        if getattr(args, key):
            setattr(one, key, osp.join(getattr(args, key), name))
    if args.table_out:
        one.table_out = f'{args.table_out}_{name}'
    return one


def summary_markdown(config: str, miou: Dict[str, Optional[float]]) -> str:
    """The table of every set's mIoU (in percent) and their mean, as HRDA reports DG.

    Args:
        config: The config file, labelling the row.
        miou: ``{set name: mIoU in percent}`` in test order; None where the set gave none.

    Returns:
        A markdown table ending in a newline; the mean is left out when a set has no mIoU.
    """
    names = list(miou)
    values = [miou[n] for n in names]
    mean = None if any(v is None for v in values) else sum(values) / len(values)
    cells = ['n/a' if v is None else f'{v:.2f}' for v in values + [mean]]
    header = ['config'] + names + ['mean']
    lines = ['| ' + ' | '.join(header) + ' |',
             '|' + '|'.join(['---'] * len(header)) + '|',
             '| ' + ' | '.join([config] + cells) + ' |']
    return '\n'.join(lines) + '\n'


def evaluate_test_sets(cfg, args, test_sets: dict, evaluate: Callable) -> Optional[dict]:
    """Evaluate on every test set, then write ``metrics.json`` and ``test_sets.md``.

    Args:
        cfg: The loaded config (``load_from`` cleared); its ``work_dir`` receives the summary
            and a ``<name>`` folder per set.
        args: The parsed command line.
        test_sets: ``{name: dataset config}``, evaluated in this order; a config without a
            ``pipeline`` gets the ``test_dataloader``'s.
        evaluate: Evaluates one config with one command line and returns what its
            ``metrics.json`` holds (``tools/test.py``'s ``evaluate``; None on ranks > 0).

    Returns:
        The summary, on rank 0.
    """
    if args.uncertainty_samples is not None:
        raise ValueError('--uncertainty-samples judges one test set; the config names '
                         f'{len(test_sets)} (test_sets): pick one with --cfg-options '
                         'test_dataloader.dataset=... and test_sets=None')
    for name in test_sets:
        if not name or osp.basename(name) != name or name.startswith('.'):
            raise ValueError(f'test_sets: {name!r} is not usable as a folder name')
    check_output_folder(cfg.work_dir, 'work dir')
    stamp = time.strftime('%Y%m%d_%H%M%S', time.localtime())
    results = {}
    for name, dataset in test_sets.items():
        one = copy.deepcopy(cfg)
        dataset = copy.deepcopy(dataset)
        if 'pipeline' not in dataset:
            dataset['pipeline'] = cfg.test_dataloader.dataset.pipeline
        one.test_dataloader.dataset = dataset
        one.work_dir = osp.join(cfg.work_dir, name)
        # a runner's logger and visualizer are named after its experiment: one per set
        one.experiment_name = f'test_{stamp}_{name}'
        print(f'test set {name}:')
        results[name] = evaluate(one, per_set_args(args, name))
    if any(result is None for result in results.values()):
        return None  # not rank 0
    miou = {}
    for name, result in results.items():
        value = result['metrics'].get('mIoU')
        miou[name] = None if value is None else float(value)
    values = list(miou.values())
    summary = dict(config=args.config, checkpoint=args.checkpoint,
                   test_sets={name: dict(images=results[name]['images'], mIoU=miou[name],
                                         metrics=osp.join(name, 'metrics.json'))
                              for name in results},
                   mean_mIoU=None if None in values else sum(values) / len(values))
    path = osp.join(cfg.work_dir, 'metrics.json')
    write_result_text(path, json.dumps(summary, indent=2))
    table = summary_markdown(config_label(args.config), miou)
    write_result_text(osp.join(cfg.work_dir, SUMMARY_TABLE), table)
    print(table + f'mIoU of {len(results)} test sets written to {path} and '
          f'{osp.join(cfg.work_dir, SUMMARY_TABLE)}')
    return summary
