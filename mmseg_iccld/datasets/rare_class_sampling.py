"""Rare class sampling (RCS) statistics, as DAFormer (Hoyer et al., CVPR 2022) defines them.

A class ``c`` of the source set is drawn with probability ``p_c = softmax((1 - f_c) / T)``,
``f_c`` being its share of the labelled pixels of the source set; then an image is drawn
uniformly among the images holding more than ``min_pixels`` pixels of ``c``.

The statistics come from two files the dataset converters write into the dataset root
(DAFormer's format, see ``docs/method.md`` section 2):

- ``sample_class_stats.json``: ``[{"file": <label path>, "<train id>": <pixels>, ...}, ...]``
- ``samples_with_class.json``: ``{"<train id>": [[<label path>, <pixels>], ...], ...}``

These are small pure functions; ``UDADataset`` does the sampling itself.
"""
import json
import os.path as osp
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

SAMPLE_CLASS_STATS_FILE = 'sample_class_stats.json'
SAMPLES_WITH_CLASS_FILE = 'samples_with_class.json'


def load_stats_file(data_root: str, filename: str) -> Any:
    """Read one class-statistics JSON file of a source dataset root.

    Args:
        data_root: Root folder of the source dataset (``data/gta``, ``data/synthia``).
        filename: ``sample_class_stats.json`` or ``samples_with_class.json``.

    Returns:
        The parsed JSON content.

    Raises:
        FileNotFoundError: The file does not exist; the message says how to create it.
        ValueError: The file is not valid JSON.
    """
    path = osp.join(data_root or '', filename)
    if not osp.isfile(path):
        raise FileNotFoundError(
            f'Rare class sampling needs {path}, which does not exist. Create the class '
            f'statistics by running the dataset converter on the dataset root: '
            f'`python tools/convert_datasets/gta.py {data_root}` for GTA5 or '
            f'`python tools/convert_datasets/synthia.py {data_root}` for Synthia; '
            f'or set rare_class_sampling=None.')
    with open(path) as f:
        try:
            return json.load(f)
        except json.JSONDecodeError as err:
            raise ValueError(f'{path} is not valid JSON ({err}); re-run the dataset '
                             f'converter to rewrite it.') from err


def _class_id(key: str, path: str) -> int:
    """Parse a ``"<train id>"`` key of a statistics file, with an error naming the file."""
    try:
        return int(key)
    except ValueError:
        raise ValueError(f'{path}: class key {key!r} is not an integer train id.') from None


def class_frequencies(sample_class_stats: Sequence[dict],
                      num_classes: Optional[int] = None,
                      path: str = SAMPLE_CLASS_STATS_FILE) -> Dict[int, float]:
    """Pixel frequency ``f_c`` of every class present in the per-image statistics.

    Args:
        sample_class_stats: Content of ``sample_class_stats.json``: one dict per image,
            ``{"file": <label path>, "<train id>": <pixels>, ...}``.
        num_classes: When given, keys outside ``[0, num_classes)`` (an ignore index
            written by a converter) are left out of the counts.
        path: File name used in error messages.

    Returns:
        ``{class id: f_c}``, sorted by ascending frequency (DAFormer's order); the values
        sum to 1.

    Raises:
        ValueError: The statistics are not a list of dicts or count no pixel at all.
    """
    if not isinstance(sample_class_stats, list):
        raise ValueError(f'{path}: expected a list of per-image dicts, got '
                         f'{type(sample_class_stats).__name__}.')
    pixels: Dict[int, int] = {}
    for entry in sample_class_stats:
        if not isinstance(entry, dict):
            raise ValueError(f'{path}: expected per-image dicts, got {entry!r}.')
        for key, count in entry.items():
            if key == 'file':
                continue
            c = _class_id(key, path)
            if num_classes is not None and not 0 <= c < num_classes:
                continue
            pixels[c] = pixels.get(c, 0) + int(count)
    total = sum(pixels.values())
    if total <= 0:
        raise ValueError(f'{path} counts no labelled pixel; re-run the dataset converter.')
    ordered = sorted(pixels.items(), key=lambda item: item[1])
    return {c: n / total for c, n in ordered}


def class_probabilities(frequencies: Dict[int, float],
                        temperature: float) -> Tuple[List[int], np.ndarray]:
    """RCS class distribution ``p_c = softmax((1 - f_c) / T)``.

    Args:
        frequencies: ``{class id: f_c}`` from :func:`class_frequencies`.
        temperature: ``T`` (DAFormer: 0.01); smaller values favour rare classes more.

    Returns:
        The class ids and their probabilities, shape ``(K,)``, in the order of
        ``frequencies``.
    """
    if temperature <= 0:
        raise ValueError(f'rare_class_sampling.class_temp must be > 0, got {temperature}.')
    classes = list(frequencies)
    logits = (1.0 - np.array([frequencies[c] for c in classes], dtype=np.float64)) / temperature
    # Subtracting the maximum keeps exp() finite for small temperatures.
    weights = np.exp(logits - logits.max())
    return classes, weights / weights.sum()


def candidates_per_class(samples_with_class: Dict[str, list],
                         classes: Sequence[int],
                         min_pixels: int,
                         path: str = SAMPLES_WITH_CLASS_FILE) -> Dict[int, List[str]]:
    """Images worth sampling for each class: more than ``min_pixels`` pixels of it.

    Args:
        samples_with_class: Content of ``samples_with_class.json``:
            ``{"<train id>": [[<label path>, <pixels>], ...]}``.
        classes: The classes RCS draws from.
        min_pixels: An image is a candidate of class ``c`` if it holds strictly more
            pixels of ``c`` than this (DAFormer: 3000).
        path: File name used in error messages.

    Returns:
        ``{class id: [label base name, ...]}`` for every class of ``classes``.

    Raises:
        ValueError: The file is malformed, or a class has no candidate image.
    """
    if not isinstance(samples_with_class, dict):
        raise ValueError(f'{path}: expected a dict keyed by train id, got '
                         f'{type(samples_with_class).__name__}.')
    by_class = {_class_id(k, path): v for k, v in samples_with_class.items()}
    candidates: Dict[int, List[str]] = {}
    for c in classes:
        names = []
        for item in by_class.get(c, []):
            if not (isinstance(item, (list, tuple)) and len(item) == 2):
                raise ValueError(f'{path}: class {c}: expected [<label path>, <pixels>] '
                                 f'pairs, got {item!r}.')
            file, count = item
            if int(count) > min_pixels:
                names.append(label_key(file))
        if not names:
            raise ValueError(
                f'{path}: class {c} has no image with more than {min_pixels} pixels of it, '
                f'so rare class sampling cannot draw it. Lower '
                f'rare_class_sampling.min_pixels or check the class statistics.')
        candidates[c] = names
    return candidates


def check_stats_match(sample_class_stats: Sequence[dict], label_paths: Sequence[str],
                      path: str, rerun: str) -> None:
    """Raise when the statistics do not count exactly the labels of the source dataset.

    Rare class sampling draws only the images the statistics name: an image added to the
    dataset after the converter wrote them would silently never be trained on, and the
    pixels of one removed since would still weigh in the class frequencies. Labels are
    matched by :func:`label_key`.

    Args:
        sample_class_stats: Content of ``sample_class_stats.json`` (a list of dicts, as
            :func:`class_frequencies` checked).
        label_paths: The label path of every sample of the source dataset.
        path: The statistics file, for the message.
        rerun: The command that rewrites the statistics, for the message.

    Raises:
        ValueError: One line: how many labels differ each way, an example of each, and
            ``rerun``.
    """
    counted = {label_key(entry.get('file', '')) for entry in sample_class_stats}
    present = {label_key(p) for p in label_paths}
    uncounted, gone = sorted(present - counted), sorted(counted - present)
    if not (uncounted or gone):
        return
    parts = []
    if uncounted:
        parts.append(f'{len(uncounted)} of the {len(present)} source label(s) are not counted '
                     f'in it, e.g. {uncounted[0]!r}, so rare class sampling would never draw '
                     f'them')
    if gone:
        parts.append(f'it counts {len(gone)} label(s) that no source sample has, e.g. '
                     f'{gone[0]!r}')
    raise ValueError(f'{path} does not match the source dataset: {"; ".join(parts)}. The '
                     f'files changed after the class statistics were written; rerun {rerun}')


def label_key(path: str) -> str:
    """The key matching a statistics entry to a dataset sample: the label's base name.

    DAFormer's converters write paths relative to their own working directory, so only
    the base name is comparable across machines.
    """
    return osp.basename(str(path).replace('\\', '/'))
