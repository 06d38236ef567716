"""One training run per work dir, and what a killed run left half-written there.

Two runs started into one work dir both train: they log into one folder and overwrite each
other's ``iter_N.pth`` and ``last_checkpoint``, and neither says a word. :func:`lock_work_dir`
takes an exclusive ``flock`` on ``WORK_DIR/.train.lock`` for the life of the process; the
operating system drops it when the process ends, however it ends, so a killed run never leaves
the work dir locked. The file holds the process id and host of the holder, for the message of
the run that is refused.

Holding the lock also means that no other run is writing into the work dir: a hidden
temporary checkpoint found there (``AtomicLocalBackend`` writes ``.NAME.<pid>.<hex>.tmp``,
then renames it) is what a kill during a save left behind, and
:func:`remove_partial_checkpoints` clears it.
"""
import fcntl
import os
import os.path as osp
import re
import socket
from typing import List, Optional

from .work_dir import WorkDirError

LOCK_NAME = '.train.lock'
# AtomicLocalBackend's temporary file: .<name>.<pid>.<8 hex digits>.tmp
PARTIAL_CHECKPOINT = re.compile(r'^\..+\.\d+\.[0-9a-f]{8}\.tmp$')

# the open lock file of this process, kept until the process ends
_held: dict = {}


def launcher_rank() -> int:
    """This process's rank as the launcher set it (torchrun, slurm, MPI); 0 in one process.

    Read from the environment, since the lock is taken before distribution is set up.
    """
    for key in ('RANK', 'SLURM_PROCID', 'OMPI_COMM_WORLD_RANK'):
        value = os.environ.get(key, '')
        if value.isdigit():
            return int(value)
    return 0


def lock_work_dir(work_dir: str) -> Optional[str]:
    """Hold ``work_dir`` for this training run until the process ends.

    Only the first process of a distributed run takes the lock: its other processes are part
    of the same run.

    Args:
        work_dir: The run's work dir (it exists: ``check_work_dir`` created it).

    Returns:
        The lock file's path, or None in a process of rank above 0.

    Raises:
        WorkDirError: When another live process holds the work dir, naming it.
    """
    if launcher_rank() != 0:
        return None
    path = osp.join(work_dir, LOCK_NAME)
    key = osp.realpath(path)
    if key in _held:
        return path
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(descriptor, 256, 0).decode(errors='replace').strip()
        os.close(descriptor)
        raise WorkDirError(
            f'work dir {work_dir} is in use by another training run'
            + (f' ({holder})' if holder else '')
            + ': give this run another --work-dir, or wait for that one to end') from None
    os.ftruncate(descriptor, 0)
    os.pwrite(descriptor, f'process {os.getpid()} on {socket.gethostname()}'.encode(), 0)
    _held[key] = descriptor
    return path


def release_work_dir(work_dir: str) -> None:
    """Give up this process's hold on ``work_dir`` (the end of the process does it too)."""
    descriptor = _held.pop(osp.realpath(osp.join(work_dir, LOCK_NAME)), None)
    if descriptor is not None:
        os.close(descriptor)


def remove_partial_checkpoints(folder: str) -> List[str]:
    """Delete the hidden temporary checkpoints a killed save left in ``folder``.

    Call it only while holding the work dir (:func:`lock_work_dir`): then no other run is
    writing one.

    Returns:
        The removed files' paths, sorted.
    """
    if not osp.isdir(folder):
        return []
    removed = []
    for name in sorted(os.listdir(folder)):
        path = osp.join(folder, name)
        if PARTIAL_CHECKPOINT.match(name) and osp.isfile(path):
            os.remove(path)
            removed.append(path)
    return removed
