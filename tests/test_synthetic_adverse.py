"""The generated adverse target (night and fog, ACDC's layout): files, labels against
cityscapesscripts' train ids, determinism, and what each condition does to the clear scene."""
import glob
import os.path as osp

import numpy as np
from cityscapesscripts.helpers.labels import id2label
from PIL import Image

from mmseg_iccld.datasets.synthetic import draw_layout, render
from mmseg_iccld.datasets.synthetic_adverse import (generate_adverse_benchmark, render_fog,
                                                    render_night)


def test_layout_counts_and_labels(tmp_path):
    root = generate_adverse_benchmark(str(tmp_path / 'acdc'), num_train=6, num_val=4,
                                      size=(96, 48))
    for condition, split, count in (('night', 'train', 3), ('fog', 'train', 3),
                                    ('night', 'val', 2), ('fog', 'val', 2)):
        images = sorted(glob.glob(osp.join(root, 'rgb_anon', condition, split, '*',
                                           '*_rgb_anon.png')))
        assert len(images) == count, (condition, split)
        for image in images:
            label_ids = image.replace('rgb_anon', 'gt', 1).replace('_rgb_anon.png',
                                                                   '_gt_labelIds.png')
            train_ids = label_ids.replace('_gt_labelIds.png', '_gt_labelTrainIds.png')
            ids = np.array(Image.open(label_ids))
            assert np.array(Image.open(image)).shape == (48, 96, 3) and ids.shape == (48, 96)
            expected = np.vectorize(lambda i: id2label[int(i)].trainId
                                    if 0 <= id2label[int(i)].trainId < 255 else 255)(ids)
            assert np.array_equal(np.array(Image.open(train_ids)), expected)


def test_the_same_arguments_give_the_same_files(tmp_path):
    a = generate_adverse_benchmark(str(tmp_path / 'a'), num_train=2, num_val=0, size=(64, 32))
    b = generate_adverse_benchmark(str(tmp_path / 'b'), num_train=2, num_val=0, size=(64, 32))
    files = sorted(glob.glob(osp.join(a, '**', '*.png'), recursive=True))
    assert len(files) == 6
    for path in files:
        other = osp.join(b, osp.relpath(path, a))
        assert np.array_equal(np.array(Image.open(path)), np.array(Image.open(other)))


def scene(seed: int = 3):
    rng = np.random.default_rng(seed)
    label, instance = draw_layout(rng, 256, 128, 1.0)
    return rng, label, instance, render(rng, label, instance, 1.0)


def test_night_is_dark_with_bright_light_sources():
    rng, label, instance, clear = scene()
    night = render_night(rng, clear, label, instance).astype(np.float32)
    assert night.mean() < 0.5 * clear.mean()
    assert night.max() >= 240  # the lamps and car lights glow


def test_fog_lowers_contrast_towards_the_horizon():
    rng, label, _, clear = scene()
    fog = render_fog(rng, clear, label).astype(np.float32)
    far, near = slice(30, 60), slice(100, 120)
    assert fog[far].std() < 0.5 * clear[far].astype(np.float32).std()
    assert fog[far].std() / clear[far].std() < fog[near].std() / clear[near].std()
