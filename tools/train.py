"""Train a segmentor (plain mmseg or UDA: DACS/DAFormer, ICCLD, ...) with mmengine's Runner.

    python tools/train.py CONFIG [--work-dir DIR] [--amp] [--resume [CKPT]]
                                 [--cfg-options key=value ...] [--launcher pytorch]

Differences from mmseg's own tools/train.py:
- ``--amp`` works for UDA configs too, including those with several optimizers (mmseg's
  asserts a single ``OptimWrapper``); the dtype is bfloat16 where the GPU supports it.
- Without a GPU, distributed runs use the gloo backend (CPU).
- Before anything is built: misspelt config keys (top-level, model, hooks, optimizer
  wrappers and their ``paramwise_cfg``, loops, schedulers, dataloaders), values of the wrong
  type, a schedule with nothing to train, a model whose classes are not the data's, a
  ``_base_`` loop, ``--cfg-options`` mmengine cannot read, pretrained files the config names,
  and the work dir are checked; each problem is one line. A config naming an unregistered
  module type gets one line naming the type and the config.
- ``--resume`` starts from the newest checkpoint that loads (saying which was passed over),
  and refuses when there is nothing to resume; a checkpoint of another model or optimizer
  layout is refused before it is loaded (``load_from``: unless ``load_strict=False``).
- Checkpoints are written under a temporary name and renamed when complete; a temporary file
  left by a kill is removed by the next run in the work dir, and a save that fails (a full
  disk) stops the run with one line saying what is kept.
- One run per work dir: a second run started into a work dir in use is refused in one line
  (the lock goes with the process that holds it, however it ends).
- ``--resume`` refuses a checkpoint that has already reached ``max_iters``, and says so when
  the config's learning rates differ from those the checkpoint was trained with.
- ``--launcher pytorch`` (or ``slurm``) outside its launcher is one line naming the script.
- A run whose non-finite losses exceed ``nonfinite``'s limit stops with one line; a run that
  skipped any iteration ends with a warning giving the count.
"""
import argparse
import errno
import os
import sys

from mmseg_iccld.apis.cli_errors import exit_on_user_error
from mmseg_iccld.apis.config_loading import (apply_amp, explain_unknown_modules, load_run_config,
                                             set_cpu_distributed_backend)
from mmseg_iccld.engine.cfg_options import CfgOptionsAction

EPILOG = """\
checkpoints:
  --resume             resume from work_dir/last_checkpoint; when that file is empty or names
                       a checkpoint that does not load (cut short by a kill), from the newest
                       iter_N.pth that loads, with one line saying so
  --resume CKPT        resume from CKPT, or from the newest older checkpoint in its folder
                       that loads
  load_from            (--cfg-options load_from=CKPT) start from the weights of CKPT; a
                       checkpoint that fits the model only partly is refused unless
                       --cfg-options load_strict=False, which loads the matching weights
  a checkpoint of another model or optimizer layout is never resumed from

non-finite losses (UDA models):
  model.nonfinite=skip drop an iteration whose loss is NaN or infinite instead of stopping;
                       more than 10 skipped within 100 iterations stops the run
  model.nonfinite.policy=skip model.nonfinite.max_skips=N model.nonfinite.window=W
                       the same with another limit (when the config sets no nonfinite)
"""


def parse_args():
    parser = argparse.ArgumentParser(
        description='Train a segmentor', epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument(
        '--resume', nargs='?', const='auto', default=None,
        help='resume from CKPT, or from the latest checkpoint in the work dir when no '
        'path is given (see below)')
    parser.add_argument('--amp', action='store_true', help='automatic mixed precision')
    parser.add_argument(
        '--amp-dtype', default=None, choices=['float16', 'bfloat16'],
        help='AMP dtype (default: bfloat16 where supported, else float16)')
    parser.add_argument(
        '--cfg-options', nargs='+', action=CfgOptionsAction, metavar='KEY=VALUE',
        help='override settings of the config, e.g. train_cfg.max_iters=100; '
        'load_strict=False loads a load_from checkpoint that fits the model only partly')
    parser.add_argument(
        '--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def add_reliability_hooks(cfg) -> None:
    """Add the hooks that check loaded checkpoints and report skipped non-finite steps.

    ``load_strict`` (default True) is the ``strict`` of ``CheckpointFitHook``.
    """
    strict = cfg.get('load_strict', True)
    if not isinstance(strict, bool):
        raise ValueError(f'load_strict must be True or False, got {strict!r}')
    hooks = list(cfg.get('custom_hooks') or [])
    present = {hook.get('type') for hook in hooks if isinstance(hook, dict)}
    for hook in (dict(type='CheckpointFitHook', strict=strict),
                 dict(type='NonFiniteReportHook')):
        if hook['type'] not in present:
            hooks.append(hook)
    cfg.custom_hooks = hooks


def train(runner) -> None:
    """``runner.train()``; a stop by the non-finite loss guard, or a checkpoint or log that
    cannot be written (a full disk), is one logged line, status 1."""
    try:
        runner.train()
    except FloatingPointError as error:
        if os.environ.get('MMSEG_ICCLD_TRACEBACK'):
            raise
        runner.logger.error(f'FloatingPointError: {error}')
        sys.exit(1)
    except OSError as error:
        if os.environ.get('MMSEG_ICCLD_TRACEBACK') or not write_failure(error):
            raise
        runner.logger.error(stopped_by_write_failure(error, runner.work_dir))
        sys.exit(1)


def write_failure(error: OSError) -> bool:
    """Whether ``error`` is a file of the run that could not be written for lack of space."""
    from mmseg_iccld.engine.local_backend import CheckpointWriteError
    return isinstance(error, CheckpointWriteError) or error.errno in (errno.ENOSPC,
                                                                     errno.EDQUOT)


def stopped_by_write_failure(error: OSError, work_dir: str) -> str:
    """The line a run stopped by a failed write ends with: what failed, and what is kept."""
    from mmseg_iccld.engine.resume import numbered_checkpoints
    what = str(error) if error.filename is None else \
        f'cannot write {error.filename}: {error.strerror}'
    kept = numbered_checkpoints(work_dir)
    newest = f' (the newest checkpoint is {kept[0]})' if kept else ''
    fix = 'make room' if error.errno in (errno.ENOSPC, errno.EDQUOT) else 'fix that'
    return (f'{type(error).__name__}: {what}; training stopped, and every file written before '
            f'is intact{newest}: {fix}, then continue with --resume')


@exit_on_user_error
def main():
    args = parse_args()
    cfg = load_run_config(args)

    if args.amp:
        apply_amp(cfg, args.amp_dtype)
    if args.resume == 'auto':
        cfg.resume = True
        cfg.load_from = None
    elif args.resume is not None:
        cfg.resume = True
        cfg.load_from = args.resume
    set_cpu_distributed_backend(cfg)

    from mmseg_iccld.engine.config_check import check_config
    check_config(cfg, args.config)
    from mmseg_iccld.engine.work_dir import check_work_dir
    check_work_dir(cfg.work_dir)
    from mmseg_iccld.engine.work_dir_lock import lock_work_dir, release_work_dir
    lock_work_dir(cfg.work_dir)
    try:
        run(args, cfg)
    finally:
        release_work_dir(cfg.work_dir)


def run(args, cfg) -> None:
    """Build the runner and train, holding the work dir (:func:`main`)."""
    from mmseg_iccld.engine.work_dir_lock import remove_partial_checkpoints
    notes = []
    removed = remove_partial_checkpoints(cfg.work_dir)
    if removed:
        notes.append(f'removed {len(removed)} partial checkpoint file(s) that a killed save '
                     f'left: {", ".join(removed)}')
    if cfg.get('resume', False):
        from mmseg_iccld.engine.resume import check_resume_progress, choose_resume_checkpoint
        cfg.load_from, resume_note = choose_resume_checkpoint(cfg.work_dir,
                                                              cfg.get('load_from'))
        check_resume_progress(cfg.load_from, cfg.get('train_cfg') or {})
        notes += [resume_note] if resume_note else []

    from mmseg_iccld.engine.pretrained_files import check_pretrained_files
    check_pretrained_files(cfg)
    add_reliability_hooks(cfg)

    from mmengine.registry import RUNNERS
    from mmengine.runner import Runner
    with explain_unknown_modules(args.config):
        runner = RUNNERS.build(cfg) if 'runner_type' in cfg else Runner.from_cfg(cfg)
        for note in notes:
            runner.logger.warning(note)
        train(runner)


if __name__ == '__main__':
    main()
