"""The Cityscapes converter on val problems: ``--skip-invalid`` is advised only for problems it
skips (never for val, which is evaluated on), and macOS AppleDouble ``._*`` files, which are
not images, are ignored with a note by the converter and the datasets alike."""
import os
import os.path as osp
import runpy

import numpy as np
import pytest
from mmseg.registry import DATASETS
from mmseg.utils import register_all_modules
from PIL import Image

import mmseg_iccld  # noqa: F401  (registers datasets and transforms)
from mmseg_iccld.datasets.conversion import ConversionError, convert_cityscapes

register_all_modules(init_default_scope=True)
REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
NOT_SKIPPED = 'an empty split, or a sample of a split that is evaluated on'
# The first bytes of an AppleDouble file: magic 0x00051607, version 2, "Mac OS X" filler.
APPLE_DOUBLE = b'\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X        ' + b'\x00' * 4072


def path(root, kind, split, stem):
    city = stem.split('_')[0]
    suffix = '_leftImg8bit.png' if kind == 'leftImg8bit' else '_gtFine_labelIds.png'
    return osp.join(root, kind, split, city, stem + suffix)


def write_cityscapes(root, split, stems):
    for stem in stems:
        for kind in ('leftImg8bit', 'gtFine'):
            os.makedirs(osp.dirname(path(root, kind, split, stem)), exist_ok=True)
        Image.fromarray(np.full((4, 6, 3), 9, np.uint8)).save(
            path(root, 'leftImg8bit', split, stem))
        Image.fromarray(np.full((4, 6), 7, np.uint8)).save(path(root, 'gtFine', split, stem))


@pytest.fixture
def cityscapes(tmp_path):
    root = str(tmp_path / 'cityscapes')
    write_cityscapes(root, 'train', ['aachen_000000_000019', 'aachen_000001_000019'])
    write_cityscapes(root, 'val', ['lindau_000000_000019', 'lindau_000001_000019'])
    return root


def truncate(file):
    data = open(file, 'rb').read()
    open(file, 'wb').write(data[:-20])


def run_cli(argv, monkeypatch, capsys):
    cli = runpy.run_path(osp.join(REPO, 'tools/convert_datasets/cityscapes.py'),
                         run_name='cli')
    monkeypatch.setattr('sys.argv', ['cityscapes.py'] + argv)
    status = cli['main']()
    out, err = capsys.readouterr()
    return status, out.strip().splitlines(), err.strip().splitlines()


def test_a_val_problem_is_not_advised_to_be_skipped(cityscapes, monkeypatch, capsys):
    bad = path(cityscapes, 'leftImg8bit', 'val', 'lindau_000001_000019')
    truncate(bad)
    status, _, err = run_cli([cityscapes, '--nproc', '1'], monkeypatch, capsys)
    assert status == 1
    assert err[:2] == [
        f'error: Cityscapes: 1 problem(s) found; --skip-invalid does not skip these '
        f'({NOT_SKIPPED}); fix them:',
        f'  - {bad}: truncated PNG (the file does not end with the IEND chunk)']
    assert '--skip-invalid' not in ' '.join(err).replace('--skip-invalid does not skip', '')


def test_train_and_val_problems_together_say_what_skip_invalid_leaves(cityscapes, monkeypatch,
                                                                      capsys):
    train_bad = path(cityscapes, 'leftImg8bit', 'train', 'aachen_000001_000019')
    val_bad = path(cityscapes, 'leftImg8bit', 'val', 'lindau_000001_000019')
    truncate(train_bad)
    truncate(val_bad)
    status, _, err = run_cli([cityscapes, '--nproc', '1'], monkeypatch, capsys)
    assert status == 1
    assert err[0] == (f'error: Cityscapes: 2 problem(s) found; fix them; --skip-invalid does '
                      f'not skip 1 of them ({NOT_SKIPPED}):')
    assert sorted(err[1:3]) == sorted(
        f'  - {bad}: truncated PNG (the file does not end with the IEND chunk)'
        for bad in (train_bad, val_bad))


def test_a_train_problem_is_still_advised_to_be_skipped(cityscapes, monkeypatch, capsys):
    truncate(path(cityscapes, 'leftImg8bit', 'train', 'aachen_000001_000019'))
    status, _, err = run_cli([cityscapes, '--nproc', '1'], monkeypatch, capsys)
    assert status == 1
    assert err[0] == (f'error: Cityscapes: 1 problem(s) found; fix them, or convert the other '
                      f'samples with --skip-invalid (which lists each skipped file and why in '
                      f'{cityscapes}/conversion_report.json):')
    status, out, _ = run_cli([cityscapes, '--nproc', '1', '--skip-invalid'], monkeypatch, capsys)
    assert status == 0 and out[-2] == (f'converted labels (train: 1, val: 2) in {cityscapes}')


def test_apple_double_files_are_ignored_with_a_note(cityscapes, notes, monkeypatch, capsys):
    stems = ['lindau_000000_000019', 'lindau_000001_000019']
    for kind in ('leftImg8bit', 'gtFine'):
        for stem in stems:
            file = path(cityscapes, kind, 'val', stem)
            with open(osp.join(osp.dirname(file), '._' + osp.basename(file)), 'wb') as f:
                f.write(APPLE_DOUBLE)
    status, out, err = run_cli([cityscapes, '--nproc', '1'], monkeypatch, capsys)
    assert (status, err) == (0, [])
    assert out[-1] == f'converted labels (train: 2, val: 2) in {cityscapes}'
    lindau = osp.join(cityscapes, '{}', 'val', 'lindau')
    assert notes == [
        f'{cityscapes}/leftImg8bit/val: ignored 2 hidden *_leftImg8bit.png file(s), e.g. '
        f'{lindau.format("leftImg8bit")}/._{stems[0]}_leftImg8bit.png (names starting with '
        f'"." are not data: "._*" files are metadata macOS writes when copying)',
        f'{cityscapes}/gtFine/val: ignored 2 hidden *_gtFine_labelIds.png file(s), e.g. '
        f'{lindau.format("gtFine")}/._{stems[0]}_gtFine_labelIds.png (names starting with '
        f'"." are not data: "._*" files are metadata macOS writes when copying)']
    val = DATASETS.build(dict(
        type='CityscapesDataset', data_root=cityscapes,
        data_prefix=dict(img_path='leftImg8bit/val', seg_map_path='gtFine/val'),
        pipeline=[dict(type='LoadImageFromFileChecked'), dict(type='LoadAnnotationsChecked'),
                  dict(type='PackSegInputs')]))
    assert [val.get_data_info(i)['img_path'] for i in range(len(val))] == [
        path(cityscapes, 'leftImg8bit', 'val', stem) for stem in stems]
    assert val[1]['data_samples'].gt_sem_seg.data.unique().tolist() == [0]


def test_skip_invalid_still_refuses_val_problems(cityscapes):
    label = path(cityscapes, 'gtFine', 'val', 'lindau_000001_000019')
    Image.fromarray(np.full((4, 6), 99, np.uint8)).save(label)
    with pytest.raises(ConversionError) as info:
        convert_cityscapes(cityscapes, skip_invalid=True)
    assert str(info.value).splitlines()[0] == (
        f'Cityscapes: 1 problem(s) found; --skip-invalid does not skip these ({NOT_SKIPPED}); '
        f'fix them:')
    assert not osp.exists(osp.join(cityscapes, 'conversion_report.json'))
