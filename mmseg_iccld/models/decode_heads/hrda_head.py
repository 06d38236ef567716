"""HRDA's multi-resolution decode head (Hoyer et al., ECCV 2022, sec. 3.2-3.3).

One single-scale head (DAFormer's) decodes both the low-resolution *context* input and the
high-resolution *detail* crop(s). A light copy of it, the scale attention head, reads the
context features and predicts per class and pixel how much to trust the detail prediction:

    fused = up(a) * detail + up((1 - a) * context),    a = sigmoid(attention(context))

``up`` is the bilinear upsampling from the context grid to the detail grid (factor
``detail_scale / context_scale``, 2 for HRDA). Weighting the context logits before the
upsampling is the order of HRDA's code; where ``a`` and the context logits are locally
constant it is ``a * detail + (1 - a) * context``. During training the detail
prediction exists only inside the detail crop, so ``a`` is zeroed outside it (on the context
grid) and the fused prediction there is the context prediction alone.

Training supervises the fused logits with weight ``1 - hr_loss_weight - lr_loss_weight`` and
the detail logits, against the label cropped to the detail crop, with ``hr_loss_weight``
(HRDA: 0.1); the context logits alone get ``lr_loss_weight`` (HRDA: 0, not computed).
"""
from copy import deepcopy
from typing import Dict, List, Sequence, Tuple, Union

import torch
import torch.nn as nn
from mmcv.cnn import ConvModule
from mmengine.structures import PixelData
from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from mmseg.models.utils import resize
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample
from mmseg.utils import ConfigType, SampleList, add_prefix
from torch import Tensor

from ..losses.pixel_weighted import loss_by_feat_weighted

# (y1, y2, x1, x2) in pixels of the detail-scale (full-resolution) input
Box = Tuple[int, int, int, int]
# BaseDecodeHead arguments the HRDA head takes over from its single-scale head's config
_SHARED_KEYS = ('in_channels', 'channels', 'num_classes', 'out_channels', 'threshold',
                'dropout_ratio', 'conv_cfg', 'norm_cfg', 'act_cfg', 'in_index',
                'input_transform', 'loss_decode', 'ignore_index', 'sampler', 'align_corners')


def scale_box(box: Box, stride: int) -> Box:
    """Divide a box by a grid stride; it must fall on the grid.

    Args:
        box: ``(y1, y2, x1, x2)`` in input pixels.
        stride: Input pixels per grid cell.

    Returns:
        The box in grid cells.

    Raises:
        ValueError: If a coordinate is not a multiple of ``stride`` (the prediction would be
            pasted off by a fraction of a cell; HRDA makes crop coordinates divisible by 8).
    """
    if any(c % stride for c in box):
        raise ValueError(f'box {tuple(box)} does not fall on the grid of stride {stride}: '
                         'crop and window coordinates and sizes must be multiples of it')
    return tuple(c // stride for c in box)


def merge_windows(window_logits: Tensor, boxes: Sequence[Box], batch_size: int, stride: int,
                  size: Tuple[int, int]) -> Tuple[Tensor, Tensor]:
    """Paste the predictions of windows into one map, averaging where windows overlap.

    Args:
        window_logits: ``(K * N, C, h, w)``, window-major: rows ``k * N .. (k + 1) * N - 1``
            belong to window ``k``.
        boxes: The ``K`` windows ``(y1, y2, x1, x2)`` in input pixels.
        batch_size: ``N``.
        stride: Input pixels per cell of ``window_logits``.
        size: ``(H, W)`` of the merged map, in cells.

    Returns:
        tuple: merged logits ``(N, C, H, W)`` (0 where no window lies) and the window count
        ``(1, 1, H, W)`` of every cell.
    """
    n = batch_size
    merged = window_logits.new_zeros((n, window_logits.shape[1], *size))
    count = window_logits.new_zeros((1, 1, *size))
    for k, box in enumerate(boxes):
        y1, y2, x1, x2 = scale_box(box, stride)
        window = window_logits[k * n:(k + 1) * n]
        if window.shape[2:] != (y2 - y1, x2 - x1) or y2 > size[0] or x2 > size[1]:
            raise ValueError(f'window {k} predicts {tuple(window.shape[2:])} cells for the '
                             f'box {tuple(box)} at stride {stride} in a {tuple(size)} map')
        merged[:, :, y1:y2, x1:x2] += window
        count[:, :, y1:y2, x1:x2] += 1
    return merged / count.clamp(min=1), count


def box_mask(boxes: Sequence[Box], size: Tuple[int, int], stride: int,
             like: Tensor) -> Tensor:
    """1 on the cells covered by any box, 0 elsewhere.

    Args:
        boxes: ``(y1, y2, x1, x2)`` in input pixels.
        size: ``(h, w)`` of the grid.
        stride: Input pixels per grid cell.
        like: Gives dtype and device.

    Returns:
        Mask ``(1, 1, h, w)``.
    """
    mask = like.new_zeros((1, 1, *size))
    for box in boxes:
        y1, y2, x1, x2 = scale_box(box, stride)
        mask[:, :, y1:y2, x1:x2] = 1
    return mask


def fuse_scales(context_logits: Tensor, attention: Tensor, detail_logits: Tensor,
                ratio: int, align_corners: bool = False) -> Tensor:
    """HRDA's fusion ``up(a) * detail + up((1 - a) * context)``.

    Args:
        context_logits: ``(N, C, h, w)`` on the context grid.
        attention: ``(N, C, h, w)`` or ``(N, 1, h, w)`` in ``[0, 1]``, on the context grid.
        detail_logits: ``(N, C, ratio * h, ratio * w)`` on the detail grid (0 where there is
            no detail prediction).
        ratio: Detail-grid cells per context-grid cell along each side.
        align_corners: Of the bilinear upsampling.

    Returns:
        Fused logits ``(N, C, ratio * h, ratio * w)``.
    """
    size = tuple(ratio * s for s in context_logits.shape[2:])
    if tuple(detail_logits.shape[2:]) != size:
        raise ValueError(f'detail logits {tuple(detail_logits.shape[2:])} do not match the '
                         f'context grid {tuple(context_logits.shape[2:])} times {ratio}')
    context = resize((1 - attention) * context_logits, size=size, mode='bilinear',
                     align_corners=align_corners)
    attention = resize(attention, size=size, mode='bilinear', align_corners=align_corners)
    return attention * detail_logits + context


def crop_data_samples(data_samples: SampleList, box: Box) -> List[SegDataSample]:
    """Data samples whose label (and ``seg_weight``) are cropped to ``box``.

    Args:
        data_samples: Samples with ``gt_sem_seg`` ``(1, H, W)``, optionally ``seg_weight``.
        box: ``(y1, y2, x1, x2)`` in label pixels.

    Returns:
        New samples with the same metainfo.
    """
    y1, y2, x1, x2 = box
    cropped = []
    for sample in data_samples:
        new = SegDataSample(metainfo=sample.metainfo)
        new.gt_sem_seg = PixelData(data=sample.gt_sem_seg.data[:, y1:y2, x1:x2])
        if 'seg_weight' in sample:
            new.seg_weight = PixelData(data=sample.seg_weight.data[:, y1:y2, x1:x2])
        cropped.append(new)
    return cropped


@MODELS.register_module()
class HRDAAttentionHead(BaseDecodeHead):
    """HRDA's scale attention head: DAFormer's decoder with a 1x1 fusion instead of the ASPP.

    Each stage is embedded by a 1x1 conv, brought to the first stage's resolution and
    concatenated; a 1x1 conv + norm + ReLU fuses them to ``channels``, and the classifier
    gives one attention logit per class (or one for all classes).

    Args:
        in_channels: Channels of the selected encoder stages.
        channels: Fused channels (HRDA: 256, the attention embedding size).
        embed_dims: Channels each stage is embedded to (HRDA: 256).
        **kwargs: ``BaseDecodeHead`` arguments; ``input_transform`` is ``'multiple_select'``.
    """

    def __init__(self, in_channels: Sequence[int], channels: int,
                 embed_dims: Union[int, Sequence[int]] = 256, **kwargs) -> None:
        kwargs['input_transform'] = 'multiple_select'
        super().__init__(in_channels, channels, **kwargs)
        if isinstance(embed_dims, int):
            embed_dims = [embed_dims] * len(self.in_channels)
        self.embed_layers = nn.ModuleList(
            nn.Conv2d(in_ch, dims, kernel_size=1)
            for in_ch, dims in zip(self.in_channels, embed_dims))
        self.fusion = ConvModule(sum(embed_dims), self.channels, kernel_size=1,
                                 conv_cfg=self.conv_cfg, norm_cfg=self.norm_cfg,
                                 act_cfg=self.act_cfg)

    def forward(self, inputs: Tuple[Tensor]) -> Tensor:
        """Attention logits (before the sigmoid).

        Args:
            inputs: Backbone features, stage ``i`` of shape ``(N, C_i, H_i, W_i)``.

        Returns:
            ``(N, num_classes, H_0, W_0)``.
        """
        stages = self._transform_inputs(inputs)
        size = stages[0].shape[2:]
        embedded = [resize(embed(x), size=size, mode='bilinear',
                           align_corners=self.align_corners)
                    for x, embed in zip(stages, self.embed_layers)]
        return self.cls_seg(self.fusion(torch.cat(embedded, dim=1)))


@MODELS.register_module()
class HRDAHead(BaseDecodeHead):
    """HRDA's head: a single-scale head for both scales, scale attention and fusion.

    Its input (built by :class:`HRDAEncoderDecoder`) is a dict:

    - ``context``: backbone features of the context input (the image at the context scale);
    - ``detail``: backbone features of ``K`` detail windows, window-major along the batch
      (``K = 1``: the random training crop; ``K > 1``: the sliding windows of inference);
    - ``boxes``: the ``K`` windows ``(y1, y2, x1, x2)`` in full-resolution pixels;
    - ``scale_ratio``: detail scale / context scale (2 for HRDA).

    Args:
        single_scale_head: Config of the head used at both scales (HRDA: ``DAFormerHead``).
            Its ``BaseDecodeHead`` arguments (classes, loss, ignore index, ...) are this
            head's as well.
        attention_embed_dims: Embedding and fused channels of the attention head (HRDA: 256).
        attention_classwise: One attention map per class (HRDA) or one for all classes.
        hr_loss_weight: Weight of the detail loss (HRDA: 0.1).
        lr_loss_weight: Weight of a loss on the context prediction alone (HRDA: 0).
    """

    # loss_by_feat multiplies the data samples' seg_weight in (DACS pseudo-label weights)
    supports_seg_weight = True

    def __init__(self, single_scale_head: ConfigType, attention_embed_dims: int = 256,
                 attention_classwise: bool = True, hr_loss_weight: float = 0.1,
                 lr_loss_weight: float = 0.0) -> None:
        head_cfg = deepcopy(dict(single_scale_head))
        shared = {k: head_cfg[k] for k in _SHARED_KEYS if k in head_cfg}
        if 'in_index' in shared and not isinstance(shared['in_index'], int):
            shared.setdefault('input_transform', 'multiple_select')
        # no init_cfg: the classifier this base class would initialise is deleted below
        super().__init__(init_cfg=None, **shared)
        del self.conv_seg
        del self.dropout
        if hr_loss_weight + lr_loss_weight >= 1:
            raise ValueError('the fused loss weighs 1 - hr_loss_weight - lr_loss_weight, '
                             f'got {hr_loss_weight} and {lr_loss_weight}')
        self.head = MODELS.build(head_cfg)
        in_channels, in_index = head_cfg['in_channels'], head_cfg.get('in_index', -1)
        if isinstance(in_channels, int):  # a head reading one stage
            in_channels, in_index = [in_channels], [in_index]
        self.scale_attention = HRDAAttentionHead(
            in_channels=in_channels,
            in_index=in_index,
            channels=attention_embed_dims,
            embed_dims=attention_embed_dims,
            num_classes=self.num_classes if attention_classwise else 1,
            dropout_ratio=head_cfg.get('dropout_ratio', 0.1),
            conv_cfg=head_cfg.get('conv_cfg'),
            norm_cfg=head_cfg.get('norm_cfg'),
            act_cfg=head_cfg.get('act_cfg', dict(type='ReLU')),
            align_corners=self.align_corners)
        self.hr_loss_weight = hr_loss_weight
        self.lr_loss_weight = lr_loss_weight

    def decode_view(self, view) -> Tensor:
        """The single-scale head's logits of one view (its backbone features)."""
        return self.head(view)

    def view_stages(self, view) -> Sequence[Tensor]:
        """The backbone features of one view, which the scale attention reads."""
        return view

    def attention(self, context_features: Sequence[Tensor], boxes: Sequence[Box],
                  stride: int, masked: bool) -> Tensor:
        """Scale attention on the context grid, zero outside the detail windows if masked.

        Args:
            context_features: Backbone features of the context input.
            boxes: Detail windows in full-resolution pixels.
            stride: Full-resolution pixels per context-grid cell (8 for HRDA).
            masked: Zero the attention where no window lies.

        Returns:
            ``(N, C or 1, h, w)`` in ``[0, 1]``.
        """
        attention = torch.sigmoid(self.scale_attention(context_features))
        if masked:
            attention = attention * box_mask(boxes, attention.shape[2:], stride, attention)
        return attention

    def forward(self, inputs: Dict) -> Tuple[Tensor, Tensor, Tensor]:
        """Context, detail and fused logits.

        Args:
            inputs: See the class docstring.

        Returns:
            tuple: fused logits ``(N, C, rh, rw)`` on the detail grid (``r`` =
            ``scale_ratio``), context logits ``(N, C, h, w)`` and the detail windows' logits
            ``(K * N, C, h_d, w_d)``.
        """
        boxes, ratio = inputs['boxes'], int(inputs['scale_ratio'])
        context_logits = self.decode_view(inputs['context'])
        detail_logits = self.decode_view(inputs['detail'])
        n = context_logits.shape[0]
        y1, y2 = boxes[0][:2]
        if (y2 - y1) % detail_logits.shape[2]:
            raise ValueError(f'detail windows of {y2 - y1} rows give {detail_logits.shape[2]} '
                             'rows of logits: not an integer output stride')
        stride = (y2 - y1) // detail_logits.shape[2]
        size = tuple(ratio * s for s in context_logits.shape[2:])
        detail, count = merge_windows(detail_logits, boxes, n, stride, size)
        # HRDA masks the attention to the training crop; sliding windows cover everything
        attention = self.attention(self.view_stages(inputs['context']), boxes, stride * ratio,
                                   masked=bool((count == 0).any()))
        fused = fuse_scales(context_logits, attention, detail, ratio, self.align_corners)
        return fused, context_logits, detail_logits

    def loss(self, inputs: Dict, batch_data_samples: SampleList, train_cfg: ConfigType) -> dict:
        """Losses of one training crop.

        Args:
            inputs: See the class docstring; ``boxes`` holds the one detail crop.
            batch_data_samples: Samples with ``gt_sem_seg`` and optionally ``seg_weight``.
            train_cfg: Unused (mmseg's signature).

        Returns:
            See :meth:`loss_by_feat`.
        """
        return self.loss_by_feat(self.forward(inputs), batch_data_samples, inputs['boxes'])

    def loss_by_feat(self, seg_logits: Tuple[Tensor, Tensor, Tensor],
                     batch_data_samples: SampleList, boxes: Sequence[Box] = ()) -> dict:
        """Weighted fused loss, detail loss on the cropped label, optional context loss.

        Args:
            seg_logits: The output of :meth:`forward`.
            batch_data_samples: Samples with ``gt_sem_seg`` ``(1, H, W)`` and optionally
                ``seg_weight`` (multiplied in, as every head DACS trains).
            boxes: The one detail crop (needed when ``hr_loss_weight > 0``).

        Returns:
            ``loss_*`` and ``acc_seg`` of the fused logits; ``hr.*`` of the detail crop and
            ``lr.*`` of the context logits where their weights are positive. Loss terms are
            already multiplied by their weights.
        """
        fused, context, detail = seg_logits

        def weighted(logits: Tensor, samples: SampleList, weight: float) -> dict:
            losses = loss_by_feat_weighted(self, logits, samples)
            return {k: v * weight if k.startswith('loss') else v for k, v in losses.items()}

        losses = weighted(fused, batch_data_samples,
                          1 - self.hr_loss_weight - self.lr_loss_weight)
        if self.lr_loss_weight > 0:
            losses.update(add_prefix(
                weighted(context, batch_data_samples, self.lr_loss_weight), 'lr'))
        if self.hr_loss_weight > 0:
            if len(boxes) != 1:
                raise ValueError(f'the detail loss needs the one training crop, got {boxes!r}')
            cropped = crop_data_samples(batch_data_samples, boxes[0])
            losses.update(add_prefix(weighted(detail, cropped, self.hr_loss_weight), 'hr'))
        return losses

    def predict(self, inputs: Dict, batch_img_metas: List[dict],
                test_cfg: ConfigType) -> Tensor:
        """Fused logits resized to the input size (``img_shape`` of the first meta).

        Args:
            inputs: See the class docstring.
            batch_img_metas: Metainfo of the batch.
            test_cfg: Unused (mmseg's signature).

        Returns:
            ``(N, C, H, W)``.
        """
        return self.predict_by_feat(self.forward(inputs)[0], batch_img_metas)
