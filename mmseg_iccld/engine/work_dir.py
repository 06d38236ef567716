"""A work dir that cannot be written is reported before anything is built.

mmengine creates the work dir in ``Runner.__init__`` and writes the first file into it after
the model is built and the data are indexed; a path under a file, or a folder without write
permission, then ends in a traceback from deep inside the runner.
"""
import os
import os.path as osp
import uuid


class WorkDirError(ValueError):
    """The work dir cannot be created or written."""


def _blocking_file(path: str) -> str:
    """The nearest existing ancestor of ``path`` when it is not a folder, else ''."""
    current = osp.abspath(path)
    while not osp.exists(current):
        parent = osp.dirname(current)
        if parent == current:
            return ''
        current = parent
    return '' if osp.isdir(current) else current


def check_work_dir(path: str) -> None:
    """Create ``path`` if needed and make sure a file can be written into it.

    Args:
        path: The run's work dir.

    Raises:
        WorkDirError: One line naming the folder and why it cannot be used.
    """
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as error:
        blocker = _blocking_file(path)
        reason = f'{blocker} is a file, not a folder' if blocker else \
            (error.strerror or str(error))
        raise WorkDirError(f'work dir {path} cannot be created: {reason}') from None
    probe = osp.join(path, f'.write_test.{os.getpid()}.{uuid.uuid4().hex[:8]}')
    try:
        with open(probe, 'xb'):
            pass
        os.remove(probe)
    except OSError as error:
        raise WorkDirError(f'work dir {path} is not writable: '
                           f'{error.strerror or error}') from None
