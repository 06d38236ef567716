# configs/vfm_uda/gta2cs_b.py with DINOv2 ViT-L/14 (uda_vit_vanilla.yaml with dinov2_vitl14,
# the same learning rates). Paper: 78.4 mIoU.
_base_ = ['./gta2cs_b.py']
vfm = _base_.dinov2_l
model = dict(model=dict(backbone=dict(vfm.backbone, pyramid=False, input_scale=1.1),
                        decode_head=dict(in_channels=vfm.channels[-1])))
optim_wrapper = dict(paramwise_cfg=dict(num_layers=vfm.num_layers))
