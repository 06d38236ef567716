"""mmengine's storage backend for local paths, replaced: files written whole or not at all,
and folders listed without following symlink loops.

mmengine writes a checkpoint with ``open(path, 'wb')``: a kill during the write leaves a
truncated file under the checkpoint's name, and ``last_checkpoint`` may already point at it.
:class:`AtomicLocalBackend` writes to a hidden temporary name in the same folder and renames
it into place once complete.

mmseg's datasets list their images with ``mmengine.fileio.list_dir_or_file``, which follows
every symlinked folder: a link back to a folder it lies in (``ln -s . images/loop``) repeats
the folder until the system gives up with ELOOP, some 600 lines of traceback later. The
listing here follows symlinked folders too, but skips such a loop with a note, as the
converters and this project's datasets do (``mmseg_iccld.datasets.folder_walk``).
"""
import os
import os.path as osp
import uuid
from typing import Iterator, Optional, Tuple, Union

import mmengine
from mmengine.fileio.backends import LocalBackend, register_backend


class CheckpointWriteError(OSError):
    """A checkpoint (or another file of the runner) could not be written: a full disk, a
    quota, a folder that went away. The previous file under that name is intact."""


class AtomicLocalBackend(LocalBackend):
    """mmengine's local storage backend, with ``put`` writing a file all at once or not at all
    and a recursive listing that skips symlink loops.

    The bytes go to a hidden file next to the target (``.NAME.<pid>.<random>.tmp``), are
    flushed to disk, and the file is renamed onto the target: a reader (or a resume after a
    kill) finds either the previous file or the complete new one. A write that fails (a full
    disk) removes the temporary file and raises :class:`CheckpointWriteError`; a kill during the
    write leaves only the hidden temporary file, which the next run in the work dir removes
    (``work_dir_lock.remove_partial_checkpoints``).
    """

    def put(self, obj: bytes, filepath) -> None:
        filepath = str(filepath)
        folder = osp.dirname(filepath)
        mmengine.mkdir_or_exist(folder or '.')
        temporary = osp.join(folder, f'.{osp.basename(filepath)}.{os.getpid()}.'
                             f'{uuid.uuid4().hex[:8]}.tmp')
        try:
            with open(temporary, 'xb') as f:
                f.write(obj)
                f.flush()
                os.fsync(f.fileno())
            os.replace(temporary, filepath)
        except BaseException as error:
            if osp.exists(temporary):
                os.remove(temporary)
            if isinstance(error, OSError):
                failure = CheckpointWriteError(f'cannot write {filepath}: '
                                               f'{error.strerror or error}')
                failure.errno = error.errno
                raise failure from error
            raise
        _sync_folder(folder or '.')

    def list_dir_or_file(self, dir_path, list_dir: bool = True, list_file: bool = True,
                         suffix: Optional[Union[str, Tuple[str]]] = None,
                         recursive: bool = False) -> Iterator[str]:
        """mmengine's listing (hidden files left out, paths relative to ``dir_path``), with
        symlink loops skipped: ``folder_walk.walk`` when ``recursive``."""
        if not recursive:
            yield from super().list_dir_or_file(dir_path, list_dir, list_file, suffix,
                                                recursive)
            return
        if list_dir and suffix is not None:
            raise TypeError('`suffix` should be None when `list_dir` is True')
        if (suffix is not None) and not isinstance(suffix, (str, tuple)):
            raise TypeError('`suffix` must be a string or tuple of strings')
        from mmseg_iccld.datasets.folder_walk import walk
        for entry, rel in walk(str(dir_path)):
            if entry.is_dir():
                if list_dir:
                    yield rel
            elif list_file and not entry.name.startswith('.') and entry.is_file() and (
                    suffix is None or rel.endswith(suffix)):
                yield rel


def _sync_folder(folder: str) -> None:
    """Make a rename in ``folder`` durable (POSIX; a no-op where folders cannot be opened)."""
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


register_backend('local', AtomicLocalBackend, force=True, prefixes='')
