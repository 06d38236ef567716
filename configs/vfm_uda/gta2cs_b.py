# VFM-UDA (Englert et al., CVPRW 2024; tue-mps/vfm-uda, uda_vit_vanilla.yaml) with DINOv2
# ViT-B/14, GTA5 -> Cityscapes. Paper: 77.1 mIoU.
# - Network: the ViT's last block through VFM-UDA's lightweight head (VFMUDAHead), each
#   1024x1024 crop fed to the ViT at 1120x1120 (input_scale 1.1); no HRDA, no feature distance.
# - UDA: DACS (EMA teacher 0.999, pseudo-label threshold 0.968, ClassMix, rare class sampling,
#   no pseudo-label margins) plus the target masked at 70% (MIC's 64x64 blocks, as VFM-UDA++
#   masks; VFM-UDA masks tokens).
# - Data: GTA5 at short side 1440 and Cityscapes at 1024, each scaled by 0.9-1.1, 1024x1024
#   crops; test on sliding 1024x1024 windows with stride 512 on 2048x1024.
# - Optimisation: AdamW, weight decay 0.01, 1500 warm-up iterations and linear decay over 40k;
#   the head at 5e-5 * sqrt(batch), the ViT at 0.1x of it, no layer-wise decay.
_base_ = [
    '../_base_/default_runtime.py',
    '../_base_/models/dinov2_vit14.py',
    '../_base_/datasets/uda_gta_to_cityscapes_1024x1024.py',
    '../_base_/uda/dacs.py',
    '../_base_/schedules/adamw_poly_40k.py',
]
vfm = _base_.dinov2_b
segmentor = dict(
    type='EncoderDecoder',
    backbone=dict(vfm.backbone, pyramid=False, input_scale=1.1),
    decode_head=dict(
        type='VFMUDAHead', in_channels=vfm.channels[-1], num_classes=19, align_corners=False,
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)),
    train_cfg=dict(),
    test_cfg=dict(mode='slide', crop_size=(1024, 1024), stride=(512, 512)))
model = dict(
    _base_.uda, model=segmentor, pseudo_margins=(0, 0, 0, 0),
    imnet_feature_dist_lambda=0.0,
    mask_consistency=dict(
        mask_ratio=0.7, mask_block_size=64, loss_weight=1.0, color_augmentation=True))
# 0.9-1.1 random scales around the resolutions of the HR dataset config; no pseudo-label
# margins in the target pipeline
source_train_pipeline = [
    dict(type='RandomResize', scale=t.scale, ratio_range=(0.9, 1.1), keep_ratio=True)
    if t.type == 'Resize' else t for t in _base_.source_train_pipeline]
target_train_pipeline = [
    dict(type='RandomResize', scale=t.scale, ratio_range=(0.9, 1.1), keep_ratio=True)
    if t.type == 'Resize' else t for t in _base_.target_train_pipeline
    if t.type != 'PseudoLabelMargins']
train_dataloader = dict(dataset=dict(
    source=dict(pipeline=source_train_pipeline), target=dict(pipeline=target_train_pipeline)))
# VFM-UDA's lr at this project's batch of 2: 5e-5 * sqrt(2) for the head, 0.1x for the ViT
optim_wrapper = dict(
    constructor='LayerDecayOptimWrapperConstructor',
    optimizer=dict(lr=vfm.lr),
    paramwise_cfg=dict(num_layers=vfm.num_layers, layer_decay_rate=1.0))
