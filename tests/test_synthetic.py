"""The generated benchmark: layout, determinism, scene statistics and a measured domain gap."""
import glob
import hashlib
import os.path as osp
import runpy

import numpy as np
import pytest
from PIL import Image

from mmseg_iccld.datasets.label_tables import CITYSCAPES_TABLE
from mmseg_iccld.datasets.synthetic import (SCENE_IDS, draw_layout, generate_benchmark,
                                            render)

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
# train ids
ROAD, SIDEWALK, BUILDING, POLE, LIGHT, SIGN, VEGETATION, SKY, PERSON, CAR = (
    0, 1, 2, 5, 6, 7, 8, 10, 11, 13)
STUFF = (ROAD, SIDEWALK, BUILDING, VEGETATION, SKY)


def digest(root: str) -> dict:
    files = sorted(glob.glob(osp.join(root, '**', '*.png'), recursive=True))
    return {osp.relpath(f, root): hashlib.sha256(open(f, 'rb').read()).hexdigest()
            for f in files}


def test_layout_and_file_formats(synthetic_benchmark):
    gta, cs = synthetic_benchmark.gta_root, synthetic_benchmark.cityscapes_root
    assert sorted(osp.basename(p) for p in glob.glob(osp.join(gta, 'images', '*.png'))) == [
        f'{i:05d}.png' for i in range(12)]
    image = Image.open(osp.join(gta, 'images', '00000.png'))
    label = Image.open(osp.join(gta, 'labels', '00000.png'))
    assert (image.mode, image.size, label.mode, label.size) == ('RGB', (256, 144), 'P',
                                                                (256, 144))
    assert set(np.unique(np.asarray(label))) <= set(SCENE_IDS)
    stem = 'northfield_000000_000019'
    image = Image.open(osp.join(cs, 'leftImg8bit', 'train', 'northfield',
                                f'{stem}_leftImg8bit.png'))
    label = Image.open(osp.join(cs, 'gtFine', 'train', 'northfield',
                                f'{stem}_gtFine_labelIds.png'))
    assert (image.mode, image.size, label.mode, label.size) == ('RGB', (256, 128), 'L',
                                                                (256, 128))
    # the target's ego-vehicle band (label id 1) is ignored after conversion
    assert (np.asarray(label)[-1] == 1).all()
    assert (np.asarray(Image.open(osp.join(cs, 'gtFine', 'train', 'northfield',
                                           f'{stem}_gtFine_labelTrainIds.png')))[-1]
            == 255).all()
    assert len(glob.glob(osp.join(cs, 'leftImg8bit', 'train', '*', '*.png'))) == 8
    assert sorted(osp.basename(p) for p in glob.glob(osp.join(cs, 'gtFine', 'val', '*',
                                                              '*_labelIds.png'))) == [
        f'eastbrook_{i:06d}_000019_gtFine_labelIds.png' for i in range(4)]
    for root in (gta, cs):
        for name in ('sample_class_stats.json', 'sample_class_stats_dict.json',
                     'samples_with_class.json'):
            assert osp.isfile(osp.join(root, name))


def test_deterministic_for_a_seed(tmp_path):
    kwargs = dict(num_source=3, num_target_train=2, num_target_val=1, convert=False)
    a = digest(generate_benchmark(str(tmp_path / 'a'), seed=3, **kwargs).root)
    b = digest(generate_benchmark(str(tmp_path / 'b'), seed=3, **kwargs).root)
    c = digest(generate_benchmark(str(tmp_path / 'c'), seed=4, **kwargs).root)
    assert len(a) == 12 and a == b
    assert all(a[k] != c[k] for k in a)
    # an image depends on the seed and its index only, not on how many are generated
    fewer = digest(generate_benchmark(str(tmp_path / 'd'), seed=3, num_source=2,
                                      num_target_train=2, num_target_val=1,
                                      convert=False).root)
    assert fewer == {k: v for k, v in a.items() if not k.startswith('gta/images/00002') and
                     not k.startswith('gta/labels/00002')}


def layouts(n: int, shift: float = 0.0, size=(256, 144)) -> np.ndarray:
    """``(n, H, W)`` train ids of ``n`` scene layouts."""
    out = []
    for i in range(n):
        label, _ = draw_layout(np.random.default_rng([0, 0, i]), *size, shift)
        out.append(CITYSCAPES_TABLE.to_train_ids(label))
    return np.stack(out)


def test_scene_classes_and_geometry():
    labels = layouts(40)
    present = set(np.unique(labels)) - {255}
    assert {ROAD, SIDEWALK, BUILDING, POLE, LIGHT, SIGN, VEGETATION, SKY, PERSON,
            CAR} <= present
    rows = np.arange(labels.shape[1])[None, :, None]
    for label in labels:
        # sky above the road; the road reaches the bottom row; no ground at the top row
        assert (rows[0] * (label == SKY)).sum() / (label == SKY).sum() < \
            (rows[0] * (label == ROAD)).sum() / (label == ROAD).sum()
        assert (label[-1] == ROAD).any()
        assert not np.isin(label[0], (ROAD, SIDEWALK)).any()
    share = np.bincount(labels.ravel(), minlength=256)[:19] / labels.size
    for big in (ROAD, BUILDING, SKY):
        assert share[big] > 0.1
    # rare classes: present, but below 2% of the pixels, so rare class sampling matters
    for rare in (POLE, LIGHT, SIGN, PERSON):
        assert 0 < share[rare] < 0.02
    assert share[POLE] < share[CAR] < share[ROAD]


def rendered(domain: int, gap: float, n: int, size) -> tuple:
    """Pixels ``(N, 3)`` and train ids ``(N, )`` of ``n`` images rendered as
    ``_write_sample`` renders them (domain 0 source, 1 target)."""
    pixels, labels = [], []
    for i in range(n):
        rng = np.random.default_rng([0, domain, i])
        label, instance = draw_layout(rng, *size, min(gap, 1.0) if domain else 0.0)
        pixels.append(render(rng, label, instance, gap if domain else 0.0).reshape(-1, 3))
        labels.append(CITYSCAPES_TABLE.to_train_ids(label).ravel())
    return np.concatenate(pixels).astype(np.float64), np.concatenate(labels)


def class_means(pixels: np.ndarray, labels: np.ndarray) -> dict:
    return {c: pixels[labels == c].mean(0) for c in range(19) if (labels == c).any()}


def nearest_mean_accuracy(pixels: np.ndarray, labels: np.ndarray, means: dict) -> float:
    classes = sorted(means)
    centers = np.stack([means[c] for c in classes])
    keep = labels < 19
    dist = ((pixels[keep][::3, None] - centers[None]) ** 2).sum(-1)
    return float((np.array(classes)[dist.argmin(1)] == labels[keep][::3]).mean())


@pytest.fixture(scope='module')
def domains():
    out = {}
    for gap in (0.0, 1.0):
        src_pixels, src_labels = rendered(0, gap, 20, (256, 144))
        split = 12 * 256 * 144  # fit on 12 source images, test on the other 8
        out[gap] = dict(fit=(src_pixels[:split], src_labels[:split]),
                        held_out=(src_pixels[split:], src_labels[split:]),
                        target=rendered(1, gap, 20, (256, 128)))
    return out


def test_domain_gap_shifts_class_colors(domains):
    """At gap 1 the mean colours of road, sidewalk, building, vegetation and sky differ
    between domains by 20 or more RGB units (L2; 22 to 58 measured, mean about 33); at gap 0 by
    less than 10 (what remains is sampling noise)."""
    for gap, lo, hi in ((1.0, 20.0, None), (0.0, None, 10.0)):
        source = class_means(*domains[gap]['fit'])
        target = class_means(*domains[gap]['target'])
        distance = {c: float(np.linalg.norm(source[c] - target[c])) for c in STUFF}
        if lo is not None:
            assert min(distance.values()) >= lo, distance
            assert np.mean(list(distance.values())) >= 25, distance
        if hi is not None:
            assert max(distance.values()) < hi, distance
    # poles are darker than the road in the source and brighter in the target
    source = class_means(*domains[1.0]['fit'])
    target = class_means(*domains[1.0]['target'])
    assert source[POLE].mean() < source[ROAD].mean() - 10
    assert target[POLE].mean() > target[ROAD].mean()


def test_source_colour_classifier_loses_accuracy_only_with_a_gap(domains):
    """A nearest-class-mean colour classifier fitted on the source: at gap 1 it loses more
    than 15 points of pixel accuracy on the target (about 25 measured) but stays far above
    chance; at gap 0 it does as well on the target as on held-out source images."""
    for gap in (0.0, 1.0):
        means = class_means(*domains[gap]['fit'])
        source_acc = nearest_mean_accuracy(*domains[gap]['held_out'], means)
        target_acc = nearest_mean_accuracy(*domains[gap]['target'], means)
        if gap == 0.0:
            assert abs(source_acc - target_acc) < 0.1, (source_acc, target_acc)
        else:
            assert source_acc - target_acc > 0.15, (source_acc, target_acc)
            assert target_acc > 0.35, target_acc


def test_invalid_arguments(tmp_path):
    with pytest.raises(ValueError, match='gap must be >= 0'):
        generate_benchmark(str(tmp_path), gap=-0.5, convert=False)
    with pytest.raises(ValueError, match='source_size must be'):
        generate_benchmark(str(tmp_path), source_size=(16, 9), convert=False)


def test_cli(tmp_path, monkeypatch):
    cli = runpy.run_path(osp.join(REPO, 'tools/make_synthetic_uda.py'), run_name='cli')
    out = str(tmp_path / 'bench')
    monkeypatch.setattr('sys.argv', [
        'make_synthetic_uda.py', '--out', out, '--num-source', '2', '--num-target-train', '2',
        '--num-target-val', '1', '--source-size', '64', '36', '--target-size', '64', '32',
        '--seed', '1', '--gap', '0.5', '--nproc', '1'])
    assert cli['main']() == 0
    assert Image.open(osp.join(out, 'gta', 'images', '00001.png')).size == (64, 36)
    assert osp.isfile(osp.join(out, 'gta', 'labels', '00001_labelTrainIds.png'))
    assert osp.isfile(osp.join(out, 'cityscapes', 'samples_with_class.json'))
