# configs/iccld/gta2cs_dinov2_b.py with a DINOv2 ViT-L/14 encoder (docs/vfm.md).
_base_ = ['./gta2cs_dinov2_b.py']
vfm = _base_.dinov2_l
model = dict(model=dict(backbone=dict(vfm.backbone, _delete_=True),
                        neck=dict(in_channels=vfm.channels),
                        decode_head=dict(in_channels=vfm.channels)))
optim_wrapper = dict(model=dict(
    optimizer=dict(lr=vfm.lr),
    paramwise_cfg=dict(num_layers=vfm.num_layers, layer_decay_rate=vfm.layer_decay_rate)))
