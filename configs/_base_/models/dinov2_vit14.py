# DINOv2 ViT-B/14 (Oquab et al., 2023) in place of MiT-B5 (docs/vfm.md): transformers' ViT-B/14,
# blocks 2, 5, 8, 11 turned into levels at strides 4, 8, 16, 32 by mmseg's Feature2Pyramid
# (mmseg_iccld/models/backbones/dinov2.py), from the official dinov2_vitb14_pretrain.pth.
# The experiment configs *_dinov2_b.py put `backbone` into their segmentor, `channels` into
# its heads, and train it with layer-wise learning-rate decay (LayerDecayOptimWrapperConstructor).
dinov2_b = dict(
    backbone=dict(
        type='DINOv2',
        arch='base',
        img_size=518,
        init_cfg=dict(type='Pretrained', checkpoint='pretrained/dinov2_vitb14_pretrain.pth')),
    channels=[768, 768, 768, 768],
    num_layers=12,
    # VFM-UDA++ (tue-mps/vfm-uda-plusplus, cfgs/vfmudaplusplus_base_gta2city.yaml): decoder lr
    # 5e-5 * sqrt(batch size), the ViT at 0.1x of it (the heads' lr_mult of 10 here), layer
    # decay 0.9. At this project's batch of 2: 5e-5 * sqrt(2) * 0.1 for the ViT.
    lr=7.07e-06,
    layer_decay_rate=0.9)
# DINOv2 ViT-L/14 for the *_dinov2_l.py configs, which take their *_dinov2_b.py sibling and
# swap these values in: blocks 5, 11, 17, 23 at 1024 channels, the official
# dinov2_vitl14_pretrain.pth, and VFM-UDA++'s large-model lr (cfgs/vfmudaplusplus_large_
# gta2city.yaml: 1e-5 * sqrt(batch size) for the decoder) at this batch: 1e-5 * sqrt(2) * 0.1.
dinov2_l = dict(
    dinov2_b,
    backbone=dict(dinov2_b['backbone'], arch='large',
                  init_cfg=dict(type='Pretrained',
                                checkpoint='pretrained/dinov2_vitl14_pretrain.pth')),
    channels=[1024] * 4, num_layers=24, lr=1.41e-06)
