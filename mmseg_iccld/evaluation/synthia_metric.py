"""mIoU over the 16 and 13 Synthia classes, for Synthia -> Cityscapes adaptation.

Synthia has no terrain, truck or train, so the UDA literature reports the mean IoU over the
other 16 Cityscapes classes (mIoU16), and over 13 of them, leaving out wall, fence and pole
(mIoU13). The per-class IoUs are the ordinary 19-class ones (a pixel of terrain predicted as
vegetation still counts against vegetation); only the mean is taken over fewer classes.
DAFormer-style code instead prints the 19-class mIoU and rescales it by 19/16, which is only
exact when the three missing classes score zero.
"""
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
from mmengine.logging import MMLogger, print_log
from prettytable import PrettyTable

from mmseg.evaluation.metrics import IoUMetric
from mmseg.registry import METRICS

NOT_IN_SYNTHIA = ('terrain', 'truck', 'train')
NOT_IN_13 = ('wall', 'fence', 'pole')


@METRICS.register_module()
class SynthiaIoUMetric(IoUMetric):
    """IoU metric over the Synthia classes of a 19-class Cityscapes evaluation.

    Classes are picked by name from the dataset's metainfo, so the model and the evaluation
    set keep the 19 Cityscapes classes. Reported keys (percent, two decimals as mmseg):

    - ``mIoU16``: mean IoU over the 16 Synthia classes; ``mIoU`` holds the same value, so
      ``save_best='mIoU'`` and the logs work unchanged.
    - ``mIoU13``: mean IoU over the 16 minus wall, fence and pole.
    - ``aAcc``: pixel accuracy over the pixels whose ground truth is one of the 16 classes.
    - ``mAcc``: mean per-class accuracy over the 16 classes.

    The per-class table (IoU, Acc) of the 16 classes is printed in the log.

    Args:
        ignore_index: Label ignored in evaluation.
        nan_to_num: If given, NaN per-class values (a class absent from both prediction and
            ground truth) are replaced by it before averaging; else they are left out.
        **kwargs: Other ``IoUMetric`` arguments (``collect_device``, ``output_dir``,
            ``format_only``, ``prefix``); ``iou_metrics`` may only be ``['mIoU']``.
    """

    def __init__(self,
                 ignore_index: int = 255,
                 iou_metrics: Sequence[str] = ('mIoU', ),
                 nan_to_num: Optional[int] = None,
                 **kwargs) -> None:
        if isinstance(iou_metrics, str):
            iou_metrics = [iou_metrics]
        if list(iou_metrics) != ['mIoU']:
            raise ValueError(f"SynthiaIoUMetric computes mIoU only; got iou_metrics="
                             f"{list(iou_metrics)}, expected ['mIoU'].")
        super().__init__(
            ignore_index=ignore_index, iou_metrics=['mIoU'], nan_to_num=nan_to_num, **kwargs)

    def compute_metrics(self, results: list) -> Dict[str, float]:
        """Compute the Synthia metrics from the accumulated areas.

        Args:
            results: Per-image ``(intersect, union, pred_area, label_area)``, each of
                shape ``(num_classes,)``, from ``IoUMetric.intersect_and_union``.

        Returns:
            ``{'aAcc', 'mIoU', 'mIoU16', 'mIoU13', 'mAcc'}`` in percent.
        """
        logger: MMLogger = MMLogger.get_current_instance()
        if self.format_only:
            return OrderedDict()
        class_names = list(self.dataset_meta['classes'])
        idx16 = self.class_indices(class_names, NOT_IN_SYNTHIA)
        idx13 = self.class_indices(class_names, NOT_IN_SYNTHIA + NOT_IN_13)

        intersect, union, _, label_area = (
            torch.stack([torch.as_tensor(r[i]) for r in results]).sum(0).double().numpy()
            for i in range(4))
        with np.errstate(divide='ignore', invalid='ignore'):
            iou = intersect / union
            acc = intersect / label_area
            all_acc = intersect[idx16].sum() / label_area[idx16].sum()
        if self.nan_to_num is not None:
            iou = np.nan_to_num(iou, nan=self.nan_to_num)
            acc = np.nan_to_num(acc, nan=self.nan_to_num)

        miou16 = self._percent(np.nanmean(iou[idx16]))
        metrics = OrderedDict(
            aAcc=self._percent(all_acc),
            mIoU=miou16,
            mIoU16=miou16,
            mIoU13=self._percent(np.nanmean(iou[idx13])),
            mAcc=self._percent(np.nanmean(acc[idx16])))

        table = PrettyTable()
        table.add_column('Class', [class_names[i] for i in idx16])
        table.add_column('IoU', [self._percent(v) for v in iou[idx16]])
        table.add_column('Acc', [self._percent(v) for v in acc[idx16]])
        print_log('per class results (16 Synthia classes):', logger)
        print_log('\n' + table.get_string(), logger=logger)
        return metrics

    @staticmethod
    def class_indices(class_names: List[str], excluded: Sequence[str]) -> List[int]:
        """Indices of ``class_names`` without ``excluded``, checking the names exist.

        Args:
            class_names: The evaluation dataset's classes (the 19 Cityscapes classes).
            excluded: Names to leave out.

        Returns:
            Indices into ``class_names``, in order.
        """
        missing = [name for name in excluded if name not in class_names]
        if missing:
            raise ValueError(
                f'SynthiaIoUMetric expects the 19 Cityscapes classes in the dataset '
                f'metainfo; {missing} are not among {class_names}.')
        return [i for i, name in enumerate(class_names) if name not in excluded]

    @staticmethod
    def _percent(value: float) -> float:
        return float(np.round(value * 100, 2))
