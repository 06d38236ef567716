"""tools/test.py --server-out: the unlabelled test split predicted in the files its
evaluation server takes (one per test image, named after it, train or label ids), and a
folder of another run refused."""
import json
import os
import os.path as osp

import numpy as np
import pytest
from cityscapesscripts.helpers.labels import trainId2label
from PIL import Image

from mmseg_iccld.engine.server_export import LABEL_IDS, server_names, server_test_split
from test_tools_test import REPO, error_line, run_tool, save_checkpoint

CONFIG = osp.join(REPO, 'configs/synthetic/daformer_adverse_tiny.py')


def acdc_test_split(root) -> list:
    """Three unlabelled test images of two conditions, as ACDC's download nests them."""
    images = []
    for condition, sequence, frame in (('fog', 'GOPR0476', 'frame_000001'),
                                       ('fog', 'GOPR0476', 'frame_000002'),
                                       ('night', 'GOPR0594', 'frame_000011')):
        folder = osp.join(root, 'rgb_anon', condition, 'test', sequence)
        os.makedirs(folder, exist_ok=True)
        path = osp.join(folder, f'{sequence}_{frame}_rgb_anon.png')
        Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 96, 3), np.uint8)).save(
            path)
        images.append(path)
    return images


def export(tmp_path, checkpoint, out) -> object:
    return run_tool('tools/test.py', CONFIG, checkpoint, '--server-out', str(out),
                    '--work-dir', str(tmp_path / 'work'), '--cfg-options',
                    f'test_dataloader.dataset.data_root={tmp_path / "acdc"}',
                    'test_dataloader.num_workers=0', 'test_dataloader.persistent_workers=False')


def test_acdc_test_split_is_written_as_train_ids_named_after_the_images(tmp_path):
    images = acdc_test_split(tmp_path / 'acdc')
    checkpoint = str(tmp_path / 'dacs.pth')
    save_checkpoint(CONFIG, checkpoint)
    out = tmp_path / 'submission'
    result = export(tmp_path, checkpoint, out)
    assert result.returncode == 0, result.stderr[-2000:]
    assert f'3 prediction(s) of the test split (train ids, named after their images) written ' \
           f'to {out}' in result.stdout
    written = sorted(n for n in os.listdir(out) if n.endswith('.png'))
    assert written == sorted(osp.basename(p) for p in images)
    for name in written:
        prediction = np.array(Image.open(out / name))
        assert prediction.shape == (64, 96) and prediction.dtype == np.uint8
        assert set(np.unique(prediction)) <= set(range(19))
    record = json.loads((out / 'server_export.json').read_text())
    assert record['ids'] == 'train ids' and record['images'] == 3
    # the same run again replaces its own files; another checkpoint is refused
    assert export(tmp_path, checkpoint, out).returncode == 0
    other = str(tmp_path / 'other.pth')
    save_checkpoint(CONFIG, other)
    line = error_line(export(tmp_path, other, out))
    assert line.startswith(f'error: OverwriteError: --server-out folder {out} holds the '
                           f'predictions of another run')


def test_a_folder_of_foreign_pngs_is_refused(tmp_path):
    acdc_test_split(tmp_path / 'acdc')
    out = tmp_path / 'pngs'
    out.mkdir()
    Image.fromarray(np.zeros((2, 2), np.uint8)).save(out / 'mine.png')
    checkpoint = str(tmp_path / 'dacs.pth')
    save_checkpoint(CONFIG, checkpoint)
    line = error_line(export(tmp_path, checkpoint, out))
    assert line == (f'error: OverwriteError: --server-out folder {out} holds 1 PNG file(s) this '
                    f'export did not write, e.g. {out / "mine.png"}: choose another folder')


def test_label_ids_are_cityscapes_and_each_server_split_is_unlabelled():
    for train_id in range(19):
        assert LABEL_IDS[train_id] == trainId2label[train_id].id
    assert (LABEL_IDS[7], LABEL_IDS[18], LABEL_IDS[255]) == (trainId2label[7].id, 33, 255)
    val = dict(type='ACDCDataset', split='val', data_root='data/acdc',
               pipeline=[dict(type='LoadImageFromFileChecked'),
                         dict(type='LoadAnnotationsChecked'), dict(type='PackSegInputs')])
    test, ids = server_test_split(val)
    assert test['split'] == 'test' and not test['with_labels'] and ids == 'train ids'
    assert [t['type'] for t in test['pipeline']] == ['LoadImageFromFileChecked', 'PackSegInputs']
    cityscapes, ids = server_test_split(dict(type='CityscapesDataset', pipeline=[]))
    assert cityscapes['data_prefix']['img_path'] == 'leftImg8bit/test' and ids == 'label ids'
    with pytest.raises(ValueError, match='no evaluation server format is known for GTA5Dataset'):
        server_test_split(dict(type='GTA5Dataset'))
    with pytest.raises(ValueError, match='would both be submitted as a_rgb_anon.png'):
        server_names(['x/a_rgb_anon.png', 'y/a_rgb_anon.png'])
