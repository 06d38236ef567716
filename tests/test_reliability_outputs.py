"""Result files are written in full or not at all, output folders are checked up front, and
a result never replaces a file that the tool did not write."""
import errno
import glob
import hashlib
import json
import os
import os.path as osp
import shutil

import numpy as np
import pytest
from PIL import Image
from test_tools_infer import (DAFORMER, RECORD, checkpoints, error_of,  # noqa: F401
                              files_below, infer_main, write_image)
from test_tools_test import (CLASSES, confusion_iou, error_line, predictions_below, run_tool,
                             save_checkpoint, val_split_copy)

from mmseg_iccld.apis.result_files import (OutputPathError, check_output_folder, write_result_file,
                                           write_result_text)


def test_a_full_disk_keeps_the_earlier_result_and_names_the_file(tmp_path):
    path = tmp_path / 'metrics.json'
    path.write_text('{"mIoU": 41.2}')

    def fill_the_disk(target):
        with open(target, 'w') as f:
            f.write('{"mIoU": ')
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), target)

    with pytest.raises(OutputPathError) as info:
        write_result_file(str(path), fill_the_disk)
    assert str(info.value) == f'cannot write {path}: No space left on device'
    assert path.read_text() == '{"mIoU": 41.2}'  # the earlier result, intact
    assert os.listdir(tmp_path) == ['metrics.json']  # no partial file left behind


def test_result_text_is_written_and_its_folder_created(tmp_path):
    path = tmp_path / 'tables' / 'per_class.md'
    write_result_text(str(path), '| Method | mIoU |\n')
    assert path.read_text() == '| Method | mIoU |\n'
    assert os.listdir(tmp_path / 'tables') == ['per_class.md']
    write_result_text(str(path), 'replaced\n')
    assert path.read_text() == 'replaced\n'


def test_a_folder_in_the_way_of_a_result_file_is_one_line(tmp_path):
    path = tmp_path / 'metrics.json'
    path.mkdir()
    with pytest.raises(OutputPathError) as info:
        write_result_text(str(path), '{}')
    assert str(info.value) == f'cannot write {path}: Is a directory'
    assert os.listdir(tmp_path) == ['metrics.json']


def test_output_folder_checks_create_nothing(tmp_path):
    check_output_folder(str(tmp_path / 'new' / 'deeper'), '--out folder')
    check_output_folder(str(tmp_path), '--out folder')
    assert os.listdir(tmp_path) == []
    blocker = tmp_path / 'results'
    blocker.write_text('a file')
    with pytest.raises(OutputPathError) as info:
        check_output_folder(str(blocker / 'a' / 'b'), 'work dir')
    assert str(info.value) == (f'work dir {blocker}/a/b cannot be created: {blocker} is not '
                               'a folder')
    with pytest.raises(OutputPathError) as info:
        check_output_folder(str(blocker), 'work dir')
    assert str(info.value) == f'work dir {blocker} exists and is not a folder'


@pytest.mark.skipif(os.geteuid() == 0, reason='root writes into read-only folders: chmod '
                    'cannot make a folder unwritable (the file-parent variant still runs)')
def test_read_only_folders_are_named(tmp_path):
    read_only = tmp_path / 'read_only'
    read_only.mkdir()
    read_only.chmod(0o555)
    try:
        with pytest.raises(OutputPathError) as info:
            check_output_folder(str(read_only), '--out folder')
        assert str(info.value) == f'--out folder {read_only} is not writable'
        with pytest.raises(OutputPathError) as info:
            check_output_folder(str(read_only / 'pred'), '--out folder')
        assert str(info.value) == (f'--out folder {read_only}/pred cannot be created: '
                                   f'{read_only} is not writable')
        with pytest.raises(OutputPathError) as info:
            write_result_text(str(read_only / 'metrics.json'), '{}')
        assert str(info.value) == (f"cannot write {read_only / 'metrics.json'}: Permission "
                                   'denied')
    finally:
        read_only.chmod(0o755)


# results never replace a file that the tool did not write


def test_the_record_knows_its_own_files_even_after_a_kill(tmp_path):
    from mmseg_iccld.engine.output_record import OutputRecord, OverwriteError
    out = tmp_path / 'out'
    record = OutputRecord(str(out), 'tools/infer.py')
    ours, foreign = str(out / 'labels' / 'a.png'), str(out / 'labels' / 'b.png')
    write_result_text(ours, 'prediction')
    record.add(ours)
    write_result_text(foreign, 'a label of the dataset')
    with open(record.path, 'a') as f:
        f.write('{"file": "labels/b.png", "si')  # the last line of a killed run
    record.check([ours, str(out / 'labels' / 'c.png')])  # its own file, and a new one
    with pytest.raises(OverwriteError) as info:
        record.check([ours, foreign])
    assert str(info.value) == (f'--out folder {out} would overwrite {foreign}, which no '
                               'earlier run of tools/infer.py wrote (or which was changed '
                               'since): choose a new or empty --out folder')
    # the user's own file in the place of one of the tool's (copied with its old time stamp)
    write_result_text(ours, 'the user\'s own')
    os.utime(ours, ns=(10**18, 10**18))
    with pytest.raises(OverwriteError) as info:
        record.check([ours])
    assert f'would overwrite {ours}, which' in str(info.value)
    assert open(ours).read() == 'the user\'s own'


def digests(folder) -> dict:
    """The SHA-256 of every file below ``folder``, by relative path."""
    return {relative: hashlib.sha256(open(osp.join(folder, relative), 'rb').read()).hexdigest()
            for relative in files_below(folder)}


def test_out_over_a_dataset_folder_leaves_its_labels_alone(infer_main, capsys, checkpoints,
                                                           synthetic_benchmark, tmp_path):
    """``--out data/gta`` with the images in ``data/gta/images`` would write the predictions
    as ``data/gta/labels/<name>.png``: the source labels."""
    gta = tmp_path / 'gta'
    shutil.copytree(synthetic_benchmark.gta_root, gta)
    before = digests(gta)
    assert 'labels/00000.png' in before and 'images/00000.png' in before
    refusal = (f'error: OverwriteError: --out folder {gta} would overwrite '
               f'{gta}/labels/00000.png, which no earlier run of tools/infer.py wrote (or which '
               'was changed since): choose a new or empty --out folder')
    assert error_of(infer_main, capsys, DAFORMER, checkpoints['dacs'], str(gta / 'images'),
                    '--out', str(gta)) == refusal
    assert digests(gta) == before  # nothing written, not even the record
    unreadable = str(tmp_path / 'some.pth')
    open(unreadable, 'wb').close()  # no checkpoint: the refusal comes before it is read
    assert error_of(infer_main, capsys, DAFORMER, unreadable, str(gta / 'images'), '--out',
                    str(gta)) == refusal


def test_a_rerun_replaces_its_own_results_and_nothing_else(infer_main, capsys, checkpoints,
                                                           tmp_path):
    image = write_image(tmp_path / 'in' / 'a.png', 64, 32)
    out = tmp_path / 'out'
    args = [DAFORMER, checkpoints['dacs'], image, '--out', str(out)]
    infer_main(args)
    infer_main(args)
    assert capsys.readouterr().out.count(
        f'1 image(s): masks, overlays, labels written to {out}') == 2
    assert files_below(out) == [RECORD, 'labels/a.png', 'masks/a.png', 'overlays/a.png']
    # a label map of the user's own in the place of the result (copied with its time stamp)
    own = np.full((32, 64), 7, np.uint8)
    Image.fromarray(own).save(out / 'labels' / 'a.png')
    os.utime(out / 'labels' / 'a.png', ns=(10**18, 10**18))
    assert error_of(infer_main, capsys, *args) == (
        f'error: OverwriteError: --out folder {out} would overwrite {out}/labels/a.png, which '
        'no earlier run of tools/infer.py wrote (or which was changed since): choose a new or '
        'empty --out folder')
    np.testing.assert_array_equal(np.array(Image.open(out / 'labels' / 'a.png')), own)


def test_predictions_of_one_name_in_two_cities_are_both_kept(synthetic_benchmark, tmp_path):
    root = val_split_copy(synthetic_benchmark, tmp_path / 'cityscapes')
    for part in ('leftImg8bit', 'gtFine'):
        shutil.copytree(osp.join(root, part, 'val', 'eastbrook'),
                        osp.join(root, part, 'val', 'westbrook'))
    # the second city mirrored (images and labels), so that its predictions differ
    for path in glob.glob(osp.join(root, '*', 'val', 'westbrook', '*.png')):
        Image.fromarray(np.ascontiguousarray(np.array(Image.open(path))[:, ::-1])).save(path)
    images = osp.join(root, 'leftImg8bit', 'val')
    expected = sorted(osp.relpath(p, images) for p in glob.glob(osp.join(images, '*', '*.png')))
    assert len(expected) == 8 and len({osp.basename(p) for p in expected}) == 4
    checkpoint = str(tmp_path / 'dacs.pth')
    save_checkpoint(DAFORMER, checkpoint)
    options = ['--cfg-options', f'test_dataloader.dataset.data_root={root}',
               'test_dataloader.num_workers=0', 'test_dataloader.persistent_workers=False']
    out = tmp_path / 'pred'
    for _ in range(2):  # the second run replaces the first's predictions
        result = run_tool('tools/test.py', DAFORMER, checkpoint, '--work-dir',
                          str(tmp_path / 'work'), '--out', str(out), *options)
        assert result.returncode == 0, result.stderr[-3000:]
    with open(tmp_path / 'work' / 'metrics.json') as f:
        metrics = json.load(f)
    assert metrics['images'] == 8
    assert predictions_below(out) == expected
    assert osp.isfile(out / '.written_by_test.jsonl')
    # each file is the prediction of its own image: together they give the metric's IoUs
    per_class = [metrics['per_class_iou'][name] for name in CLASSES]
    per_class = [np.nan if v is None else v for v in per_class]
    np.testing.assert_allclose(confusion_iou(str(out), root), per_class, atol=0.011)
    # and analysis_tools/confusion.py pairs each with the label of its own city
    from tools.analysis_tools import confusion
    matrix = confusion.confusion_matrix(
        str(out), confusion.ground_truth_index(osp.join(root, 'gtFine', 'val')))
    hits = np.diag(matrix)
    with np.errstate(invalid='ignore', divide='ignore'):
        iou = 100 * hits / (matrix.sum(0) + matrix.sum(1) - hits)
    np.testing.assert_allclose(iou, per_class, atol=0.011)
    east = [np.array(Image.open(out / p)) for p in expected if p.startswith('eastbrook')]
    west = [np.array(Image.open(out / p)) for p in expected if p.startswith('westbrook')]
    assert any(not np.array_equal(e, w) for e, w in zip(east, west))

    # predictions named as their images: --out over the image folder is refused
    before = digests(images)
    line = error_line(run_tool('tools/test.py', DAFORMER, checkpoint, '--work-dir',
                               str(tmp_path / 'work2'), '--out', images, *options))
    assert line == (f'error: OverwriteError: --out folder {images} would overwrite '
                    f'{images}/{expected[0]}, which no earlier run of tools/test.py wrote (or '
                    'which was changed since): choose a new or empty --out folder')
    assert digests(images) == before
    assert not osp.exists(tmp_path / 'work2' / 'metrics.json')
