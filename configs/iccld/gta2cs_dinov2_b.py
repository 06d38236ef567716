# ICCLD with a DINOv2 ViT-B/14 encoder (docs/vfm.md), GTA5 -> Cityscapes: configs/iccld/gta2cs.py
# with the backbone swapped (the latent projector and the inter-coder head read the four
# 768-channel levels), the segmentor's optimizer with VFM-UDA++'s learning rates and layer-wise
# decay (the discriminator's Adam unchanged), and no ImageNet feature distance (VFM-UDA drops it).
_base_ = ['./gta2cs.py', '../_base_/models/dinov2_vit14.py']
vfm = _base_.dinov2_b
model = dict(
    imnet_feature_dist_lambda=0.0,
    model=dict(backbone=dict(vfm.backbone, _delete_=True),
               neck=dict(in_channels=vfm.channels),
               decode_head=dict(in_channels=vfm.channels)))
optim_wrapper = dict(model=dict(
    constructor='LayerDecayOptimWrapperConstructor',
    optimizer=dict(lr=vfm.lr),
    paramwise_cfg=dict(num_layers=vfm.num_layers, layer_decay_rate=vfm.layer_decay_rate)))
