"""A generated clear-to-adverse benchmark: the Cityscapes-like target of
:mod:`~mmseg_iccld.datasets.synthetic` as the labelled source, and new scenes of the same
kind at night and in fog as the target, in ACDC's layout.

The scenes come from :func:`~.synthetic.draw_layout` and :func:`~.synthetic.render` (the
clear, Cityscapes-like rendering), and the adverse conditions are rendered on top:

- night: a dark, bluish, low-gain image; street lights (the traffic-light class and the
  tops of poles) and car head- and tail-lights as light sources with glow, glare around the
  bright parts, strong sensor noise and a little blur;
- fog: airlight blended in by distance (the rows above and near the horizon are far), which
  lowers contrast towards the horizon, a little blur and noise.

Layout (ACDC's, read in place by ``ACDCDataset``)::

    <root>/rgb_anon/<condition>/<split>/<sequence>/<sequence>_frame_<index>_rgb_anon.png
    <root>/gt/<condition>/<split>/<sequence>/<sequence>_frame_<index>_gt_labelTrainIds.png
    <root>/gt/<condition>/<split>/<sequence>/<sequence>_frame_<index>_gt_labelIds.png
"""
import os
import os.path as osp
from typing import List, Sequence, Tuple

import cv2
import numpy as np
from mmengine.utils import track_parallel_progress, track_progress
from PIL import Image

from .label_tables import CITYSCAPES_TABLE
from .synthetic import CAR, LIGHT, POLE, ROAD, SIDEWALK, SKY, draw_layout, render

CONDITIONS = ('night', 'fog')
# the domain code of the adverse scenes' seeds (the clear benchmark uses 0 and 1)
ADVERSE_DOMAIN = 2


def _glow(points: np.ndarray, sigma: float) -> np.ndarray:
    """A soft halo around the non-zero pixels of ``points`` ((H, W) float32)."""
    return cv2.GaussianBlur(points, (0, 0), sigma)


def render_night(rng: np.random.Generator, img: np.ndarray, label: np.ndarray,
                 instance: np.ndarray) -> np.ndarray:
    """The clear rendering ``img`` ((H, W, 3) uint8) at night: darkness with light sources.

    Returns:
        (H, W, 3) uint8.
    """
    H, W = label.shape
    u = W / 256
    out = img.astype(np.float32) / 255
    gain = rng.uniform(0.4, 0.55)
    out = gain * out**rng.uniform(1.1, 1.25) * np.array([0.8, 0.9, 1.15], np.float32)
    out[label == SKY] = np.array([0.02, 0.025, 0.05], np.float32)
    # light sources: street lights, and the front or back lights of every car
    lamps = np.zeros((H, W), np.float32)
    lamps[label == LIGHT] = 1
    for x in np.unique(np.nonzero(label == POLE)[1])[::max(1, int(3 * u))]:
        lamps[np.nonzero(label[:, x] == POLE)[0].min(), x] = 1  # a lamp on each pole's top
    red = np.zeros((H, W), np.float32)
    for idx in np.unique(instance[label == CAR]):
        ys, xs = np.nonzero((instance == idx) & (label == CAR))
        row = int(ys.max() - 0.3 * (ys.max() - ys.min()))
        lights = lamps if rng.random() < 0.5 else red  # facing us, or driving away
        for x in (0.15, 0.85):
            lights[row, int(xs.min() + x * (xs.max() - xs.min()))] = 1
    warm = np.array([1.0, 0.85, 0.55], np.float32)
    # what the lamps light up around them, then their own halos
    lit = np.clip(_glow(lamps, 14 * u) * 600 * u * u, 0, 4)[:, :, None]
    out *= 1 + lit * warm
    halo = _glow(lamps, 1.5 * u)[:, :, None] * 40 + _glow(lamps, 8 * u)[:, :, None] * 12
    out += halo * warm + (_glow(red, 1.5 * u) * 30 + _glow(red, 6 * u) * 8)[:, :, None] * \
        np.array([1.0, 0.1, 0.1], np.float32)
    # glare: the bright parts bloom
    bright = np.clip(out - 0.6, 0, None)
    out += 0.6 * cv2.GaussianBlur(bright, (0, 0), 4 * u)
    out = cv2.GaussianBlur(out, (0, 0), 0.6)
    out += rng.normal(0, 0.02, out.shape).astype(np.float32)  # sensor noise
    out += rng.normal(0, 0.01, (H, W, 1)).astype(np.float32)
    return np.clip(np.rint(out * 255), 0, 255).astype(np.uint8)


def render_fog(rng: np.random.Generator, img: np.ndarray, label: np.ndarray) -> np.ndarray:
    """The clear rendering ``img`` ((H, W, 3) uint8) in fog: airlight by distance.

    Returns:
        (H, W, 3) uint8.
    """
    H, W = label.shape
    out = img.astype(np.float32)
    # distance: far at and above the horizon (the first row of road or sidewalk), near at
    # the bottom
    street_rows = np.nonzero(np.isin(label, (ROAD, SIDEWALK)).any(axis=1))[0]
    horizon = float(street_rows.min()) if len(street_rows) else 0.45 * H
    rows = np.arange(H, dtype=np.float32)[:, None]
    distance = np.clip(1 - (rows - horizon) / max(H - horizon, 1), 0, 1)
    distance = np.broadcast_to(distance, (H, W)).copy()
    distance[label == SKY] = 1
    transmission = np.exp(-rng.uniform(0.8, 1.6) * distance)[:, :, None]
    airlight = rng.uniform(180, 215) * np.array([1.0, 1.0, 1.02], np.float32)
    out = out * transmission + airlight * (1 - transmission)
    out = cv2.GaussianBlur(out, (0, 0), 0.8)
    out += rng.normal(0, 2.0, out.shape).astype(np.float32)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def _write_adverse_sample(task: Tuple[str, str, str, int, Tuple[int, int], float, int]) -> None:
    """Draw, render and write one adverse sample: ``(condition, image path, label stem,
    index, (W, H), gap, seed)``."""
    condition, img_path, label_stem, index, (width, height), gap, seed = task
    rng = np.random.default_rng([seed, ADVERSE_DOMAIN, CONDITIONS.index(condition), index])
    label, instance = draw_layout(rng, width, height, min(gap, 1.0))
    clear = render(rng, label, instance, gap)
    if condition == 'night':
        img = render_night(rng, clear, label, instance)
    else:
        img = render_fog(rng, clear, label)
    os.makedirs(osp.dirname(img_path), exist_ok=True)
    os.makedirs(osp.dirname(label_stem), exist_ok=True)
    Image.fromarray(img).save(img_path)
    Image.fromarray(label).save(f'{label_stem}_gt_labelIds.png')
    Image.fromarray(CITYSCAPES_TABLE.to_train_ids(label)).save(f'{label_stem}_gt_labelTrainIds.png')


def adverse_tasks(root: str, num_train: int = 200, num_val: int = 50,
                  size: Sequence[int] = (256, 128), conditions: Sequence[str] = CONDITIONS,
                  gap: float = 1.0, seed: int = 0) -> List[tuple]:
    """One task per image for :func:`_write_adverse_sample`, the counts split evenly over
    ``conditions``, eight frames a sequence (``GP<condition initial><number>``).

    Args: see :func:`generate_adverse_benchmark`.

    Returns:
        One tuple per image.
    """
    unknown = set(conditions) - set(CONDITIONS)
    if unknown or not conditions:
        raise ValueError(f'conditions must be some of {CONDITIONS}, got {list(conditions)}')
    tasks = []
    # sequences never span splits: the val split's are numbered from 1000
    for split, count, offset, first in (('train', num_train, 0, 0),
                                        ('val', num_val, num_train, 1000)):
        for i in range(count):
            condition = conditions[i % len(conditions)]
            k = i // len(conditions)
            sequence = f'GP{condition[0].upper()}{first + k // 8:04d}'
            stem = f'{sequence}_frame_{k % 8:06d}'
            folder = osp.join(condition, split, sequence)
            tasks.append((condition, osp.join(root, 'rgb_anon', folder, f'{stem}_rgb_anon.png'),
                          osp.join(root, 'gt', folder, stem), offset + k, tuple(size), gap,
                          seed))
    return tasks


def generate_adverse_benchmark(root: str = 'data/synthetic_adverse/acdc', num_train: int = 200,
                               num_val: int = 50, size: Sequence[int] = (256, 128),
                               conditions: Sequence[str] = CONDITIONS, gap: float = 1.0,
                               seed: int = 0, nproc: int = 1) -> str:
    """Write the adverse target in ACDC's layout (train and val, labelled).

    Args:
        root: Output folder (``rgb_anon/`` and ``gt/`` are written inside).
        num_train: Target training images, over all conditions.
        num_val: Target validation images, over all conditions.
        size: Image size ``(W, H)``.
        conditions: Some of ``('night', 'fog')``.
        gap: The clear rendering's domain gap (1: the Cityscapes-like target's).
        seed: Random seed; the same arguments give the same files.
        nproc: Number of worker processes.

    Returns:
        ``root``.
    """
    if len(size) != 2 or min(size) < 32:
        raise ValueError(f'size must be (W, H) with both >= 32, got {size}')
    tasks = adverse_tasks(root, num_train, num_val, size, tuple(conditions), gap, seed)
    if nproc > 1:
        track_parallel_progress(_write_adverse_sample, tasks, nproc, chunksize=8)
    else:
        track_progress(_write_adverse_sample, tasks)
    return root
