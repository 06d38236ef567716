# HRDA with a DINOv2 ViT-B/14 encoder (docs/vfm.md), GTA5 -> Cityscapes: configs/hrda/gta2cs.py
# with the backbone swapped (the 512x512 context and detail views are padded to 518 inside it),
# the DAFormer head on the four 768-channel levels, VFM-UDA++'s learning rates with layer-wise
# decay, and no ImageNet feature distance (VFM-UDA drops it).
_base_ = ['./gta2cs.py', '../_base_/models/dinov2_vit14.py']
vfm = _base_.dinov2_b
model = dict(
    imnet_feature_dist_lambda=0.0,
    model=dict(backbone=dict(vfm.backbone, _delete_=True),
               decode_head=dict(single_scale_head=dict(in_channels=vfm.channels))))
optim_wrapper = dict(
    constructor='LayerDecayOptimWrapperConstructor',
    optimizer=dict(lr=vfm.lr),
    paramwise_cfg=dict(num_layers=vfm.num_layers, layer_decay_rate=vfm.layer_decay_rate))
