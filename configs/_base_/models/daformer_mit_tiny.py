# A DAFormer-shaped model small enough to train on CPU: a 4-stage MiT with one block per
# stage and 16/32/80/128 channels, and a DAFormerHead with 32-channel embeddings.
# Trained from scratch: no pretrained file exists at this size.
_base_ = ['./mit_tiny.py']
norm_cfg = dict(type='BN', requires_grad=True)
data_preprocessor = dict(
    type='SegDataPreProcessor',
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    bgr_to_rgb=True,
    pad_val=0,
    seg_pad_val=255,
    # training batches are padded to a multiple of the MiT's stride (crops already are)
    size_divisor=32)
model = dict(
    type='EncoderDecoder',
    data_preprocessor=data_preprocessor,
    decode_head=dict(
        type='DAFormerHead',
        in_channels=[16, 32, 80, 128],
        in_index=[0, 1, 2, 3],
        channels=32,
        embed_dims=32,
        dilations=(1, 6, 12, 18),
        dropout_ratio=0.1,
        num_classes=19,
        norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))
