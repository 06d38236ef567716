"""Loading mmengine checkpoints on torch >= 2.6.

torch 2.6 made ``torch.load`` default to ``weights_only=True``. mmengine 0.10.7 calls it
without the argument, and its own checkpoints hold a few non-tensor objects (the message
hub's ``HistoryBuffer``, numpy arrays and scalars), so ``Runner.resume`` fails on a
checkpoint the same runner just wrote.

Rather than turning the safe unpickler off, the local-file loader of mmengine's
``CheckpointLoader`` is replaced by one that keeps ``weights_only=True`` and allowlists, for
the duration of that one load, exactly the globals mmengine checkpoints contain.
``HistoryBuffer`` pickles its statistics methods as ``getattr(buffer, name)``, which is why
``getattr`` is on the list; it is never allowed outside checkpoint loading.
"""
import os.path as osp

import numpy as np
import torch
from mmengine.logging import HistoryBuffer
from mmengine.runner.checkpoint import CheckpointLoader

# numpy 2 pickles its internals under ``numpy._core``; checkpoints written with numpy 1 name
# the same functions under ``numpy.core``.
_multiarray = np._core.multiarray if hasattr(np, '_core') else np.core.multiarray

MMENGINE_CHECKPOINT_GLOBALS = [
    HistoryBuffer,
    getattr,
    np.ndarray,
    np.dtype,
    _multiarray.scalar,
    _multiarray._reconstruct,
    (_multiarray.scalar, 'numpy.core.multiarray.scalar'),
    (_multiarray._reconstruct, 'numpy.core.multiarray._reconstruct'),
] + [type(np.dtype(t)) for t in (np.float16, np.float32, np.float64, np.int32, np.int64,
                                   np.uint8, np.bool_)]


def torch_load_checkpoint(filename: str, map_location=None) -> dict:
    """``torch.load`` a trusted mmengine checkpoint with the safe unpickler.

    Args:
        filename: Path of a checkpoint written by an mmengine runner (or a plain state dict).
        map_location: As in ``torch.load``.

    Returns:
        The loaded checkpoint.
    """
    if not hasattr(torch.serialization, 'safe_globals'):  # torch < 2.5: nothing to fix
        return torch.load(filename, map_location=map_location)
    with torch.serialization.safe_globals(MMENGINE_CHECKPOINT_GLOBALS):
        return torch.load(filename, map_location=map_location, weights_only=True)


@CheckpointLoader.register_scheme(prefixes='', force=True)
def load_from_local(filename: str, map_location=None) -> dict:
    """mmengine's local checkpoint loader, with the allowlist above."""
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'{filename} can not be found.')
    return torch_load_checkpoint(filename, map_location=map_location)
