"""Listing a dataset as training builds it: a symlink loop in an image folder is skipped with
a note (not followed until ELOOP), a symlinked folder is listed by the converter and the
dataset alike, and a split file (``ann_file``) that is missing or empty is named."""
import copy
import glob
import os
import os.path as osp
import shutil

import pytest
from mmengine.config import Config
from mmseg.registry import DATASETS
from mmseg.utils import register_all_modules

import mmseg_iccld  # noqa: F401  (registers datasets and transforms)
from mmseg_iccld.datasets.conversion import convert_gta
from test_reliability_training import run_train

register_all_modules(init_default_scope=True)
REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))


def training_dataset_cfg(root) -> dict:
    """The training dataset of the synthetic UDA config (rare class sampling on) on ``root``."""
    cfg = Config.fromfile(osp.join(REPO, 'configs/_base_/datasets/uda_synthetic.py'))
    dataset = copy.deepcopy(cfg.train_dataloader.dataset)
    dataset.source.data_root = str(root / 'gta')
    dataset.target.data_root = str(root / 'cityscapes')
    return dataset


def img_paths(dataset) -> list:
    return [dataset.get_data_info(i)['img_path'] for i in range(len(dataset))]


# symlink loops


def test_a_loop_in_the_source_images_is_skipped_with_a_note(bench, notes):
    images = str(bench / 'gta' / 'images')
    expected = sorted(glob.glob(osp.join(images, '*.png')))
    os.symlink('.', osp.join(images, 'loop'))
    dataset = DATASETS.build(training_dataset_cfg(bench))
    assert img_paths(dataset.source) == expected
    assert notes == [f'{images}/loop: symlink loop skipped (it leads back to {images}, which '
                     f'holds it)']
    assert dataset[0]['inputs'].shape == (3, 128, 128)


def test_a_loop_in_the_target_images_is_skipped_with_a_note(bench, notes):
    train = str(bench / 'cityscapes' / 'leftImg8bit' / 'train')
    expected = sorted(glob.glob(osp.join(train, '*', '*_leftImg8bit.png')))
    city = sorted(os.listdir(train))[0]
    os.symlink('..', osp.join(train, city, 'up'))
    dataset = DATASETS.build(training_dataset_cfg(bench))
    assert img_paths(dataset.target) == expected
    assert notes == [f'{train}/{city}/up: symlink loop skipped (it leads back to {train}, '
                     f'which holds it)']


def test_a_loop_in_the_val_images_is_skipped_by_mmsegs_own_dataset(bench, notes):
    """The val and test splits are mmseg's CityscapesDataset, which lists through mmengine's
    storage backend: the project's local backend skips the loop there too."""
    val = str(bench / 'cityscapes' / 'leftImg8bit' / 'val')
    expected = sorted(glob.glob(osp.join(val, '*', '*_leftImg8bit.png')))
    city = sorted(os.listdir(val))[0]
    os.symlink('..', osp.join(val, city, 'up'))
    cfg = Config.fromfile(osp.join(REPO, 'configs/_base_/datasets/uda_synthetic.py'))
    dataset_cfg = copy.deepcopy(cfg.val_dataloader.dataset)
    dataset_cfg.data_root = str(bench / 'cityscapes')
    dataset = DATASETS.build(dataset_cfg)
    assert type(dataset).__name__ == 'CityscapesDataset'
    assert img_paths(dataset) == expected
    assert notes == [f'{val}/{city}/up: symlink loop skipped (it leads back to {val}, which '
                     f'holds it)']


def test_the_converter_skips_a_loop_and_the_statistics_still_match(bench, notes):
    gta = str(bench / 'gta')
    os.symlink('.', osp.join(gta, 'labels', 'loop'))
    result = convert_gta(gta)
    assert len(result.stats) == len(glob.glob(osp.join(gta, 'images', '*.png')))
    assert notes == [f'{gta}/labels/loop: symlink loop skipped (it leads back to {gta}/labels, '
                     f'which holds it)']
    DATASETS.build(training_dataset_cfg(bench))


def test_a_symlinked_folder_is_listed_by_the_converter_and_the_dataset(bench, tmp_path):
    """Data folders are often links to another disk: both follow them, so the converted labels
    and the statistics cover what the dataset lists."""
    gta = bench / 'gta'
    elsewhere = tmp_path / 'other_disk'
    for sub in ('images', 'labels'):
        (elsewhere / sub).mkdir(parents=True)
        for suffix in ('.png', '_labelTrainIds.png') if sub == 'labels' else ('.png',):
            for name in ('00010', '00011'):
                shutil.move(str(gta / sub / f'{name}{suffix}'),
                            str(elsewhere / sub / f'{name}{suffix}'))
        os.symlink(elsewhere / sub, gta / sub / 'part2')
    convert_gta(str(gta))
    dataset = DATASETS.build(training_dataset_cfg(bench))
    linked = [str(gta / 'images' / 'part2' / f'{n}.png') for n in ('00010', '00011')]
    assert img_paths(dataset.source)[-2:] == linked
    assert len(dataset.source) == 12
    drawn = {i for indices in dataset.rcs_candidates.values() for i in indices}
    assert {10, 11} <= drawn


# split files (ann_file)


@pytest.mark.parametrize('content', ['', '\n  \n'])
@pytest.mark.parametrize('role, dataset_type', [('source', 'GTA5Dataset'),
                                                ('target', 'CityscapesDataset')])
def test_an_empty_split_file_is_named(bench, role, dataset_type, content):
    cfg = training_dataset_cfg(bench)
    split = bench / 'split.txt'
    split.write_text(content)
    cfg[role]['ann_file'] = str(split)
    suffix = '.png' if role == 'source' else '_leftImg8bit.png'
    with pytest.raises(ValueError) as info:
        DATASETS.build(cfg)
    assert f'{type(info.value).__name__}: {info.value}' == (
        f"SplitFileError: {dataset_type}: the split file (ann_file) {split} is empty: it "
        f"names no image (one name per line, without the suffix {suffix!r})")


@pytest.mark.parametrize('role, dataset_type', [('source', 'GTA5Dataset'),
                                                ('target', 'CityscapesDataset')])
def test_a_missing_split_file_is_named(bench, role, dataset_type):
    cfg = training_dataset_cfg(bench)
    cfg[role]['ann_file'] = 'train.txt'  # relative to data_root, as mmengine joins it
    root = cfg[role]['data_root']
    with pytest.raises(ValueError) as info:
        DATASETS.build(cfg)
    assert f'{type(info.value).__name__}: {info.value}' == (
        f'SplitFileError: {dataset_type}: the split file (ann_file) {root}/train.txt does not '
        f'exist')


def test_a_split_file_chooses_the_samples(bench):
    cfg = training_dataset_cfg(bench)
    cfg.rare_class_sampling = None
    gta = bench / 'gta'
    (gta / 'train.txt').write_text('00004\n00002\n\n')
    cfg.source.ann_file = 'train.txt'
    dataset = DATASETS.build(cfg)
    assert img_paths(dataset.source) == [str(gta / 'images' / '00004.png'),
                                         str(gta / 'images' / '00002.png')]
    assert dataset.source.get_data_info(1)['seg_map_path'] == str(
        gta / 'labels' / '00002_labelTrainIds.png')


def test_train_runs_with_a_loop_in_the_source_images(bench, tmp_path, notes, monkeypatch,
                                                     capsys):
    """tools/train.py lists the source as the dataset tests above do: one note, no ELOOP."""
    images = str(bench / 'gta' / 'images')
    os.symlink('.', osp.join(images, 'loop'))
    config = tmp_path / 'loop.py'
    config.write_text(f"""
_base_ = ['{REPO}/configs/synthetic/daformer_tiny.py']
train_dataloader = dict(batch_size=1, num_workers=0, persistent_workers=False,
                        dataset=dict(source=dict(data_root='{bench / 'gta'}'),
                                     target=dict(data_root='{bench / 'cityscapes'}')))
val_dataloader = dict(num_workers=0, persistent_workers=False,
                      dataset=dict(data_root='{bench / 'cityscapes'}'))
test_dataloader = val_dataloader
train_cfg = dict(max_iters=1, val_interval=2)
""")
    status, out, err = run_train(monkeypatch, capsys, str(config), '--work-dir',
                                 str(tmp_path / 'run'))
    assert status == 0, err[-2000:]
    assert 'Too many levels of symbolic links' not in out + err
    assert notes == [f'{images}/loop: symlink loop skipped (it leads back to {images}, which '
                     f'holds it)']
