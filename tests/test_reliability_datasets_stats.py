"""Rare class sampling's statistics against the files: an image added to a converted dataset
after its class statistics were written (or one removed since) stops training before its
first iteration, with one line naming the statistics file and the fix."""
import glob
import os
import os.path as osp
import shutil

import pytest
from mmseg.registry import DATASETS
from mmseg.utils import register_all_modules

import mmseg_iccld  # noqa: F401  (registers datasets and transforms)
from mmseg_iccld.datasets.conversion import convert_gta
from test_reliability_datasets_listing import training_dataset_cfg
from test_reliability_training import run_train

register_all_modules(init_default_scope=True)
REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))


def add_source_sample(gta, name: str, like: str = '00000') -> None:
    """A new image with its raw and converted labels, copied from sample ``like``."""
    for sub, suffix in (('images', '.png'), ('labels', '.png'),
                        ('labels', '_labelTrainIds.png')):
        shutil.copy(osp.join(gta, sub, like + suffix), osp.join(gta, sub, name + suffix))


def remove_source_sample(gta, name: str) -> None:
    for sub, suffix in (('images', '.png'), ('labels', '.png'),
                        ('labels', '_labelTrainIds.png')):
        os.remove(osp.join(gta, sub, name + suffix))


def fix(gta) -> str:
    return (f'The files changed after the class statistics were written; rerun python '
            f'tools/convert_datasets/gta.py {gta}')


def test_an_image_added_after_the_statistics_is_named(bench):
    gta = bench / 'gta'
    add_source_sample(gta, 'zz_added')
    images = len(glob.glob(str(gta / 'images' / '*.png')))
    with pytest.raises(ValueError) as info:
        DATASETS.build(training_dataset_cfg(bench))
    assert str(info.value) == (
        f"{gta}/sample_class_stats.json does not match the source dataset: 1 of the {images} "
        f"source label(s) are not counted in it, e.g. 'zz_added_labelTrainIds.png', so rare "
        f"class sampling would never draw them. {fix(gta)}")

    # The advised fix works: the added image is drawn for every class of its original.
    convert_gta(str(gta))
    dataset = DATASETS.build(training_dataset_cfg(bench))
    paths = [dataset.source.get_data_info(i)['img_path'] for i in range(len(dataset.source))]
    added, original = (paths.index(str(gta / 'images' / f'{n}.png'))
                       for n in ('zz_added', '00000'))
    classes = [c for c, indices in dataset.rcs_candidates.items() if original in indices]
    assert classes and all(added in dataset.rcs_candidates[c] for c in classes)


def test_statistics_of_a_removed_image_are_named(bench):
    gta = bench / 'gta'
    remove_source_sample(gta, '00005')
    with pytest.raises(ValueError) as info:
        DATASETS.build(training_dataset_cfg(bench))
    assert str(info.value) == (
        f"{gta}/sample_class_stats.json does not match the source dataset: it counts 1 "
        f"label(s) that no source sample has, e.g. '00005_labelTrainIds.png'. {fix(gta)}")


def test_a_renamed_image_is_named_both_ways(bench):
    gta = bench / 'gta'
    add_source_sample(gta, '00003_copy', like='00003')
    remove_source_sample(gta, '00003')
    images = len(glob.glob(str(gta / 'images' / '*.png')))
    with pytest.raises(ValueError) as info:
        DATASETS.build(training_dataset_cfg(bench))
    assert str(info.value) == (
        f"{gta}/sample_class_stats.json does not match the source dataset: 1 of the {images} "
        f"source label(s) are not counted in it, e.g. '00003_copy_labelTrainIds.png', so rare "
        f"class sampling would never draw them; it counts 1 label(s) that no source sample "
        f"has, e.g. '00003_labelTrainIds.png'. {fix(gta)}")


def test_train_stops_before_the_first_iteration(bench, tmp_path, monkeypatch, capsys):
    gta = bench / 'gta'
    add_source_sample(gta, 'zz_added')
    work_dir = tmp_path / 'run'
    config = tmp_path / 'stale_stats.py'
    config.write_text(f"""
_base_ = ['{REPO}/configs/synthetic/daformer_tiny.py']
train_dataloader = dict(num_workers=0, persistent_workers=False,
                        dataset=dict(source=dict(data_root='{gta}'),
                                     target=dict(data_root='{bench / 'cityscapes'}')))
val_dataloader = dict(num_workers=0, persistent_workers=False,
                      dataset=dict(data_root='{bench / 'cityscapes'}'))
test_dataloader = val_dataloader
train_cfg = dict(max_iters=2, val_interval=2)
""")
    status, out, err = run_train(monkeypatch, capsys, str(config), '--work-dir', str(work_dir))
    assert status == 1
    images = len(glob.glob(str(gta / 'images' / '*.png')))
    assert f"error: ValueError: {gta}/sample_class_stats.json does not match the source " \
           f"dataset: 1 of the {images} source label(s) are not counted in it, e.g. " \
           f"'zz_added_labelTrainIds.png', so rare class sampling would never draw them. " \
           f"{fix(gta)}" in err.splitlines()
    assert 'Traceback' not in err and 'Iter(train)' not in out + err
    assert not glob.glob(str(work_dir / '*.pth'))
