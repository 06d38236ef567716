"""Per-class IoU as numbers, and the per-class table of UDA papers.

mmseg's ``IoUMetric`` prints its per-class table into the log as text and returns only the
means. The metrics here return, in addition, ``IoU.<class name>`` for every class (percent,
two decimals, NaN for a class absent from both prediction and ground truth), so tools can
write the table UDA papers print (Table 1 of ICCLD, DAFormer, HRDA, MIC): the mean, then
Road, S.Walk, ..., Bike in Cityscapes train-id order. ``tools/test.py`` switches a config's
``IoUMetric`` / ``SynthiaIoUMetric`` to these, so configs need no change.
"""
import csv
import io
import math
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from mmseg.evaluation.metrics import IoUMetric
from mmseg.registry import METRICS

from .synthia_metric import NOT_IN_SYNTHIA, SynthiaIoUMetric

# Column headings of the papers' tables, by Cityscapes class name (train-id order).
PAPER_HEADINGS = {
    'road': 'Road', 'sidewalk': 'S.Walk', 'building': 'Build.', 'wall': 'Wall',
    'fence': 'Fence', 'pole': 'Pole', 'traffic light': 'T.Light', 'traffic sign': 'T.Sign',
    'vegetation': 'Veget', 'terrain': 'Terrain', 'sky': 'Sky', 'person': 'Person',
    'rider': 'Rider', 'car': 'Car', 'truck': 'Truck', 'bus': 'Bus', 'train': 'Train',
    'motorcycle': 'M.Bike', 'bicycle': 'Bike'
}
PER_CLASS_PREFIX = 'IoU.'


def per_class_iou(results: list, nan_to_num: Optional[float] = None) -> np.ndarray:
    """Per-class IoU (fraction) from ``IoUMetric``'s per-image areas.

    Args:
        results: Per-image ``(intersect, union, pred_area, label_area)``, each
            ``(num_classes, )``.
        nan_to_num: Replacement for NaN (a class in neither prediction nor ground truth).

    Returns:
        ``(num_classes, )`` float64, NaN where the union is empty (unless replaced).
    """
    intersect, union = (torch.stack([torch.as_tensor(r[i]) for r in results]).sum(0)
                        .double().cpu().numpy() for i in (0, 1))
    with np.errstate(divide='ignore', invalid='ignore'):
        iou = intersect / union
    if nan_to_num is not None:
        iou = np.nan_to_num(iou, nan=nan_to_num)
    return iou


class PerClassMixin:
    """Adds ``IoU.<class>`` (percent) to the metrics of an ``IoUMetric`` subclass."""

    def compute_metrics(self, results: list) -> Dict[str, float]:
        """The parent's metrics plus one ``IoU.<class>`` entry per class.

        Args:
            results: Per-image areas, as ``IoUMetric.compute_metrics`` takes them.

        Returns:
            The parent's metrics, then the per-class IoUs in the dataset's class order.
        """
        metrics = super().compute_metrics(results)
        if self.format_only or not results:
            return metrics
        iou = per_class_iou(results, self.nan_to_num)
        for name, value in zip(self.dataset_meta['classes'], iou):
            metrics[PER_CLASS_PREFIX + name] = float(np.round(value * 100, 2))
        return metrics


@METRICS.register_module()
class PerClassIoUMetric(PerClassMixin, IoUMetric):
    """mmseg's ``IoUMetric`` that also returns ``IoU.<class>`` for every class."""


@METRICS.register_module()
class PerClassSynthiaIoUMetric(PerClassMixin, SynthiaIoUMetric):
    """``SynthiaIoUMetric`` (mIoU16, mIoU13) that also returns ``IoU.<class>``."""


# The evaluator types tools/test.py replaces, and by what.
PER_CLASS_VARIANTS = {
    'IoUMetric': 'PerClassIoUMetric',
    'SynthiaIoUMetric': 'PerClassSynthiaIoUMetric',
}


def use_per_class_metrics(evaluator_cfg) -> bool:
    """Switch the IoU metrics of an evaluator config to their per-class variants, in place.

    Args:
        evaluator_cfg: ``test_evaluator``: a metric config or a list of them.

    Returns:
        Whether one of them now returns per-class IoUs.
    """
    metric_cfgs = evaluator_cfg if isinstance(evaluator_cfg, (list, tuple)) else [evaluator_cfg]
    found = False
    for metric_cfg in metric_cfgs:
        kind = metric_cfg.get('type')
        if not isinstance(kind, str):
            continue
        name = kind.rpartition('.')[2]  # also 'mmseg.IoUMetric'
        if name in PER_CLASS_VARIANTS:
            metric_cfg['type'] = PER_CLASS_VARIANTS[name]
            found = True
        elif name in PER_CLASS_VARIANTS.values():
            found = True
    return found


def per_class_table(metrics: Dict[str, float],
                    class_names: Sequence[str]) -> Tuple[List[str], List[Optional[float]]]:
    """The paper table's header and values from per-class metrics.

    Synthia evaluations (``mIoU16`` among the metrics) get the columns mIoU16 and mIoU13 in
    place of mIoU, and no value for terrain, truck and train, as the papers print them.

    Args:
        metrics: Output of a per-class metric: ``mIoU`` (or ``mIoU16``, ``mIoU13``) and
            ``IoU.<class>`` in percent.
        class_names: The evaluation dataset's classes, in train-id order.

    Returns:
        tuple: column names; values in percent, ``None`` where a class is not evaluated
        (Synthia), NaN where it is absent from prediction and ground truth.

    Raises:
        KeyError: When a class has no ``IoU.<class>`` entry (not a per-class metric).
    """
    synthia = 'mIoU16' in metrics
    header = ['mIoU16', 'mIoU13'] if synthia else ['mIoU']
    values: List[Optional[float]] = [float(metrics[key]) for key in header]
    for name in class_names:
        header.append(PAPER_HEADINGS.get(name, name))
        if synthia and name in NOT_IN_SYNTHIA:
            values.append(None)
        else:
            values.append(float(metrics[PER_CLASS_PREFIX + name]))
    return header, values


def _cell(value: Optional[float], missing: str, nan: str) -> str:
    if value is None:
        return missing
    return nan if math.isnan(value) else f'{value:.2f}'


def table_to_csv(method: str, header: Sequence[str], values: Sequence[Optional[float]]) -> str:
    """One CSV header line and one row: empty cells for classes not evaluated, 'nan' for
    classes absent from prediction and ground truth.

    Args:
        method: The row's name (first column, ``Method``).
        header: Column names from :func:`per_class_table`.
        values: Values from :func:`per_class_table`.

    Returns:
        The CSV text.
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator='\n')
    writer.writerow(['Method'] + list(header))
    writer.writerow([method] + [_cell(v, '', 'nan') for v in values])
    return buffer.getvalue()


def table_to_markdown(method: str, header: Sequence[str],
                      values: Sequence[Optional[float]]) -> str:
    """A markdown table with one row: '-' for classes not evaluated, 'n/a' for classes
    absent from prediction and ground truth.

    Args:
        method: The row's name (first column, ``Method``).
        header: Column names from :func:`per_class_table`.
        values: Values from :func:`per_class_table`.

    Returns:
        The markdown text.
    """
    lines = ['| Method | ' + ' | '.join(header) + ' |',
             '|---|' + '---:|' * len(header),
             f'| {method} | ' + ' | '.join(_cell(v, '-', 'n/a') for v in values) + ' |']
    return '\n'.join(lines) + '\n'
