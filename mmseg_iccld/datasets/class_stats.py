"""Per-label class statistics in DAFormer's format, as rare class sampling reads them.

- ``sample_class_stats.json``: ``[{"<train id>": <pixels>, ..., "file": <label path>}, ...]``
- ``sample_class_stats_dict.json``: ``{<label path>: {"<train id>": <pixels>, ...}}``
- ``samples_with_class.json``: ``{"<train id>": [[<label path>, <pixels>], ...]}``

Pixel counts leave out the ignore index 255.
"""
import json
import os.path as osp
from typing import Dict, List, Sequence

import numpy as np

from .label_tables import IGNORE_INDEX

STATS_FILES = ('sample_class_stats.json', 'sample_class_stats_dict.json',
               'samples_with_class.json')


def class_stats(train_ids: np.ndarray, file: str) -> dict:
    """Pixels per train id of one label, in DAFormer's format.

    Args:
        train_ids: ``(H, W)`` train-id label.
        file: The label's path, stored under ``'file'``.

    Returns:
        ``{"<train id>": pixels, ..., "file": file}`` for the train ids present, ascending,
        the ignore index left out.
    """
    values, counts = np.unique(train_ids, return_counts=True)
    stats = {str(int(v)): int(n) for v, n in zip(values, counts) if v != IGNORE_INDEX}
    stats['file'] = file
    return stats


def write_class_stats(out_dir: str, stats: Sequence[dict]) -> List[str]:
    """Write the three class-statistics files.

    Args:
        out_dir: Folder to write into (the dataset root).
        stats: Per-label statistics as returned by :func:`class_stats`.

    Returns:
        The paths written.
    """
    stats_dict = {s['file']: {k: v for k, v in s.items() if k != 'file'} for s in stats}
    with_class: Dict[str, list] = {}
    for file, counts in stats_dict.items():
        for train_id, n in counts.items():
            with_class.setdefault(train_id, []).append([file, n])
    with_class = {k: with_class[k] for k in sorted(with_class, key=int)}
    paths = [osp.join(out_dir, name) for name in STATS_FILES]
    for path, content in zip(paths, (list(stats), stats_dict, with_class)):
        with open(path, 'w') as f:
            json.dump(content, f, indent=2)
    return paths
