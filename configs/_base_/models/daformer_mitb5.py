# DAFormer (Hoyer et al., CVPR 2022): MiT-B5 encoder + context-aware fusion decoder.
# The encoder starts from SegFormer's ImageNet-1k MiT-B5 weights, converted to mmseg's keys
# with mmseg's tools/model_converters/mit2mmseg.py (see mmseg_iccld/engine/pretrained_files.py).
# daformer_mit_tiny.py's network at MiT-B5's size.
_base_ = ['./daformer_mit_tiny.py']
model = dict(
    backbone=dict(
        type='MixVisionTransformerSDPA',
        embed_dims=64,
        num_layers=[3, 6, 40, 3],
        init_cfg=dict(type='Pretrained', checkpoint='pretrained/mit_b5.pth')),
    decode_head=dict(in_channels=[64, 128, 320, 512], channels=256, embed_dims=256))
