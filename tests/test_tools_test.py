"""tools/test.py: the per-class table, --show-dir, and one-line errors (run as a process)."""
import csv
import glob
import json
import os
import os.path as osp
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

import mmseg_iccld  # noqa: F401
from mmseg.datasets import CityscapesDataset
from mmseg.registry import METRICS
from mmseg_iccld.evaluation.per_class_metric import (per_class_table, table_to_csv,
                                                     table_to_markdown, use_per_class_metrics)

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
DAFORMER = osp.join(REPO, 'configs/synthetic/daformer_tiny.py')
SOURCE_ONLY = osp.join(REPO, 'configs/synthetic/source_only_tiny.py')
ICCLD = osp.join(REPO, 'configs/synthetic/iccld_tiny.py')
CLASSES = CityscapesDataset.METAINFO['classes']
ROAD, SIDEWALK, BUILDING, POLE, SKY, PERSON, RIDER, CAR, TRUCK = 0, 1, 2, 5, 10, 11, 12, 13, 14

# (label, prediction, pixels). Per class: intersection I, label area L, prediction area P,
# union U = L + P - I (label 255 counts nowhere):
#   road      I 6  L 8  P 6+1=7  U 9  -> 2/3      sidewalk I 3  L 3  P 3+2=5  U 5 -> 3/5
#   building  I 0  L 0  P 2      U 2  -> 0        pole     I 2  L 2  P 2      U 2 -> 1
#   sky       I 5  L 7  P 5      U 7  -> 5/7      person   I 1  L 2  P 1      U 2 -> 1/2
#   rider     I 0  L 0  P 1      U 1  -> 0        car      I 4  L 5  P 4+1=5  U 6 -> 2/3
#   truck     I 0  L 1  P 0      U 1  -> 0        the other ten classes: NaN
IMAGE_1 = [(ROAD, ROAD, 6), (ROAD, SIDEWALK, 2), (SIDEWALK, SIDEWALK, 3), (CAR, CAR, 4),
           (CAR, ROAD, 1), (SKY, SKY, 5), (255, CAR, 3)]
IMAGE_2 = [(PERSON, PERSON, 1), (PERSON, RIDER, 1), (SKY, BUILDING, 2), (TRUCK, CAR, 1),
           (POLE, POLE, 2)]
IOU = {'road': 66.67, 'sidewalk': 60.0, 'building': 0.0, 'pole': 100.0, 'sky': 71.43,
       'person': 50.0, 'rider': 0.0, 'car': 66.67, 'truck': 0.0}
# 871/210 is the sum of the nine IoUs: mIoU = 871/210/9; Synthia leaves out truck (16
# classes: 8 present) and also pole for mIoU13 (7 present).
MIOU, MIOU16, MIOU13 = 46.08, 51.85, 44.97
HEADINGS = ['Road', 'S.Walk', 'Build.', 'Wall', 'Fence', 'Pole', 'T.Light', 'T.Sign', 'Veget',
            'Terrain', 'Sky', 'Person', 'Rider', 'Car', 'Truck', 'Bus', 'Train', 'M.Bike',
            'Bike']


def evaluate(metric_type: str) -> dict:
    metric = METRICS.build(dict(type=metric_type))
    metric.dataset_meta = dict(classes=CLASSES)
    for pixels in (IMAGE_1, IMAGE_2):
        label = torch.tensor([p[0] for p in pixels for _ in range(p[2])]).view(1, 1, -1)
        pred = torch.tensor([p[1] for p in pixels for _ in range(p[2])]).view(1, 1, -1)
        metric.process({}, [dict(gt_sem_seg=dict(data=label), pred_sem_seg=dict(data=pred))])
    return metric.evaluate(2)


def test_per_class_table_matches_hand_computed_confusion():
    metrics = evaluate('PerClassIoUMetric')
    assert metrics['mIoU'] == MIOU
    for name in CLASSES:
        expected = IOU.get(name, float('nan'))
        assert metrics[f'IoU.{name}'] == pytest.approx(expected, nan_ok=True), name
    header, values = per_class_table(metrics, CLASSES)
    assert header == ['mIoU'] + HEADINGS
    row = ['46.08', '66.67', '60.00', '0.00', 'nan', 'nan', '100.00', 'nan', 'nan', 'nan', 'nan',
           '71.43', '50.00', '0.00', '66.67', '0.00', 'nan', 'nan', 'nan', 'nan']
    assert table_to_csv('m', header, values) == ','.join(['Method', 'mIoU'] + HEADINGS) + \
        '\n' + ','.join(['m'] + row) + '\n'
    markdown = table_to_markdown('m', header, values).splitlines()
    assert markdown[0] == '| Method | mIoU | ' + ' | '.join(HEADINGS) + ' |'
    assert markdown[2] == '| m | ' + ' | '.join(r.replace('nan', 'n/a') for r in row) + ' |'


def test_synthia_table_has_miou16_miou13_and_no_missing_classes():
    metrics = evaluate('PerClassSynthiaIoUMetric')
    assert (metrics['mIoU16'], metrics['mIoU13']) == (MIOU16, MIOU13)
    assert metrics['IoU.car'] == 66.67  # a truck predicted as car still counts against car
    header, values = per_class_table(metrics, CLASSES)
    assert header == ['mIoU16', 'mIoU13'] + HEADINGS
    by_heading = dict(zip(header, values))
    assert by_heading['Terrain'] is None and by_heading['Truck'] is None
    assert by_heading['Train'] is None and by_heading['Pole'] == 100.0
    row = table_to_csv('m', header, values).splitlines()[1].split(',')
    assert row[:3] == ['m', '51.85', '44.97'] and row[header.index('Truck') + 1] == ''
    assert ' | - | ' in table_to_markdown('m', header, values)


def test_evaluator_types_are_swapped_and_others_left():
    evaluators = [dict(type='IoUMetric', iou_metrics=['mIoU']), dict(type='mmseg.SynthiaIoUMetric'),
                  dict(type='CityscapesMetric')]
    assert use_per_class_metrics(evaluators)
    assert [e['type'] for e in evaluators] == ['PerClassIoUMetric', 'PerClassSynthiaIoUMetric',
                                               'CityscapesMetric']
    assert not use_per_class_metrics(dict(type='CityscapesMetric'))


# the tool as a process, on the generated benchmark


def save_checkpoint(config: str, path: str) -> None:
    """The config's model, randomly initialised (seed 0), saved as a runner would."""
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS
    cfg = Config.fromfile(config)
    init_default_scope('mmseg')
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    torch.save(dict(state_dict=model.state_dict(), meta=dict()), path)


def run_tool(*args) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS='1')
    env.pop('MMSEG_ICCLD_TRACEBACK', None)
    return subprocess.run([sys.executable, *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=600)


def data_options(benchmark) -> list:
    return ['--cfg-options', f'test_dataloader.dataset.data_root={benchmark.cityscapes_root}',
            'test_dataloader.num_workers=0', 'test_dataloader.persistent_workers=False']


def error_line(result: subprocess.CompletedProcess) -> str:
    """The one error line; nothing of a traceback may be printed."""
    assert result.returncode == 1, result.stderr[-3000:]
    assert 'Traceback' not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith('error: ')]
    assert len(lines) == 1, result.stderr[-3000:]
    return lines[0]


def predictions_below(pred_dir) -> list:
    """The prediction files below ``pred_dir``, as sorted relative paths."""
    return sorted(osp.relpath(p, pred_dir)
                  for p in glob.glob(osp.join(pred_dir, '**', '*.png'), recursive=True))


def confusion_iou(pred_dir: str, gt_root: str) -> np.ndarray:
    """Per-class IoU (percent) from the written predictions and the train-id labels; each
    prediction lies where its image lies below ``leftImg8bit/val`` (``<city>/<name>``)."""
    pairs = []
    for relative in predictions_below(pred_dir):
        gt_path = osp.join(gt_root, 'gtFine', 'val', relative.replace(
            '_leftImg8bit.png', '_gtFine_labelTrainIds.png'))
        pairs.append((np.array(Image.open(gt_path)),
                      np.array(Image.open(osp.join(pred_dir, relative)))))
    return pairs_iou(pairs)


def pairs_iou(pairs) -> np.ndarray:
    """Per-class IoU (percent, two decimals) over ``(train-id label, prediction)`` pairs."""
    confusion = np.zeros((19, 19), dtype=np.int64)
    for gt, pred in pairs:
        valid = gt != 255
        confusion += np.bincount(19 * gt[valid].astype(int) + pred[valid],
                                 minlength=361).reshape(19, 19)
    inter = np.diag(confusion)
    union = confusion.sum(0) + confusion.sum(1) - inter
    with np.errstate(invalid='ignore', divide='ignore'):
        return np.round(inter / union * 100, 2)


def test_table_matches_the_written_predictions_and_pictures_are_drawn(
        synthetic_benchmark, tmp_path):
    checkpoint = str(tmp_path / 'dacs.pth')
    save_checkpoint(DAFORMER, checkpoint)
    result = run_tool('tools/test.py', DAFORMER, checkpoint, '--work-dir', str(tmp_path / 'work'),
                      '--out', str(tmp_path / 'pred'), '--show-dir', str(tmp_path / 'show'),
                      '--table-out', str(tmp_path / 'tables' / 'dacs'),
                      *data_options(synthetic_benchmark))
    assert result.returncode == 0, result.stderr[-3000:]
    iou = confusion_iou(str(tmp_path / 'pred'), synthetic_benchmark.cityscapes_root)
    with open(tmp_path / 'tables' / 'dacs.csv') as f:
        header, row = list(csv.reader(f))
    assert header == ['Method', 'mIoU'] + HEADINGS and row[0] == 'synthetic/daformer_tiny'
    written = np.array([float(v) for v in row[2:]])
    np.testing.assert_allclose(written, iou, atol=0.011)  # two decimals, rounded twice
    assert np.isfinite(written).sum() >= 5  # a random network still predicts many classes
    assert float(row[1]) == pytest.approx(np.nanmean(iou), abs=0.02)
    with open(tmp_path / 'work' / 'metrics.json') as f:
        metrics = json.load(f)
    assert metrics['images'] == 4
    assert predictions_below(tmp_path / 'pred') == sorted(
        osp.relpath(p, osp.join(synthetic_benchmark.cityscapes_root, 'leftImg8bit', 'val'))
        for p in glob.glob(osp.join(synthetic_benchmark.cityscapes_root, 'leftImg8bit', 'val',
                                    '*', '*.png')))
    assert f"metrics of 4 image(s) written to {tmp_path / 'work' / 'metrics.json'}" in result.stdout
    assert metrics['metrics']['mIoU'] == pytest.approx(float(row[1]), abs=1e-4)
    assert metrics['per_class_iou']['road'] == pytest.approx(written[0], abs=1e-4)
    assert osp.isfile(tmp_path / 'tables' / 'dacs.md')
    assert '| synthetic/daformer_tiny |' in result.stdout
    pictures = glob.glob(str(tmp_path / 'show' / 'vis_data' / 'vis_image' / '*.png'))
    assert len(pictures) == 4  # every test image, not every 50th


def test_checkpoint_of_another_model_is_an_error(synthetic_benchmark, tmp_path):
    checkpoint = str(tmp_path / 'iccld.pth')
    save_checkpoint(ICCLD, checkpoint)
    line = error_line(run_tool('tools/test.py', DAFORMER, checkpoint, '--work-dir',
                               str(tmp_path / 'work'), *data_options(synthetic_benchmark)))
    assert line.startswith(f'error: CheckpointMismatchError: checkpoint {checkpoint} does not '
                           f'fit the EncoderDecoder of {DAFORMER} (the UDA student, '
                           "'model.*' in checkpoints): 50 of the model's 150 keys missing "
                           '(decode_head.')
    assert 'unexpected keys (phase, neck.' in line
    assert not osp.exists(tmp_path / 'work' / 'metrics.json')


def test_teacher_weights_are_tested_in_the_student_network(synthetic_benchmark, tmp_path):
    # the EMA teacher of this checkpoint predicts road everywhere, its student does not
    checkpoint = str(tmp_path / 'dacs.pth')
    save_checkpoint(DAFORMER, checkpoint)
    saved = torch.load(checkpoint, weights_only=False)
    head = 'teacher.module.decode_head.conv_seg.'
    saved['state_dict'][head + 'weight'].zero_()
    saved['state_dict'][head + 'bias'].zero_()
    saved['state_dict'][head + 'bias'][ROAD] = 10.0
    torch.save(saved, checkpoint)
    runs = {}
    for weights in ('student', 'teacher'):
        result = run_tool('tools/test.py', DAFORMER, checkpoint, '--weights', weights,
                          '--work-dir', str(tmp_path / weights),
                          *data_options(synthetic_benchmark))
        assert result.returncode == 0, result.stderr[-3000:]
        with open(tmp_path / weights / 'metrics.json') as f:
            runs[weights] = json.load(f)
        assert runs[weights]['weights'] == weights
    # road IoU = road pixels / valid pixels; every other labelled class 0, the rest n/a
    labels = np.concatenate([
        np.array(Image.open(p)).ravel() for p in glob.glob(osp.join(
            synthetic_benchmark.cityscapes_root, 'gtFine', 'val', '*',
            '*_gtFine_labelTrainIds.png'))])
    valid = labels[labels != 255]
    present = {CLASSES[c] for c in np.unique(valid)}
    road = 100.0 * np.mean(valid == ROAD)
    teacher = runs['teacher']['per_class_iou']
    assert teacher['road'] == pytest.approx(road, abs=0.01)
    assert {c for c, v in teacher.items() if v is not None} == present
    assert all(teacher[c] == 0.0 for c in present - {'road'})
    assert runs['teacher']['metrics']['mIoU'] == pytest.approx(road / len(present), abs=0.01)
    student = runs['student']['per_class_iou']
    assert sum(v is not None for v in student.values()) > len(present)  # not the teacher's
    # a config without a teacher says so
    line = error_line(run_tool('tools/test.py', SOURCE_ONLY, checkpoint, '--weights', 'teacher',
                               '--work-dir', str(tmp_path / 'plain'),
                               *data_options(synthetic_benchmark)))
    assert line == (f'error: ValueError: --weights teacher needs a UDA config (a student and '
                    f'its EMA teacher); the model of {SOURCE_ONLY}, EncoderDecoder, has no '
                    'teacher')


def test_state_dict_check_names_shape_mismatches():
    from mmseg_iccld.apis.checkpoint_reading import CheckpointMismatchError, check_state_dict
    model = {'a.weight': torch.zeros(19, 8), 'a.bias': torch.zeros(19), 'b': torch.zeros(1)}
    ckpt = {'a.weight': torch.zeros(10, 8), 'a.bias': torch.zeros(19), 'b': torch.zeros(1)}
    with pytest.raises(CheckpointMismatchError) as info:
        check_state_dict(model, ckpt, 'x.pth', 'the model')
    assert str(info.value) == ('checkpoint x.pth does not fit the model: 1 shape mismatches '
                               '(a.weight (10, 8) in the checkpoint, (19, 8) in the model)')
    check_state_dict(model, dict(model), 'x.pth', 'the model')  # an exact fit passes


@pytest.mark.parametrize('tool', ['train', 'test'])
def test_unknown_module_is_one_line_naming_type_and_config(tmp_path, tool):
    config = tmp_path / 'bad_head.py'
    config.write_text(f"_base_ = ['{DAFORMER}']\n"
                      "model = dict(model=dict(decode_head=dict(type='NoSuchHead')))\n")
    args = [str(tmp_path / 'any.pth')] if tool == 'test' else []
    if tool == 'test':
        open(args[0], 'wb').close()
    line = error_line(run_tool(f'tools/{tool}.py', str(config), *args, '--work-dir',
                               str(tmp_path / 'work')))
    assert line == (f"error: UnknownModuleError: config {config} names an unknown model type "
                    "'NoSuchHead' (not registered: a typo, or a module missing from "
                    'custom_imports)')


# an incomplete or empty test split, and output folders that cannot be written


def val_split_copy(benchmark, root) -> str:
    """A copy of the benchmark's target val split (images and labels) in ``root``."""
    for part in ('leftImg8bit', 'gtFine'):
        shutil.copytree(osp.join(benchmark.cityscapes_root, part, 'val'),
                        osp.join(root, part, 'val'))
    return str(root)


def test_incomplete_empty_and_missing_splits_are_errors(synthetic_benchmark, tmp_path):
    checkpoint = str(tmp_path / 'dacs.pth')
    save_checkpoint(DAFORMER, checkpoint)
    root = val_split_copy(synthetic_benchmark, tmp_path / 'cityscapes')
    options = ['--work-dir', str(tmp_path / 'work'), '--cfg-options',
               f'test_dataloader.dataset.data_root={root}', 'test_dataloader.num_workers=0',
               'test_dataloader.persistent_workers=False']
    images = sorted(glob.glob(osp.join(root, 'leftImg8bit', 'val', '*', '*_leftImg8bit.png')))
    assert len(images) == 4
    os.remove(images[1])
    label = images[1].replace(osp.join('leftImg8bit', 'val'), osp.join('gtFine', 'val')).replace(
        '_leftImg8bit.png', '_gtFine_labelTrainIds.png')
    assert osp.isfile(label)
    line = error_line(run_tool('tools/test.py', DAFORMER, checkpoint, *options))
    assert line == ('error: FileNotFoundError: the test split is incomplete: 1 label(s) without '
                    f'an image, e.g. {label} (its image {images[1]} is missing): restore the '
                    'image or remove the label')
    for image in images:
        if osp.isfile(image):
            os.remove(image)
    line = error_line(run_tool('tools/test.py', DAFORMER, checkpoint, *options))
    assert line == ('error: FileNotFoundError: the test split is empty: no *_leftImg8bit.png '
                    f"images in {osp.join(root, 'leftImg8bit', 'val')}")
    shutil.rmtree(osp.join(root, 'leftImg8bit'))
    line = error_line(run_tool('tools/test.py', DAFORMER, checkpoint, *options))
    assert line == ('error: FileNotFoundError: the image folder '
                    f"{osp.join(root, 'leftImg8bit', 'val')} of the test split does not exist")
    assert not osp.exists(tmp_path / 'work' / 'metrics.json')


def test_unwritable_output_folders_are_errors_before_the_model_is_built(tmp_path):
    checkpoint = str(tmp_path / 'any.pth')
    open(checkpoint, 'wb').close()  # no checkpoint: the folders are checked before it is read
    blocker = tmp_path / 'results'
    blocker.write_text('a file where a folder is meant to be')
    work = tmp_path / 'work'
    line = error_line(run_tool('tools/test.py', DAFORMER, checkpoint, '--work-dir', str(work),
                               '--table-out', str(blocker / 'tables' / 'dacs')))
    assert line == (f'error: OutputPathError: --table-out folder {blocker}/tables cannot be '
                    f'created: {blocker} is not a folder')
    line = error_line(run_tool('tools/test.py', DAFORMER, checkpoint, '--work-dir',
                               str(blocker / 'work')))
    assert line == (f'error: OutputPathError: work dir {blocker}/work cannot be created: '
                    f'{blocker} is not a folder')
    assert not work.exists()  # no runner was built


@pytest.mark.skipif(os.geteuid() == 0, reason='root writes into read-only folders: chmod '
                    'cannot make a folder unwritable (the file-parent variant still runs)')
def test_read_only_output_folders_are_errors_before_the_model_is_built(tmp_path):
    checkpoint = str(tmp_path / 'any.pth')
    open(checkpoint, 'wb').close()
    read_only = tmp_path / 'read_only'
    read_only.mkdir()
    read_only.chmod(0o555)
    try:
        line = error_line(run_tool('tools/test.py', DAFORMER, checkpoint, '--work-dir',
                                   str(tmp_path / 'work'), '--table-out',
                                   str(read_only / 'dacs')))
        assert line == f'error: OutputPathError: --table-out folder {read_only} is not writable'
        line = error_line(run_tool('tools/test.py', DAFORMER, checkpoint, '--work-dir',
                                   str(read_only / 'work')))
        assert line == (f'error: OutputPathError: work dir {read_only}/work cannot be created: '
                        f'{read_only} is not writable')
    finally:
        read_only.chmod(0o755)
