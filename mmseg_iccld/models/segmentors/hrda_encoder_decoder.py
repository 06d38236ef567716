"""HRDA's multi-resolution encoder-decoder (Hoyer et al., ECCV 2022).

Training sees two views of each (1024x1024) crop, both through the same backbone:

- the *context*: the whole crop downscaled by ``context_scale`` (0.5), for long-range layout;
- the *detail*: a random ``hr_crop_size`` (512x512) window of the crop at full resolution,
  its coordinates multiples of ``crop_coord_divisible`` (8 = output stride 4 times the
  scale ratio 2), so that it falls on the cells of both prediction grids.

:class:`~mmseg_iccld.models.decode_heads.hrda_head.HRDAHead` decodes both and fuses them
with its learned scale attention. At inference (evaluation and the DACS teacher's
pseudo-labels) the detail view is the whole image, cut into overlapping ``hr_crop_size``
windows (stride half a window) that go through the backbone as one batch; where windows
overlap, their logits are averaged. Evaluation on large images adds an outer sliding window
(``test_cfg.mode='slide'``), also batched.

The context view's backbone features are the ones the DACS wrapper's ImageNet feature distance
compares with the frozen ImageNet backbone (HRDA's ``feature_scale=0.5``, the only value
its code supports): :meth:`extract_feat`
reports them to ``imnet_feature_tap`` (``models/uda/feature_distance.py``).
"""
from typing import Callable, Dict, List, Optional, Sequence

import torch
import torch.nn.functional as F
from mmseg.models.segmentors.encoder_decoder import EncoderDecoder
from mmseg.registry import MODELS
from mmseg.utils import ConfigType, OptConfigType, OptMultiConfig, OptSampleList, SampleList
from torch import Tensor

from ..decode_heads.hrda_head import Box, HRDAHead, merge_windows


def slide_boxes(height: int, width: int, crop: Sequence[int],
                stride: Sequence[int]) -> List[Box]:
    """Sliding windows over an image, the last row and column flush with its border.

    Args:
        height: Image height.
        width: Image width.
        crop: Window ``(h, w)``; a window larger than the image is clipped to it.
        stride: Step ``(h, w)`` between windows.

    Returns:
        Windows ``(y1, y2, x1, x2)``, row-major.
    """
    (h_crop, w_crop), (h_stride, w_stride) = crop, stride
    rows = max(height - h_crop + h_stride - 1, 0) // h_stride + 1
    cols = max(width - w_crop + w_stride - 1, 0) // w_stride + 1
    boxes = []
    for i in range(rows):
        for j in range(cols):
            y2, x2 = min(i * h_stride + h_crop, height), min(j * w_stride + w_crop, width)
            boxes.append((max(y2 - h_crop, 0), y2, max(x2 - w_crop, 0), x2))
    return boxes


def random_crop_box(height: int, width: int, crop: Sequence[int], divisible: int = 1) -> Box:
    """A uniformly random crop whose top-left corner is a multiple of ``divisible``.

    Every admissible offset ``0, d, 2d, ..., <= height - crop`` is equally likely (the last
    one included; HRDA's draw never reaches it).

    Args:
        height: Image height.
        width: Image width.
        crop: Crop ``(h, w)``, at most the image size.
        divisible: The offsets' divisor.

    Returns:
        ``(y1, y2, x1, x2)``.
    """
    h_crop, w_crop = crop
    if h_crop > height or w_crop > width:
        raise ValueError(f'detail crop {tuple(crop)} is larger than the input {height}x{width}')
    y1 = int(torch.randint((height - h_crop) // divisible + 1, (1, )).item()) * divisible
    x1 = int(torch.randint((width - w_crop) // divisible + 1, (1, )).item()) * divisible
    return y1, y1 + h_crop, x1, x1 + w_crop


def batched_slide_inference(encode_decode: Callable[[Tensor, List[dict]], Tensor],
                            inputs: Tensor, batch_img_metas: List[dict], crop: Sequence[int],
                            stride: Sequence[int]) -> Tensor:
    """mmseg's sliding-window inference with all windows in one batch.

    Args:
        encode_decode: Maps windows ``(M, 3, h, w)`` and their metas to logits
            ``(M, C, h, w)``.
        inputs: Images ``(N, 3, H, W)``.
        batch_img_metas: ``N`` metas; each window's copy gets the window's ``img_shape``.
        crop: Window ``(h, w)``.
        stride: Step ``(h, w)``.

    Returns:
        Logits ``(N, C, H, W)``, averaged where windows overlap.
    """
    n, _, height, width = inputs.shape
    boxes = slide_boxes(height, width, crop, stride)
    windows = torch.cat([inputs[:, :, y1:y2, x1:x2] for y1, y2, x1, x2 in boxes])
    shape = tuple(windows.shape[2:])
    metas = [dict(meta, img_shape=shape, pad_shape=shape)
             for _ in boxes for meta in batch_img_metas]
    logits = encode_decode(windows, metas)
    merged, _ = merge_windows(logits, boxes, n, 1, (height, width))
    return merged


@MODELS.register_module()
class HRDAEncoderDecoder(EncoderDecoder):
    """HRDA: context and detail views of one image, fused by a learned scale attention.

    Args:
        backbone, decode_head, neck, train_cfg, test_cfg, data_preprocessor, pretrained,
            init_cfg: As :class:`EncoderDecoder`; ``decode_head`` must be an ``HRDAHead``.
            ``test_cfg`` may add ``batched_slide`` (default True) to ``mode='slide'``.
        auxiliary_head: Not supported (HRDA has none).
        scales: The detail scale 1 and the context scale, in any order (HRDA: ``[1, 0.5]``);
            ``1 / context scale`` must be an integer.
        hr_crop_size: Detail crop ``(h, w)`` in full-resolution pixels (HRDA: 512x512).
        hr_slide_inference: Detail predictions at inference from sliding windows of
            ``hr_crop_size`` (HRDA: True); False encodes the whole image at once.
        hr_slide_overlapping: Windows at a stride of half their size (True) or side by side.
        crop_coord_divisible: Divisor of the detail crop's offsets (HRDA: 8).

    Attributes:
        imnet_feature_tap: None, or while the DACS wrapper captures a forward pass, the
            callable that receives the input and backbone output of the context view (the
            ImageNet-comparable features, :func:`capture_imnet_features`).
    """

    def __init__(self,
                 backbone: ConfigType,
                 decode_head: ConfigType,
                 neck: OptConfigType = None,
                 auxiliary_head: OptConfigType = None,
                 train_cfg: OptConfigType = None,
                 test_cfg: OptConfigType = None,
                 data_preprocessor: OptConfigType = None,
                 pretrained: Optional[str] = None,
                 init_cfg: OptMultiConfig = None,
                 scales: Sequence[float] = (1, 0.5),
                 hr_crop_size: Sequence[int] = (512, 512),
                 hr_slide_inference: bool = True,
                 hr_slide_overlapping: bool = True,
                 crop_coord_divisible: int = 8) -> None:
        if auxiliary_head is not None:
            raise ValueError('HRDAEncoderDecoder has no auxiliary head')
        super().__init__(backbone=backbone, decode_head=decode_head, neck=neck,
                         train_cfg=train_cfg, test_cfg=test_cfg,
                         data_preprocessor=data_preprocessor, pretrained=pretrained,
                         init_cfg=init_cfg)
        if not isinstance(self.decode_head, HRDAHead):
            raise TypeError(f'HRDAEncoderDecoder needs an HRDAHead, got '
                            f'{type(self.decode_head).__name__}')
        if len(scales) != 2:
            raise ValueError(f'HRDA has two scales (detail 1, context 1 / k), got {scales!r}')
        detail_scale, context_scale = sorted(scales, reverse=True)
        ratio = 1 / context_scale if context_scale > 0 else 0
        if detail_scale != 1 or abs(ratio - round(ratio)) > 1e-6 or ratio < 2:
            raise ValueError(f'scales must be [1, 1 / k] for an integer k >= 2, got {scales!r}')
        self.context_scale = context_scale
        self.scale_ratio = int(round(ratio))
        self.hr_crop_size = tuple(hr_crop_size)
        self.hr_slide_inference = hr_slide_inference
        self.hr_slide_overlapping = hr_slide_overlapping
        self.crop_coord_divisible = crop_coord_divisible
        self.imnet_feature_tap = None

    # ------------------------------------------------------------------ the two views

    def extract_unscaled_feat(self, inputs: Tensor, imnet_view: bool = False) -> List[Tensor]:
        """Backbone (and neck) features of ``inputs`` as they are.

        Args:
            inputs: Images ``(N, 3, h, w)`` of one view.
            imnet_view: Whether this is the view whose backbone features compare with the
                ImageNet backbone's; they are reported to ``imnet_feature_tap`` when it is set.
        """
        x = self.backbone(inputs)
        if imnet_view and self.imnet_feature_tap is not None:
            self.imnet_feature_tap(inputs, x)
        return self.neck(x) if self.with_neck else x

    def context_input(self, inputs: Tensor) -> Tensor:
        """The image at the context scale: ``(N, 3, H, W)`` -> ``(N, 3, sH, sW)``."""
        size = [int(round(s * self.context_scale)) for s in inputs.shape[2:]]
        return F.interpolate(inputs, size=size, mode='bilinear',
                             align_corners=self.align_corners)

    def extract_feat(self, inputs: Tensor) -> List[Tensor]:
        """Backbone features of the context view, the ImageNet-comparable ones (reported to
        ``imnet_feature_tap``)."""
        return self.extract_unscaled_feat(self.context_input(inputs), imnet_view=True)

    def detail_windows(self, height: int, width: int) -> List[Box]:
        """Inference windows of the detail view over an image of ``height x width``."""
        if not self.hr_slide_inference:
            return [(0, height, 0, width)]
        stride = ([c // 2 for c in self.hr_crop_size]
                  if self.hr_slide_overlapping else self.hr_crop_size)
        return slide_boxes(height, width, self.hr_crop_size, stride)

    def hrda_features(self, inputs: Tensor, crop_box: Optional[Box] = None) -> Dict:
        """Features of the context view and of the detail crop or windows.

        Args:
            inputs: Images ``(N, 3, H, W)`` at full resolution.
            crop_box: The training detail crop; None for the inference windows.

        Returns:
            The :class:`HRDAHead` input (``context``, ``detail``, ``boxes``,
            ``scale_ratio``).
        """
        context = self.extract_feat(inputs)
        boxes = [crop_box] if crop_box is not None else self.detail_windows(*inputs.shape[2:])
        # all windows in one batch, window-major
        detail = torch.cat([inputs[:, :, y1:y2, x1:x2] for y1, y2, x1, x2 in boxes])
        return dict(context=context, detail=self.extract_unscaled_feat(detail), boxes=boxes,
                    scale_ratio=self.scale_ratio)

    # ------------------------------------------------------------- mmseg's interface

    def loss(self, inputs: Tensor, data_samples: SampleList) -> dict:
        """Fused, detail (and context) losses with one random detail crop for the batch.

        Args:
            inputs: Images ``(N, 3, H, W)``.
            data_samples: Samples with ``gt_sem_seg`` and optionally ``seg_weight``.

        Returns:
            ``decode.loss_*``, ``decode.acc_seg``, ``decode.hr.*`` (and ``decode.lr.*``).
        """
        box = random_crop_box(*inputs.shape[2:], self.hr_crop_size, self.crop_coord_divisible)
        features = self.hrda_features(inputs, box)
        return self._decode_head_forward_train(features, data_samples)

    def encode_decode(self, inputs: Tensor, batch_img_metas: List[dict]) -> Tensor:
        """Fused logits with sliding detail windows, at the input size.

        Args:
            inputs: Images ``(N, 3, H, W)``.
            batch_img_metas: Metainfo; the first's ``img_shape`` is the output size.

        Returns:
            Logits ``(N, C, H, W)``.
        """
        return self.decode_head.predict(self.hrda_features(inputs), batch_img_metas,
                                        self.test_cfg)

    def _forward(self, inputs: Tensor, data_samples: OptSampleList = None) -> Tensor:
        """Fused logits on the detail grid (output stride 4), before resizing."""
        return self.decode_head.forward(self.hrda_features(inputs))[0]

    def slide_inference(self, inputs: Tensor, batch_img_metas: List[dict]) -> Tensor:
        """Outer sliding windows (``test_cfg.crop_size``, ``stride``), batched by default.

        Args:
            inputs: Images ``(N, 3, H, W)``.
            batch_img_metas: Metainfo of the batch.

        Returns:
            Logits ``(N, C, H, W)``.
        """
        if not self.test_cfg.get('batched_slide', True):
            return super().slide_inference(inputs, batch_img_metas)
        return batched_slide_inference(self.encode_decode, inputs, batch_img_metas,
                                       self.test_cfg['crop_size'], self.test_cfg['stride'])

    def extra_repr(self) -> str:
        return (f'context_scale={self.context_scale}, hr_crop_size={self.hr_crop_size}, '
                f'hr_slide_inference={self.hr_slide_inference}')
