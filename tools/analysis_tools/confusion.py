"""Where each class's pixels go: predicted label maps against the ground truth, class by class.

    python tools/analysis_tools/confusion.py PRED_DIR [PRED_DIR ...] --gt-dir GT_DIR --out PREFIX

PRED_DIR holds label maps in train ids, as ``tools/test.py --out`` writes them
(``<city>/<name>_leftImg8bit.png``); the ground truth of each is
``<city>/<name>_gtFine_labelTrainIds.png`` under GT_DIR (Cityscapes' layout, e.g.
``data/synthetic/cityscapes/gtFine/val``), or a ``<name>_gtFine_labelTrainIds.png`` anywhere
under it when the name is found only once.
Pixels whose ground truth is 255 (ignored) are left out; any other value that is not a train
id is an error. For every PRED_DIR and every class present in the ground truth the report
gives its pixels, the pixels predicted as it, its recall and the classes its pixels went to
most (a row of the confusion matrix, normalised), and writes ``PREFIX.json`` (with the full
matrices) and ``PREFIX.md``. Class names are cityscapesscripts' train ids.
"""
import argparse
import glob
import os.path as osp
import sys
from collections import Counter
from typing import Dict, List

import numpy as np
from PIL import Image

from mmseg_iccld.apis.cli_errors import exit_on_user_error
from mmseg_iccld.apis.result_files import write_report
from mmseg_iccld.datasets.label_tables import IGNORE_INDEX
from mmseg_iccld.datasets.label_tables import NUM_TRAIN_CLASSES as NUM_CLASSES

PRED_SUFFIX = '_leftImg8bit.png'
GT_SUFFIX = '_gtFine_labelTrainIds.png'


def class_names() -> List[str]:
    from cityscapesscripts.helpers.labels import trainId2label
    return [trainId2label[i].name for i in range(NUM_CLASSES)]


def ground_truth_index(gt_dir: str) -> Dict[str, str]:
    """``<city>/<name>`` (the path below ``gt_dir``), and ``<name>`` where it is found once,
    -> path of its ``<name>_gtFine_labelTrainIds.png`` under ``gt_dir``."""
    if not osp.isdir(gt_dir):
        raise NotADirectoryError(f'ground-truth folder {gt_dir} does not exist')
    paths = glob.glob(osp.join(gt_dir, '**', '*' + GT_SUFFIX), recursive=True)
    if not paths:
        raise FileNotFoundError(f'no *{GT_SUFFIX} under {gt_dir}')
    found = Counter(osp.basename(p) for p in paths)
    index = {osp.basename(p)[:-len(GT_SUFFIX)]: p for p in paths if found[osp.basename(p)] == 1}
    index.update({osp.relpath(p, gt_dir)[:-len(GT_SUFFIX)]: p for p in paths})
    return index


def prediction_files(pred_dir: str) -> List[str]:
    """The ``*_leftImg8bit.png`` label maps below ``pred_dir``, sorted."""
    return sorted(glob.glob(osp.join(pred_dir, '**', '*' + PRED_SUFFIX), recursive=True))


def confusion_matrix(pred_dir: str, gt_index: Dict[str, str]) -> np.ndarray:
    """``(19, 19)`` pixel counts, row = ground-truth class, column = predicted class."""
    preds = prediction_files(pred_dir)
    if not preds:
        raise FileNotFoundError(f'no *{PRED_SUFFIX} in {pred_dir} (tools/test.py --out writes '
                                'them)')
    matrix = np.zeros((NUM_CLASSES, NUM_CLASSES), np.int64)
    for pred_path in preds:
        name = osp.relpath(pred_path, pred_dir)[:-len(PRED_SUFFIX)]
        if name not in gt_index:
            name = osp.basename(name)
        if name not in gt_index:
            raise FileNotFoundError(f'{pred_path}: no {name}{GT_SUFFIX} in the ground truth')
        pred = np.asarray(Image.open(pred_path)).astype(np.int64)
        gt = np.asarray(Image.open(gt_index[name])).astype(np.int64)
        if pred.shape != gt.shape:
            raise ValueError(f'{pred_path} is {pred.shape}, its ground truth {gt_index[name]} '
                             f'is {gt.shape}')
        accumulate(matrix, gt, pred, pred_path, gt_index[name])
    return matrix


def accumulate(matrix: np.ndarray, gt: np.ndarray, pred: np.ndarray, pred_name: str,
               gt_name: str = None) -> None:
    """Add the pixels of one label map to ``matrix`` (row ground truth, column prediction),
    leaving out ground truth 255; any other value that is not a train id is an error naming
    ``gt_name`` (or ``pred_name`` for the prediction)."""
    valid = (gt >= 0) & (gt < NUM_CLASSES)
    bad = ~valid & (gt != IGNORE_INDEX)
    if bad.any():
        raise ValueError(f'{gt_name or pred_name + " ground truth"} holds '
                         f'{sorted(set(gt[bad].tolist()))[:5]}: neither train ids '
                         f'(< {NUM_CLASSES}) nor {IGNORE_INDEX}')
    if (pred[valid] >= NUM_CLASSES).any() or (pred[valid] < 0).any():
        raise ValueError(f'{pred_name} holds values outside [0, {NUM_CLASSES}): not train ids')
    matrix += np.bincount(gt[valid] * NUM_CLASSES + pred[valid],
                          minlength=NUM_CLASSES**2).reshape(NUM_CLASSES, NUM_CLASSES)


def iou(matrix: np.ndarray) -> np.ndarray:
    """Per-class IoU of a confusion matrix: true positives over ground truth + predicted -
    true positives; NaN for a class in neither."""
    tp = np.diag(matrix).astype(np.float64)
    with np.errstate(divide='ignore', invalid='ignore'):
        return tp / (matrix.sum(0) + matrix.sum(1) - tp)


def summarise(matrix: np.ndarray, names: List[str], top: int) -> List[dict]:
    """One row per class present in the ground truth: pixels, predicted pixels, recall, and
    the ``top`` classes (itself included) its pixels went to, with their share."""
    rows = []
    for c in np.flatnonzero(matrix.sum(1)):
        row = matrix[c] / matrix[c].sum()
        order = [int(j) for j in np.argsort(-row, kind='stable')[:top] if row[j] > 0]
        rows.append(dict(cls=names[c], pixels=int(matrix[c].sum()),
                         predicted_pixels=int(matrix[:, c].sum()), recall=float(row[c]),
                         goes_to=[(names[j], float(row[j])) for j in order]))
    return rows


def to_markdown(report: dict) -> str:
    lines = [f"Confusion against `{report['gt_dir']}`; command: `{report['command']}`", '']
    for pred_dir, result in report['runs'].items():
        lines += [f"**{pred_dir}** ({result['images']} images)", '',
                  '| class | pixels | predicted as it | recall (%) | its pixels went to (%) |',
                  '|---|---|---|---|---|']
        for r in result['classes']:
            goes = ', '.join(f'{n} {100 * s:.1f}' for n, s in r['goes_to'])
            lines.append(f"| {r['cls']} | {r['pixels']} | {r['predicted_pixels']} | "
                         f"{100 * r['recall']:.1f} | {goes} |")
        lines.append('')
    return '\n'.join(lines)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('pred_dirs', nargs='+', help='folders of predicted train-id maps')
    parser.add_argument('--gt-dir', required=True, help='folder with *_gtFine_labelTrainIds.png')
    parser.add_argument('--out', required=True, help='output path without extension')
    parser.add_argument('--top', type=int, default=4, help='classes listed per row')
    return parser.parse_args(argv)


@exit_on_user_error
def main(argv=None):
    args = parse_args(argv)
    index = ground_truth_index(args.gt_dir)
    names = class_names()
    runs = {}
    for pred_dir in args.pred_dirs:
        matrix = confusion_matrix(pred_dir, index)
        images = len(prediction_files(pred_dir))
        runs[pred_dir] = dict(images=images, classes=summarise(matrix, names, args.top),
                              matrix=matrix.tolist())
    command = 'python tools/analysis_tools/confusion.py ' + ' '.join(
        sys.argv[1:] if argv is None else argv)
    report = dict(gt_dir=args.gt_dir, command=command, class_names=names, runs=runs)
    write_report(args.out, report, to_markdown(report))


if __name__ == '__main__':
    main()
