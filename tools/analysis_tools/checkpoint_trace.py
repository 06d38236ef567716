"""Target mIoU and per-class IoU of every checkpoint a run kept: when in training a class is
won or lost, and whether two runs part early or late.

    python tools/analysis_tools/checkpoint_trace.py WORK_DIR [WORK_DIR ...] [--name trace]
        [--weights {student,teacher}] [--cfg-options key=value ...] [--out PREFIX]

A WORK_DIR is a training run's folder: the config the runner dumped there (the one ``*.py``
file at its top level, with the run's ``--cfg-options`` applied) and its checkpoints
``iter_<N>.pth``. To keep more than the last one, train with
``--cfg-options default_hooks.checkpoint.interval=250`` (``uda_results.py`` passes such options
on). Each checkpoint is tested with ``tools/test.py`` on the config's test set into
``WORK_DIR/<name>/iter_<N>/``; a checkpoint whose metrics are there is not tested again, so
``--name`` keeps variants apart (say, ``--name trace_k0 --cfg-options
model.model.test_cfg.num_inference_steps=0`` for an ICCLD run's phase-1 decode throughout).
``--weights teacher`` tests the EMA teacher of each checkpoint instead of the student
(``tools/test.py --weights``), into ``WORK_DIR/trace_teacher/`` unless ``--name`` says
otherwise; metrics found there of the other weights are an error, not reused.

Writes ``PREFIX.json`` (every checkpoint's mIoU and per-class IoU) and ``PREFIX.md`` (one row
per checkpoint, in iteration order within each run; classes without an IoU in any row are
left out).
"""
import argparse
import glob
import os.path as osp
import re
import sys
from datetime import datetime, timezone

from mmseg_iccld.apis import tool_runs
from mmseg_iccld.apis.cli_errors import exit_on_user_error
from mmseg_iccld.apis.result_files import write_report
from mmseg_iccld.apis.uda_report import CLASSES, per_class_iou

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))

CHECKPOINT = re.compile(r'iter_(\d+)\.pth$')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('work_dirs', nargs='+', metavar='WORK_DIR')
    parser.add_argument('--name', default=None,
                        help='subfolder of each WORK_DIR that holds the tests (default: trace, '
                        'trace_teacher with --weights teacher)')
    parser.add_argument('--weights', choices=('student', 'teacher'), default='student',
                        help='the UDA network whose weights are tested')
    parser.add_argument('--cfg-options', nargs='+', default=[],
                        help='overrides passed to every test')
    parser.add_argument('--out', default=None,
                        help='output path without extension (default: the first '
                        'WORK_DIR/<name>)')
    return parser.parse_args(argv)


def run_config(work_dir: str) -> str:
    """The config the runner dumped into ``work_dir``: its one ``*.py`` file."""
    if not osp.isdir(work_dir):
        raise NotADirectoryError(f'{work_dir}: no such run folder')
    configs = sorted(glob.glob(osp.join(work_dir, '*.py')))
    if len(configs) != 1:
        found = ', '.join(osp.basename(c) for c in configs) or 'none'
        raise ValueError(f'{work_dir}: expected the one config the runner dumps there '
                         f'(*.py), found {found}')
    return configs[0]


def checkpoints(work_dir: str) -> list:
    """``(iteration, path)`` of the ``iter_<N>.pth`` files in ``work_dir``, by iteration."""
    found = []
    for path in glob.glob(osp.join(work_dir, 'iter_*.pth')):
        match = CHECKPOINT.search(osp.basename(path))
        if match:
            found.append((int(match.group(1)), path))
    if not found:
        raise FileNotFoundError(f'{work_dir}: no checkpoint iter_<N>.pth')
    return sorted(found)


def test_checkpoint(config: str, checkpoint: str, test_dir: str, cfg_options: list,
                    weights: str = 'student') -> dict:
    """mIoU and per-class IoU of one checkpoint (tested unless ``test_dir`` holds them)."""
    options = ['--weights', weights] + (['--cfg-options'] + list(cfg_options) if cfg_options
                                        else [])
    metrics = tool_runs.tested_metrics(ROOT, config, checkpoint, test_dir, options)
    tested = metrics.get('weights', 'student')  # written by tools/test.py for UDA checkpoints
    if tested != weights:
        raise ValueError(f"{osp.join(test_dir, 'metrics.json')}: tests the {tested}, not the "
                         f'{weights}; give the trace another --name')
    return dict(mIoU=float(metrics['metrics']['mIoU']), per_class=per_class_iou(metrics))


def trace(work_dir: str, name: str, cfg_options: list, weights: str = 'student') -> dict:
    """``{iteration: {mIoU, per_class}}`` of every checkpoint of one run."""
    work_dir = osp.abspath(work_dir)  # the tests run in the repository root
    config = run_config(work_dir)
    return {str(it): test_checkpoint(config, path, osp.join(work_dir, name, f'iter_{it}'),
                                     cfg_options, weights)
            for it, path in checkpoints(work_dir)}


def to_markdown(report: dict) -> str:
    runs = report['runs']
    rows = [(run, it, r) for run, by_iter in runs.items() for it, r in by_iter.items()]
    present = [c for c in CLASSES if any(c in r['per_class'] for _, _, r in rows)]
    options = (f" with `--cfg-options {' '.join(report['cfg_options'])}`"
               if report['cfg_options'] else '')
    lines = [f"Target mIoU of every checkpoint of each run, the {report['weights']}'s weights "
             f"tested{options}. Written by "
             f"`{report['command']}` on {report['date']}.", '',
             '| run | iteration | mIoU | ' + ' | '.join(present) + ' |',
             '|---|---:|---:|' + '---:|' * len(present)]
    for run, it, r in rows:
        cells = [f"{r['per_class'][c]:.2f}" if c in r['per_class'] else 'n/a' for c in present]
        lines.append(f"| {run} | {it} | {r['mIoU']:.2f} | " + ' | '.join(cells) + ' |')
    return '\n'.join(lines) + '\n'


@exit_on_user_error
def main(argv=None):
    args = parse_args(argv)
    name = args.name or ('trace' if args.weights == 'student' else 'trace_teacher')
    runs = {osp.normpath(w): trace(w, name, args.cfg_options, args.weights)
            for w in args.work_dirs}
    report = dict(
        date=datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC'),
        command='python tools/analysis_tools/checkpoint_trace.py ' + ' '.join(
            sys.argv[1:] if argv is None else argv),
        name=name, weights=args.weights, cfg_options=args.cfg_options, runs=runs)
    out = args.out or osp.join(args.work_dirs[0], name)
    write_report(out, report, to_markdown(report))


if __name__ == '__main__':
    main()
