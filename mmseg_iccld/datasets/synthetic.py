"""A generated street-scene UDA benchmark: a GTA5-like source and a Cityscapes-like target.

Both domains draw the same kind of scene (sky, road in perspective, sidewalks, building,
vegetation and fence blocks beside it, cars, persons, poles with signs and lights) from a
seeded generator, in the dataset layouts and label ids of GTA5 and Cityscapes, so the real
converters and datasets run on it unchanged. The domain gap is controlled by ``gap``:

- source: flat, game-like rendering (one color per class or instance, mild shading);
- target: a shifted palette (some classes swap brightness order), per-class textures
  (window grids, tiles, foliage, clouds, asphalt grain), cast shadows, global gain and gamma,
  vignetting, blur, sensor noise, a lower horizon, smaller cars and an ego-vehicle band
  (ignored, like Cityscapes' car hood). Every effect scales with ``gap``; ``gap=0`` renders
  both domains with the same distribution.
"""
import os
import os.path as osp
from dataclasses import dataclass
from typing import Dict, List, Sequence, Tuple

import cv2
import numpy as np
from cityscapesscripts.helpers.labels import labels as _cityscapes_labels
from mmengine.utils import track_parallel_progress, track_progress
from PIL import Image

from .conversion import convert_cityscapes, convert_gta

# Cityscapes label ids (GTA5 uses the same)
EGO, ROAD, SIDEWALK, BUILDING, FENCE, POLE, LIGHT, SIGN = 1, 7, 8, 11, 13, 17, 19, 20
VEGETATION, TERRAIN, SKY, PERSON, CAR = 21, 22, 23, 24, 26
SCENE_IDS = (ROAD, SIDEWALK, BUILDING, FENCE, POLE, LIGHT, SIGN, VEGETATION, TERRAIN, SKY,
             PERSON, CAR)

# RGB per class: saturated, game-like source colors and a duller, shifted target palette.
# Poles swap their brightness order with the road: darker in the source, brighter in the target.
SOURCE_COLORS = {ROAD: (105, 100, 110), SIDEWALK: (175, 160, 150), BUILDING: (150, 120, 100),
                 FENCE: (160, 140, 110), POLE: (90, 90, 90), LIGHT: (40, 40, 40),
                 SIGN: (230, 200, 40), VEGETATION: (70, 140, 50), TERRAIN: (140, 170, 80),
                 SKY: (120, 170, 235), PERSON: (150, 60, 60), CAR: (60, 80, 160),
                 EGO: (30, 30, 30)}
TARGET_COLORS = {ROAD: (94, 90, 102), SIDEWALK: (161, 146, 144), BUILDING: (142, 123, 111),
                 FENCE: (152, 137, 116), POLE: (106, 105, 98), LIGHT: (48, 47, 43),
                 SIGN: (216, 192, 59), VEGETATION: (76, 128, 49), TERRAIN: (132, 156, 83),
                 SKY: (145, 181, 227), PERSON: (139, 71, 71), CAR: (68, 83, 144),
                 EGO: (30, 30, 30)}
# Instance colors of cars and persons, blended with the class color above.
INSTANCE_COLORS = np.array([(230, 230, 230), (30, 30, 35), (180, 30, 30), (40, 60, 170),
                            (150, 150, 155), (30, 100, 60), (200, 170, 60)], np.float32)


@dataclass(frozen=True)
class BenchmarkPaths:
    """Where a generated benchmark lives.

    Args:
        root: Benchmark root.
        gta_root: Source set in GTA5's layout (``images/``, ``labels/``).
        cityscapes_root: Target set in Cityscapes' layout (``leftImg8bit/``, ``gtFine/``).
    """

    root: str
    gta_root: str
    cityscapes_root: str


# scene layout


def _smooth_noise(rng: np.random.Generator, h: int, w: int, cell: float) -> np.ndarray:
    """Value noise: ``(h, w)`` float32, about unit variance, features ``cell`` pixels wide."""
    gh, gw = int(h / cell) + 2, int(w / cell) + 2
    grid = rng.standard_normal((gh, gw)).astype(np.float32)
    return cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC)


def draw_layout(rng: np.random.Generator, width: int, height: int,
                shift: float = 0.0) -> Tuple[np.ndarray, np.ndarray]:
    """Draw a random street scene as label ids and instance indices.

    Args:
        rng: Random generator (the only source of randomness).
        width: Image width W.
        height: Image height H.
        shift: Geometry shift towards the target domain, 0..1 (lower horizon, smaller cars,
            an ego-vehicle band at the bottom).

    Returns:
        ``(H, W)`` uint8 Cityscapes label ids and ``(H, W)`` int32 instance indices (every
        building block, car and person has its own index; 0 elsewhere).
    """
    H, W = height, width
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    label = np.full((H, W), SKY, np.uint8)
    instance = np.zeros((H, W), np.int32)
    horizon = H * (rng.uniform(0.36, 0.48) + 0.06 * shift)
    vx = W * rng.uniform(0.35, 0.65)
    road_hw = W * rng.uniform(0.28, 0.45)  # road half width at the bottom row
    walk = W * rng.uniform(0.10, 0.20, size=2)  # left/right sidewalk width at the bottom
    depth = np.clip((yy - horizon) / (H - horizon), 0, None)  # 0 at the horizon, 1 at bottom
    below = yy >= horizon
    label[below & (np.abs(xx - vx) <= road_hw * depth)] = ROAD
    next_instance = 1

    for side, sign in ((0, -1.0), (1, 1.0)):
        outer = road_hw + walk[side]  # outer sidewalk edge at the bottom
        lateral = sign * (xx - vx)  # distance from the vanishing column on this side
        on_side = lateral > 0
        walk_mask = below & on_side & (lateral > road_hw * depth) & (lateral <= outer * depth)
        label[walk_mask] = SIDEWALK
        # Facades stand on the outer sidewalk edge: below the contact line lies the street,
        # above it the facade up to a top line that also converges on the vanishing point.
        contact = horizon + lateral * (H - horizon) / outer
        edges = np.sort(rng.uniform(0, 1, size=rng.integers(2, 6))) ** 0.7
        bounds = np.concatenate([[0.0], edges, [1.0]]) * (vx if side == 0 else W - vx)
        with_fence = rng.random() < 0.3
        for lo, hi in zip(bounds[:-1], bounds[1:]):
            kind = rng.choice(3, p=[0.6, 0.3, 0.1])  # building, vegetation, terrain
            block = on_side & (lateral >= lo) & (lateral < hi) & (yy < contact)
            if kind == 0:
                top = horizon - rng.uniform(0.25, 1.0) * lateral
                label[block & (yy >= top)] = BUILDING
                instance[block & (yy >= top)] = next_instance
                next_instance += 1
            elif kind == 1:
                bumps = 6 * _smooth_noise(rng, 1, W, 6)[0]
                top = horizon - rng.uniform(0.2, 0.7) * lateral + bumps
                label[block & (yy >= top)] = VEGETATION
            else:
                top = horizon + 0.02 * H
                label[block & (yy >= top)] = TERRAIN
        if with_fence:
            fence_top = contact - 0.25 * (contact - horizon)
            fence = on_side & (yy < contact) & (yy >= fence_top) & (
                lateral < 0.9 * (vx if side == 0 else W - vx))
            label[fence], instance[fence] = FENCE, 0

    objects = []
    for _ in range(rng.integers(0, 4)):
        objects.append(('car', rng.uniform(0.2, 1.0), rng.uniform(-0.75, 0.75)))
    for _ in range(rng.integers(0, 3)):
        objects.append(('person', rng.uniform(0.25, 1.0), rng.integers(0, 2)))
    for _ in range(rng.integers(0, 3)):
        objects.append(('pole', rng.uniform(0.15, 0.9), rng.integers(0, 2)))
    for kind, t, where in sorted(objects, key=lambda o: o[1]):  # far to near
        bottom = horizon + t * (H - horizon)
        scale = road_hw * t
        if kind == 'car':
            w = scale * rng.uniform(0.55, 0.75) * (1 - 0.15 * shift)
            h = w * rng.uniform(0.55, 0.75)
            cx = vx + where * road_hw * t
            body = (np.abs(xx - cx) <= w / 2) & (yy < bottom) & (yy >= bottom - 0.6 * h)
            cabin = (np.abs(xx - cx) <= 0.35 * w) & (yy < bottom - 0.6 * h) & (yy >= bottom - h)
            mask = body | cabin
            label[mask], instance[mask] = CAR, next_instance
            next_instance += 1
        elif kind == 'person':
            side_sign = -1.0 if where == 0 else 1.0
            lateral = (road_hw + rng.uniform(0.2, 0.8) * walk[where]) * t
            cx = vx + side_sign * lateral
            h = 0.6 * scale * rng.uniform(0.85, 1.15)
            body = (np.abs(xx - cx) <= 0.13 * h) & (yy < bottom) & (yy >= bottom - 0.84 * h)
            head = (xx - cx) ** 2 + (yy - (bottom - 0.92 * h)) ** 2 <= (0.09 * h) ** 2
            mask = body | head
            label[mask], instance[mask] = PERSON, next_instance
            next_instance += 1
        else:
            side_sign = -1.0 if where == 0 else 1.0
            cx = vx + side_sign * (road_hw + 0.85 * walk[where]) * t
            h = 1.5 * scale
            half = max(0.6, 0.02 * scale)
            pole = (np.abs(xx - cx) <= half) & (yy < bottom) & (yy >= bottom - h)
            label[pole], instance[pole] = POLE, 0
            top = bottom - h
            size = max(1.5, 0.12 * scale)
            if rng.random() < 0.6:
                sign_mask = (np.abs(xx - cx) <= size) & (np.abs(yy - top - size) <= size)
                label[sign_mask], instance[sign_mask] = SIGN, 0
            if rng.random() < 0.35:
                ly = top + 2.5 * size
                light = (np.abs(xx - cx) <= 0.5 * size) & (np.abs(yy - ly - size) <= size)
                label[light], instance[light] = LIGHT, 0
    if shift > 0:
        hood = H * (1 - 0.06 * shift) + 0.02 * H * ((xx - W / 2) / (W / 2)) ** 2
        label[yy >= hood] = EGO
        instance[yy >= hood] = 0
    return label, instance


# rendering


def _palette(gap: float) -> Dict[int, np.ndarray]:
    return {k: np.asarray(SOURCE_COLORS[k], np.float32) +
            gap * (np.asarray(TARGET_COLORS[k], np.float32) - np.asarray(SOURCE_COLORS[k]))
            for k in SOURCE_COLORS}


def render(rng: np.random.Generator, label: np.ndarray, instance: np.ndarray,
           gap: float = 0.0) -> np.ndarray:
    """Render an image of a scene layout.

    Args:
        rng: Random generator.
        label: ``(H, W)`` label ids from :func:`draw_layout`.
        instance: ``(H, W)`` instance indices from :func:`draw_layout`.
        gap: Domain gap strength: 0 is the flat source rendering, 1 the default target.

    Returns:
        ``(H, W, 3)`` uint8 RGB image.
    """
    H, W = label.shape
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    palette = _palette(gap)
    img = np.zeros((H, W, 3), np.float32)
    for k, color in palette.items():
        img[label == k] = color
    # Instance colors (cars, persons) and per-block brightness (buildings), both domains.
    for idx in range(1, int(instance.max()) + 1):
        mask = instance == idx
        if not mask.any():
            continue
        cls = int(label[mask][0])
        if cls in (CAR, PERSON):
            paint = INSTANCE_COLORS[rng.integers(len(INSTANCE_COLORS))]
            paint = paint + min(0.22 * gap, 1.0) * (paint.mean() - paint)  # duller in target
            img[mask] = 0.6 * paint + 0.4 * img[mask]
        else:
            img[mask] *= rng.uniform(0.85, 1.15)
        if cls == CAR:  # dark windows on the upper third
            rows = np.nonzero(mask.any(axis=1))[0]
            top = rows.min() + (rows.max() - rows.min()) * 0.35
            img[mask & (yy < top)] *= 0.55
    # Mild shading: ground darker far away, sky brighter near the horizon.
    rows = yy / H
    ground = np.isin(label, (ROAD, SIDEWALK, TERRAIN))
    img[ground] *= (0.85 + 0.2 * rows[ground])[:, None]
    img[label == SKY] *= (0.9 + 0.25 * rows[label == SKY])[:, None]

    if gap > 0:
        img = _target_effects(rng, img, label, instance, gap, xx, yy)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def _target_effects(rng: np.random.Generator, img: np.ndarray, label: np.ndarray,
                    instance: np.ndarray, gap: float, xx: np.ndarray,
                    yy: np.ndarray) -> np.ndarray:
    """Textures, shadows, lighting, blur and noise of the target domain, scaled by ``gap``."""
    H, W = label.shape
    u = W / 256  # texture sizes are set for 256-pixel-wide images
    fine = rng.standard_normal((H, W)).astype(np.float32)
    textures = {
        ROAD: 3 * fine + 3 * _smooth_noise(rng, H, W, 12 * u),
        SIDEWALK: -10.0 * ((xx % (7 * u) < u) | (yy % (5 * u) < u)),
        VEGETATION: 10 * _smooth_noise(rng, H, W, 3 * u) + 4 * fine,
        TERRAIN: 7 * _smooth_noise(rng, H, W, 4 * u),
        SKY: 8 * np.abs(_smooth_noise(rng, H, W, 20 * u)),
        FENCE: -12.0 * (xx % (4 * u) < u),
    }
    for k, texture in textures.items():
        mask = label == k
        img[mask] += gap * texture[mask][:, None]
    # Window grid per building block, offset per block so blocks do not line up.
    windows = np.zeros((H, W), bool)
    for idx in np.unique(instance[label == BUILDING]):
        ox, oy = rng.uniform(0, 8 * u, size=2)
        grid = ((xx + ox) % (8 * u) < 4 * u) & ((yy + oy) % (9 * u) < 5 * u)
        windows |= (instance == idx) & (label == BUILDING) & grid
    img[windows] *= 1 - min(0.17 * gap, 0.9)

    # Cast shadows: dark bands across the ground.
    ground = np.isin(label, (ROAD, SIDEWALK, TERRAIN, CAR, PERSON))
    for _ in range(rng.integers(0, 3)):
        x0, slope, width = rng.uniform(0, W), rng.uniform(-1.5, 1.5), rng.uniform(0.05, 0.2) * W
        band = np.abs(xx - (x0 + slope * (yy - H))) < width / 2
        img[ground & band] *= 1 - min(0.17 * gap, 0.9)
    # Global lighting: gain, gamma, vignetting.
    gain = max(0.1, 1 + gap * rng.uniform(-0.08, 0.045))
    gamma = 1 + gap * rng.uniform(-0.03, 0.11)
    img = 255 * (np.clip(img * gain, 0, 255) / 255) ** gamma
    r2 = ((xx - W / 2) / (W / 2)) ** 2 + ((yy - H / 2) / (H / 2)) ** 2
    img *= np.clip(1 - 0.066 * gap * r2, 0.1, 1)[:, :, None]
    sigma = 0.33 * gap
    if sigma > 0.05:
        img = cv2.GaussianBlur(img, (0, 0), sigma)
    img += gap * rng.normal(0, 1.65, img.shape).astype(np.float32)
    return img


# files


def _label_palette() -> List[int]:
    """Cityscapes' color of every label id, as a flat 256 x RGB PIL palette."""
    palette = np.zeros((256, 3), np.uint8)
    for lbl in _cityscapes_labels:
        if 0 <= lbl.id < 256:
            palette[lbl.id] = lbl.color
    return palette.flatten().tolist()


def _write_sample(task: Tuple[str, str, str, int, Tuple[int, int], float, int]) -> None:
    """Draw, render and write one sample: ``(domain, image path, label path, seed index,
    (W, H), gap, seed)``; source labels are palette PNGs (GTA5), target labels grayscale
    label-id PNGs (Cityscapes)."""
    domain, img_path, label_path, index, (width, height), gap, seed = task
    domain_code = 0 if domain == 'source' else 1
    rng = np.random.default_rng([seed, domain_code, index])
    shift = 0.0 if domain == 'source' else min(gap, 1.0)
    label, instance = draw_layout(rng, width, height, shift)
    img = render(rng, label, instance, gap if domain == 'target' else 0.0)
    os.makedirs(osp.dirname(img_path), exist_ok=True)
    os.makedirs(osp.dirname(label_path), exist_ok=True)
    Image.fromarray(img).save(img_path)
    label_img = Image.fromarray(label)
    if domain == 'source':
        label_img.putpalette(_label_palette())
    label_img.save(label_path)


def benchmark_tasks(root: str, num_source: int = 200, num_target_train: int = 200,
                    num_target_val: int = 50, source_size: Sequence[int] = (256, 144),
                    target_size: Sequence[int] = (256, 128), gap: float = 1.0,
                    seed: int = 0) -> List[tuple]:
    """The samples of a benchmark, one task per image for :func:`_write_sample`.

    Target images are spread over two train cities and one val city, named like Cityscapes
    (``<city>_<sequence>_000019``). Each image's randomness depends only on ``seed``, its
    domain and its index, so counts can change without changing the other images.

    Args: see :func:`generate_benchmark`.

    Returns:
        One tuple per image.
    """
    gta, cs = osp.join(root, 'gta'), osp.join(root, 'cityscapes')
    tasks = [('source', osp.join(gta, 'images', f'{i:05d}.png'),
              osp.join(gta, 'labels', f'{i:05d}.png'), i, tuple(source_size), gap, seed)
             for i in range(num_source)]
    splits = [('train', ('northfield', 'southport'), num_target_train, 0),
              ('val', ('eastbrook', ), num_target_val, num_target_train)]
    for split, cities, count, offset in splits:
        for i in range(count):
            city = cities[i % len(cities)]
            stem = f'{city}_{i // len(cities):06d}_000019'
            tasks.append(('target',
                          osp.join(cs, 'leftImg8bit', split, city, f'{stem}_leftImg8bit.png'),
                          osp.join(cs, 'gtFine', split, city, f'{stem}_gtFine_labelIds.png'),
                          offset + i, tuple(target_size), gap, seed))
    return tasks


def generate_benchmark(root: str = 'data/synthetic', num_source: int = 200,
                       num_target_train: int = 200, num_target_val: int = 50,
                       source_size: Sequence[int] = (256, 144),
                       target_size: Sequence[int] = (256, 128), gap: float = 1.0,
                       seed: int = 0, nproc: int = 1, convert: bool = True) -> BenchmarkPaths:
    """Generate the benchmark and (optionally) run the GTA5 and Cityscapes converters on it.

    Args:
        root: Output folder; ``gta/`` and ``cityscapes/`` are written inside.
        num_source: Number of source images.
        num_target_train: Number of target training images.
        num_target_val: Number of target validation images.
        source_size: Source image size ``(W, H)``.
        target_size: Target image size ``(W, H)``.
        gap: Domain gap strength (0: both domains rendered alike; 1: default).
        seed: Random seed; the same seed gives the same files.
        nproc: Number of worker processes.
        convert: Run the converters afterwards (train ids and class statistics).

    Returns:
        The benchmark's paths.
    """
    if gap < 0:
        raise ValueError(f'gap must be >= 0, got {gap}')
    for name, size in (('source_size', source_size), ('target_size', target_size)):
        if len(size) != 2 or min(size) < 32:
            raise ValueError(f'{name} must be (W, H) with both >= 32, got {size}')
    tasks = benchmark_tasks(root, num_source, num_target_train, num_target_val, source_size,
                            target_size, gap, seed)
    if nproc > 1:
        track_parallel_progress(_write_sample, tasks, nproc, chunksize=8)
    else:
        track_progress(_write_sample, tasks)
    paths = BenchmarkPaths(root, osp.join(root, 'gta'), osp.join(root, 'cityscapes'))
    if convert:
        splits = [s for s, n in (('train', num_target_train), ('val', num_target_val)) if n]
        convert_gta(paths.gta_root, nproc=nproc)
        convert_cityscapes(paths.cityscapes_root, nproc=nproc, splits=splits,
                           stats_split='train' if num_target_train else None)
    return paths
