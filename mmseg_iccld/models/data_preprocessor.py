"""Data preprocessor for source/target UDA batches."""
from typing import Any, Dict

from mmseg.models.data_preprocessor import SegDataPreProcessor
from mmseg.registry import MODELS

TARGET_KEYS = ('target_inputs', 'target_data_samples')


@MODELS.register_module()
class UDADataPreprocessor(SegDataPreProcessor):
    """``SegDataPreProcessor`` that also prepares the target half of a UDA batch.

    A UDA batch (from ``UDADataset``) carries ``inputs``, ``data_samples``,
    ``target_inputs`` and ``target_data_samples``; each half goes through
    ``SegDataPreProcessor.forward`` on its own (channel conversion, normalisation, padding,
    stacking), so source and target may differ in size. A batch without the target keys
    (validation, test, source-only training) is handled exactly as by
    ``SegDataPreProcessor``.

    Args:
        **kwargs: The arguments of ``SegDataPreProcessor`` (``mean``, ``std``, ``size``,
            ``size_divisor``, ``pad_val``, ``seg_pad_val``, ``bgr_to_rgb``,
            ``rgb_to_bgr``, ``batch_augments``, ``test_cfg``); the same settings apply to
            both halves.
    """

    def forward(self, data: dict, training: bool = False) -> Dict[str, Any]:
        """Normalise, pad and stack one batch.

        Args:
            data: Collated batch: ``inputs`` (list of ``(3, H, W)`` uint8 tensors) and
                ``data_samples``, plus ``target_inputs`` (list of ``(3, H', W')``) and
                ``target_data_samples`` for UDA batches.
            training: Whether the batch is a training batch (padding to ``size`` /
                ``size_divisor`` and batch augmentations, as ``SegDataPreProcessor``).

        Returns:
            ``dict(inputs=(N, 3, H, W) float, data_samples)``, plus
            ``target_inputs=(N, 3, H', W') float`` and ``target_data_samples`` when the
            batch carried a target half.
        """
        has_target = [key in data for key in TARGET_KEYS]
        if not any(has_target):
            return super().forward(data, training)
        if not all(has_target):
            missing = [k for k, present in zip(TARGET_KEYS, has_target) if not present]
            raise KeyError(f'UDADataPreprocessor: a UDA batch needs both {TARGET_KEYS}, '
                           f'missing {missing}.')
        source = {k: v for k, v in data.items() if k not in TARGET_KEYS}
        target = dict(inputs=data['target_inputs'], data_samples=data['target_data_samples'])
        source = super().forward(source, training)
        target = super().forward(target, training)
        return dict(
            inputs=source['inputs'],
            data_samples=source['data_samples'],
            target_inputs=target['inputs'],
            target_data_samples=target['data_samples'])
