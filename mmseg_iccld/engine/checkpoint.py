"""Loading and saving mmengine checkpoints: the safe unpickler on torch >= 2.6, one-line errors
for files that cannot be read, and saves that a kill cannot leave half-written.

torch 2.6 made ``torch.load`` default to ``weights_only=True``. mmengine 0.10.7 calls it
without the argument, and its own checkpoints hold a few non-tensor objects (the message
hub's ``HistoryBuffer``, numpy arrays and scalars), so ``Runner.resume`` fails on a
checkpoint the same runner just wrote.

Rather than turning the safe unpickler off, the local-file loader of mmengine's
``CheckpointLoader`` is replaced by one that keeps ``weights_only=True`` and allowlists, for
the duration of that one load, exactly the globals mmengine checkpoints contain.
``HistoryBuffer`` pickles its statistics methods as ``getattr(HistoryBuffer, 'mean')``; the
name ``getattr`` is therefore mapped to :func:`history_buffer_statistic`, which returns those
methods and refuses everything else: the real ``getattr`` would hand a crafted file any
attribute of any object it can name (the builtins module through ``getattr.__self__``).

A file the loader refuses, or cannot read (empty, truncated), raises one line naming the file
and the reason (:class:`CheckpointReadError`).

Saves go through mmengine's storage backend, which ``local_backend`` replaces for local
paths with one that writes a file whole or not at all.
"""
import os.path as osp
import pickle
import re
from typing import Optional

import numpy as np
import torch
from mmengine.logging import HistoryBuffer
from mmengine.runner.checkpoint import CheckpointLoader

from . import local_backend  # noqa: F401  (atomic saves of every local file)

# numpy 2 pickles its internals under ``numpy._core``; checkpoints written with numpy 1 name
# the same functions under ``numpy.core``.
_multiarray = np._core.multiarray if hasattr(np, '_core') else np.core.multiarray


# HistoryBuffer's own statistics methods (those registered later are in _statistics_methods)
HISTORY_BUFFER_STATISTICS = ('mean', 'max', 'min', 'current')


class CheckpointReadError(pickle.UnpicklingError, ValueError):
    """A checkpoint file is refused by the safe unpickler, or cannot be read at all."""


def history_buffer_statistic(owner: object, name: str):
    """``getattr`` as a checkpoint may use it: the statistics methods of ``HistoryBuffer``.

    Args:
        owner: What the pickle asks an attribute of; only ``HistoryBuffer`` is answered.
        name: The attribute; only the names of its statistics methods.

    Raises:
        pickle.UnpicklingError: For any other object or name.
    """
    if owner is HistoryBuffer and isinstance(name, str) and (
            name in HISTORY_BUFFER_STATISTICS or name in HistoryBuffer._statistics_methods):
        return getattr(HistoryBuffer, name)
    raise pickle.UnpicklingError(f'getattr({_short_repr(owner)}, {name!r}) is not part of '
                                 'an mmengine checkpoint')


def _short_repr(value: object) -> str:
    if value is history_buffer_statistic:  # what the pickle calls getattr
        return 'getattr'
    text = getattr(value, '__qualname__', None) or type(value).__name__
    return text if len(text) <= 60 else text[:57] + '...'


MMENGINE_CHECKPOINT_GLOBALS = [
    HistoryBuffer,
    (history_buffer_statistic, 'builtins.getattr'),
    np.ndarray,
    np.dtype,
    _multiarray.scalar,
    _multiarray._reconstruct,
    (_multiarray.scalar, 'numpy.core.multiarray.scalar'),
    (_multiarray._reconstruct, 'numpy.core.multiarray._reconstruct'),
] + [type(np.dtype(t)) for t in (np.float16, np.float32, np.float64, np.int32, np.int64,
                                   np.uint8, np.bool_)]

_UNSAFE_GLOBAL = re.compile(r'GLOBAL (\S+) was not an allowed global')


def describe_load_error(error: BaseException) -> str:
    """The reason a checkpoint failed to load, in a few words.

    Torch's messages run over many lines (and, for a refused global, advise loading without
    the safe unpickler); this keeps the one fact that matters.
    """
    if isinstance(error, CheckpointReadError):
        return str(error)
    if isinstance(error, pickle.UnpicklingError):
        match = _UNSAFE_GLOBAL.search(str(error))
        if match:
            return f'it holds {match.group(1)}, which a checkpoint may not contain'
        inner = error.__context__  # torch re-raises the unpickler's error with its advice
        if isinstance(inner, pickle.UnpicklingError) and str(inner).strip():
            return str(inner).strip().splitlines()[0]
        return 'the safe unpickler refused it'
    if isinstance(error, EOFError):
        return 'the file ends before the checkpoint does'
    lines = str(error).strip().splitlines()
    reason = lines[0] if lines else ''
    reason = reason.split('. This is an internal')[0]  # miniz's note on truncated archives
    return f'{type(error).__name__}: {reason}' if reason else type(error).__name__


def torch_load_checkpoint(filename: str, map_location=None, mmap: bool = False) -> dict:
    """``torch.load`` a trusted mmengine checkpoint with the safe unpickler.

    Args:
        filename: Path of a checkpoint written by an mmengine runner (or a plain state dict).
        map_location: As in ``torch.load``.
        mmap: Map the tensors' storage instead of reading it (``torch.load(mmap=True)``);
            for a cheap check that a file loads.

    Returns:
        The loaded checkpoint.

    Raises:
        CheckpointReadError: When the safe unpickler refuses the file or it cannot be read,
            naming the file and the reason in one line.
    """
    if not hasattr(torch.serialization, 'safe_globals'):  # torch < 2.5: nothing to fix
        return torch.load(filename, map_location=map_location)
    try:
        with torch.serialization.safe_globals(MMENGINE_CHECKPOINT_GLOBALS):
            return torch.load(filename, map_location=map_location, weights_only=True,
                              mmap=mmap)
    except pickle.UnpicklingError as error:
        raise CheckpointReadError(f'checkpoint {filename} refused: '
                                  f'{describe_load_error(error)}') from None
    except (RuntimeError, EOFError, OSError) as error:
        if isinstance(error, FileNotFoundError):
            raise
        raise CheckpointReadError(
            f'checkpoint {filename} {_unreadable(filename, error)}') from None


def _unreadable(filename: str, error: BaseException) -> str:
    """Why ``filename`` failed to load: empty, truncated, or no checkpoint at all."""
    size = osp.getsize(filename) if osp.isfile(filename) else 0
    if size == 0:
        return 'is empty (0 bytes)'
    import zipfile
    with open(filename, 'rb') as f:
        starts_like_a_checkpoint = f.read(4) == b'PK\x03\x04'  # torch.save's zip archive
    if starts_like_a_checkpoint and not zipfile.is_zipfile(filename):
        return f'is truncated ({size} bytes, the end of its archive is missing)'
    return f'cannot be read ({size} bytes, not a checkpoint: {describe_load_error(error)})'


@CheckpointLoader.register_scheme(prefixes='', force=True)
def load_from_local(filename: str, map_location=None) -> dict:
    """mmengine's local checkpoint loader, with the allowlist above."""
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'{filename} can not be found.')
    return torch_load_checkpoint(filename, map_location=map_location)


def checkpoint_problem(filename: str) -> Optional[str]:
    """Why a training checkpoint cannot be resumed from, or None when it can.

    Cheap next to loading it: the zip archive's checksums are verified and the pickle is
    read with the tensors memory-mapped, not loaded.

    Args:
        filename: The checkpoint file.

    Returns:
        None, or a few words (``'is empty (0 bytes)'``, ``'cannot be read (...)'``, ...).
    """
    if not osp.isfile(filename):
        return 'does not exist'
    import zipfile
    is_zip = zipfile.is_zipfile(filename)
    if is_zip:
        try:
            with zipfile.ZipFile(filename) as archive:
                damaged = archive.testzip()
        except (zipfile.BadZipFile, OSError, EOFError) as error:
            return f'is damaged ({error})'
        if damaged is not None:
            return f'is damaged ({damaged} fails its checksum)'
    try:
        checkpoint = torch_load_checkpoint(filename, map_location='cpu', mmap=is_zip)
    except CheckpointReadError as error:
        return str(error)[len(f'checkpoint {filename} '):]
    if not isinstance(checkpoint, dict) or 'state_dict' not in checkpoint \
            or 'meta' not in checkpoint:
        return 'is no training checkpoint (it has no state_dict and meta)'
    return None
