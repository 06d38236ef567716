"""VFM-UDA's lightweight head (Englert et al., CVPRW 2024): the last ViT block, upsampled x4.

VFM-UDA puts almost nothing on top of DINOv2: the normalised patch tokens of the last block
(stride 14) go through two stride-2 transposed convolutions (C -> C/2 -> C/4, each followed by
a channel LayerNorm, GELU after the first), a 3x3 convolution with a LayerNorm, and a 1x1
classifier without bias initialised with std 0.1; no dropout. The logits come at stride 3.5 and
are resized to the labels (mmseg's loss) or the image (prediction) as any head's.
"""
import torch.nn as nn
from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from mmseg.models.utils import LayerNorm2d
from mmseg.registry import MODELS


@MODELS.register_module()
class VFMUDAHead(BaseDecodeHead):
    """Two transposed convolutions and a 3x3 convolution on one ViT token map.

    Args:
        in_channels: Channels ``C`` of the token map (the ViT's width); ``C`` must be a
            multiple of 4.
        in_index: Which of the backbone's outputs to read (the last block: -1).
        **kwargs: The rest of ``BaseDecodeHead``'s arguments (``num_classes``,
            ``loss_decode``, ``align_corners``, ...); ``channels`` is ``C // 4`` and
            ``dropout_ratio`` 0, as VFM-UDA's head has them.
    """

    def __init__(self, in_channels: int, in_index: int = -1, **kwargs) -> None:
        if in_channels % 4:
            raise ValueError(f'VFMUDAHead: in_channels must be a multiple of 4, got '
                             f'{in_channels}')
        kwargs.setdefault('dropout_ratio', 0.0)
        kwargs.setdefault('init_cfg', dict(type='Normal', std=0.1, override=dict(
            name='conv_seg')))
        super().__init__(in_channels, in_channels // 4, in_index=in_index, **kwargs)
        half, quarter = in_channels // 2, in_channels // 4
        self.upscale = nn.Sequential(
            nn.ConvTranspose2d(in_channels, half, kernel_size=2, stride=2, bias=False),
            LayerNorm2d(half),
            nn.GELU(),
            nn.ConvTranspose2d(half, quarter, kernel_size=2, stride=2, bias=False),
            LayerNorm2d(quarter),
            nn.Conv2d(quarter, quarter, kernel_size=3, padding=1, bias=False),
            LayerNorm2d(quarter))
        self.conv_seg = nn.Conv2d(quarter, self.out_channels, kernel_size=1, bias=False)

    def forward(self, inputs):
        """Logits ``(N, num_classes, 4h, 4w)`` of the ``(N, C, h, w)`` token map."""
        return self.cls_seg(self.upscale(self._transform_inputs(inputs)))
