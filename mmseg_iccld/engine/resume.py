"""Which checkpoint a resumed run starts from: the newest one that loads.

mmengine's auto-resume reads the path in the work dir's ``last_checkpoint`` file and loads it;
an empty ``last_checkpoint``, or one naming a checkpoint cut short by a kill or a full disk,
ends in a long traceback, and a work dir without one silently trains from scratch ("Auto
resumed from the latest checkpoint None"). :func:`choose_resume_checkpoint` picks the file
before the runner starts: the requested (or last) checkpoint when it loads, else the newest
``iter_N.pth`` / ``epoch_N.pth`` that does, with one line saying what was passed over; and
it refuses to "resume" when there is nothing to resume.
"""
import os
import os.path as osp
import re
from typing import List, Optional, Tuple

from .checkpoint import checkpoint_problem

CHECKPOINT_NAME = re.compile(r'^(?:iter|epoch)_(\d+)\.pth$')


class ResumeError(ValueError):
    """There is no checkpoint to resume from."""


def numbered_checkpoints(folder: str) -> List[str]:
    """The ``iter_N.pth`` and ``epoch_N.pth`` files of ``folder``, highest N first."""
    if not osp.isdir(folder):
        return []
    found = [(int(m.group(1)), name) for name in os.listdir(folder)
             if (m := CHECKPOINT_NAME.match(name))]
    return [osp.join(folder, name) for _, name in sorted(found, reverse=True)]


def _number(path: str) -> Optional[int]:
    match = CHECKPOINT_NAME.match(osp.basename(path))
    return int(match.group(1)) if match else None


def _last_checkpoint(work_dir: str) -> Tuple[Optional[str], Optional[str]]:
    """The path ``work_dir/last_checkpoint`` names, and a note when that file is unusable."""
    record = osp.join(work_dir, 'last_checkpoint')
    if not osp.isfile(record):
        return None, None
    with open(record) as f:
        path = f.read().strip()
    if not path:
        return None, f'{record} is empty'
    return path, None


def choose_resume_checkpoint(work_dir: str,
                             requested: Optional[str] = None) -> Tuple[str, Optional[str]]:
    """The checkpoint to resume from, and a line to log when it is not the one asked for.

    Args:
        work_dir: The run's work dir (where ``last_checkpoint`` and the checkpoints are).
        requested: The checkpoint given to ``--resume``; None to resume from the latest.

    Returns:
        ``(path, note)``: ``note`` is None when ``path`` is the requested checkpoint (or the
        one ``last_checkpoint`` names), else one line naming what was passed over and why.

    Raises:
        ResumeError: When no checkpoint can be resumed from, naming the folder and why.
    """
    passed_over: List[str] = []
    if requested is not None:
        if not osp.isfile(requested):
            raise ResumeError(f'--resume: {requested} does not exist')
        first = requested
        newer_than = _number(requested)
        candidates = [p for p in numbered_checkpoints(osp.dirname(requested) or '.')
                      if newer_than is None or (_number(p) or 0) < newer_than]
        where = osp.dirname(requested) or '.'
    else:
        first, note = _last_checkpoint(work_dir)
        if note:
            passed_over.append(note)
        candidates = numbered_checkpoints(work_dir)
        if first is not None:
            # CheckpointHook's out_dir puts checkpoints elsewhere; last_checkpoint says where
            candidates = numbered_checkpoints(osp.dirname(first)) + candidates
        where = work_dir
        if first is None and not candidates:
            raise ResumeError(
                f'--resume: nothing to resume in {work_dir}: '
                + (f'{note} and there is ' if note else 'no last_checkpoint file and ')
                + 'no iter_*.pth (leave out --resume to train from scratch)')
    seen = set()
    for path in ([first] if first is not None else []) + candidates:
        key = osp.realpath(path)
        if key in seen:
            continue
        seen.add(key)
        problem = checkpoint_problem(path)
        if problem is None:
            if not passed_over:
                return path, None
            return path, (f'resume: {"; ".join(passed_over)}; resuming from {path}, the '
                          f'newest checkpoint that loads')
        passed_over.append(f'{path} {problem}')
    raise ResumeError(f'--resume: no checkpoint in {where} loads: {"; ".join(passed_over)}')


def check_resume_progress(checkpoint: str, train_cfg: dict) -> None:
    """Raise when ``checkpoint`` has already trained as far as ``train_cfg`` asks.

    mmengine resumes such a run, finds its loop finished, and exits 0 having trained nothing.

    Args:
        checkpoint: The checkpoint the run resumes from (it loads: see
            :func:`choose_resume_checkpoint`).
        train_cfg: The config's ``train_cfg`` (``max_iters``, or ``max_epochs`` with
            ``by_epoch=True``).

    Raises:
        ResumeError: Naming the checkpoint's progress and the config's limit.
    """
    from .checkpoint import torch_load_checkpoint
    key, limit = ('epoch', 'max_epochs') if train_cfg.get('by_epoch', False) or (
        'max_epochs' in train_cfg and 'max_iters' not in train_cfg) else ('iter', 'max_iters')
    wanted = train_cfg.get(limit)
    if not isinstance(wanted, int) or isinstance(wanted, bool):
        return  # a missing or ill-typed limit is the config check's to name
    import zipfile
    meta = torch_load_checkpoint(checkpoint, map_location='cpu',
                                 mmap=zipfile.is_zipfile(checkpoint)).get('meta') or {}
    done = meta.get(key)
    if isinstance(done, int) and done >= wanted:
        unit = 'epoch' if key == 'epoch' else 'iteration'
        raise ResumeError(
            f'--resume: {checkpoint} is at {unit} {done} and train_cfg.{limit} is {wanted}: '
            f'nothing to train (raise train_cfg.{limit} above {done} to train on)')
