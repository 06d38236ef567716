"""UDADataset checks at build what training reads (source images and labels, target images);
target labels are never trained on, and a missing one stops nothing."""
import os
import os.path as osp

import numpy as np
import pytest
from mmseg.registry import DATASETS
from mmseg.utils import register_all_modules
from PIL import Image

import mmseg_iccld  # noqa: F401  (registers datasets and transforms)
from mmseg_iccld.datasets import conversion_report, listing
from mmseg_iccld.datasets.conversion import convert_cityscapes

register_all_modules(init_default_scope=True)
CLASSES = ('c0', 'c1', 'c2')
# The loaders of the base configs.
PIPELINE = [dict(type='LoadImageFromFileChecked'), dict(type='LoadAnnotationsChecked'),
            dict(type='PackSegInputs')]


def write_split(root, names, value):
    os.makedirs(osp.join(root, 'img'), exist_ok=True)
    os.makedirs(osp.join(root, 'lbl'), exist_ok=True)
    for k, name in enumerate(names):
        Image.fromarray(np.full((4, 6, 3), value + k, np.uint8)).save(
            osp.join(root, 'img', f'{name}.png'))
        Image.fromarray(np.full((4, 6), k % 3, np.uint8)).save(
            osp.join(root, 'lbl', f'{name}_labelTrainIds.png'))


def dataset_cfg(root):
    return dict(type='BaseSegDataset', data_root=str(root),
                data_prefix=dict(img_path='img', seg_map_path='lbl'), img_suffix='.png',
                seg_map_suffix='_labelTrainIds.png',
                metainfo=dict(classes=CLASSES, palette=[[0, 0, 0]] * 3), pipeline=PIPELINE)


def uda_cfg(src, tgt):
    return dict(type='UDADataset', source=dataset_cfg(src), target=dataset_cfg(tgt))


@pytest.fixture
def roots(tmp_path):
    src, tgt = str(tmp_path / 'src'), str(tmp_path / 'tgt')
    write_split(src, ['s0', 's1'], 100)
    write_split(tgt, ['t0', 't1'], 200)
    return src, tgt


def test_missing_target_label_stops_nothing(roots, monkeypatch):
    src, tgt = roots
    missing = osp.join(tgt, 'lbl', 't1_labelTrainIds.png')
    os.remove(missing)
    logged = []
    monkeypatch.setattr(listing, 'print_log', lambda msg, **kw: logged.append(msg))
    dataset = DATASETS.build(uda_cfg(src, tgt))
    assert logged == [f'UDADataset: 1 of 2 target label(s) do not exist, e.g. {missing}; '
                      f'target labels are never trained on, so these samples are loaded '
                      f'without one']
    for idx in range(len(dataset)):
        item = dataset[idx]
        assert int(item['target_inputs'][0, 0, 0]) == 200 + idx % 2
        assert ('gt_sem_seg' in item['target_data_samples']) == (idx % 2 == 0)
        assert 'gt_sem_seg' in item['data_samples']


def test_present_target_labels_are_still_checked(roots):
    src, tgt = roots
    Image.fromarray(np.full((4, 6), 40, np.uint8)).save(
        osp.join(tgt, 'lbl', 't0_labelTrainIds.png'))
    dataset = DATASETS.build(uda_cfg(src, tgt))
    with pytest.raises(ValueError, match='label values \\[40\\] lie outside \\[0, 19\\)'):
        dataset[0]


def test_missing_source_files_fail_at_build_all_listed(roots):
    src, tgt = roots
    cfg = uda_cfg(src, tgt)
    cfg['source']['ann_file'] = osp.join(src, 'list.txt')
    with open(cfg['source']['ann_file'], 'w') as f:
        f.write('s0\ns1\ns9\n')
    os.remove(osp.join(src, 'lbl', 's1_labelTrainIds.png'))
    with pytest.raises(FileNotFoundError) as info:
        DATASETS.build(cfg)
    assert str(info.value).splitlines() == [
        'UDADataset: 3 file(s) that training reads do not exist:',
        f'  - {src}/lbl/s1_labelTrainIds.png: source label not found (image {src}/img/s1.png)',
        f'  - {src}/img/s9.png: source image not found',
        f'  - {src}/lbl/s9_labelTrainIds.png: source label not found (image {src}/img/s9.png)']


def test_target_images_are_needed(roots, tmp_path):
    src, tgt = roots
    for name in ('t0', 't1'):
        os.remove(osp.join(tgt, 'img', f'{name}.png'))
    with pytest.raises(FileNotFoundError, match=f"^UDADataset: the target dataset "
                                                f"\\(BaseSegDataset\\) lists no images in "
                                                f"'{tgt}/img'$"):
        DATASETS.build(uda_cfg(src, tgt))
    missing = str(tmp_path / 'nowhere')
    with pytest.raises(FileNotFoundError, match=f"^UDADataset: the target image folder "
                                                f"'{missing}/img' does not exist "
                                                f"\\(BaseSegDataset, data_root '{missing}'\\)$"):
        DATASETS.build(uda_cfg(src, missing))


def write_cityscapes(root, split, stems):
    for stem in stems:
        city = stem.split('_')[0]
        for sub in ('leftImg8bit', 'gtFine'):
            os.makedirs(osp.join(root, sub, split, city), exist_ok=True)
        Image.fromarray(np.full((4, 6, 3), 9, np.uint8)).save(
            osp.join(root, 'leftImg8bit', split, city, f'{stem}_leftImg8bit.png'))
        Image.fromarray(np.full((4, 6), 7, np.uint8)).save(
            osp.join(root, 'gtFine', split, city, f'{stem}_gtFine_labelIds.png'))


def test_target_samples_skipped_by_the_converter_are_left_out(roots, tmp_path, monkeypatch):
    src, _ = roots
    root = str(tmp_path / 'cityscapes')
    write_cityscapes(root, 'train', ['aachen_000000_000019', 'aachen_000001_000019'])
    write_cityscapes(root, 'val', ['lindau_000000_000019'])
    bad = osp.join(root, 'leftImg8bit', 'train', 'aachen', 'aachen_000001_000019_leftImg8bit.png')
    data = open(bad, 'rb').read()
    open(bad, 'wb').write(data[:-20])
    result = convert_cityscapes(root, skip_invalid=True)
    assert [len(result.splits[s]) for s in ('train', 'val')] == [1, 1]
    logged = []
    monkeypatch.setattr(conversion_report, 'print_log', lambda msg, **kw: logged.append(msg))
    target = dict(type='CityscapesDataset', data_root=root,
                  data_prefix=dict(img_path='leftImg8bit/train', seg_map_path='gtFine/train'),
                  pipeline=PIPELINE)
    source = dict(type='GTA5Dataset', data_root=src,
                  data_prefix=dict(img_path='img', seg_map_path='lbl'), pipeline=PIPELINE)
    dataset = DATASETS.build(dict(type='UDADataset', source=source, target=target))
    assert len(dataset.target) == 1
    assert dataset.target.get_data_info(0)['img_path'].endswith('aachen_000000_000019_'
                                                                'leftImg8bit.png')
    assert logged == [f'UDADataset (target): left out 1 sample(s) that the dataset converter '
                      f'skipped, listed with their reasons in {root}/conversion_report.json']
    assert dataset[1]['target_inputs'].shape == (3, 4, 6)


def test_val_samples_are_never_skipped(tmp_path):
    root = str(tmp_path / 'cityscapes')
    write_cityscapes(root, 'train', ['aachen_000000_000019'])
    write_cityscapes(root, 'val', ['lindau_000000_000019', 'lindau_000001_000019'])
    label = osp.join(root, 'gtFine', 'val', 'lindau', 'lindau_000001_000019_gtFine_labelIds.png')
    Image.fromarray(np.full((4, 6), 99, np.uint8)).save(label)
    with pytest.raises(ValueError) as info:
        convert_cityscapes(root, skip_invalid=True)
    assert str(info.value).splitlines()[:2] == [
        'Cityscapes: 1 problem(s) found; --skip-invalid does not skip these (an empty split, '
        'or a sample of a split that is evaluated on); fix them:',
        f'  - {label}: unknown Cityscapes label ids [99] (valid ids are 0..33); '
        f'--unknown-ids-to-ignore maps them to 255 (ignored)']
    assert not osp.exists(osp.join(root, 'conversion_report.json'))
