# HRDA (Hoyer et al., ECCV 2022) with DAFormer's network (MiT-B5 + DAFormerHead): the head
# decodes a context view (the 1024x1024 crop at half resolution) and a 512x512 detail crop at
# full resolution, and a learned per-class scale attention fuses them
# (mmseg_iccld/models/segmentors/hrda_encoder_decoder.py, decode_heads/hrda_head.py).
_base_ = ['./daformer_mitb5.py']
model = dict(
    type='HRDAEncoderDecoder',
    decode_head=dict(
        _delete_=True,
        type='HRDAHead',
        # DAFormer's head decodes both scales
        single_scale_head=_base_.model.decode_head,
        # a light copy of it (1x1 fusion instead of the ASPP) predicts the attention
        attention_embed_dims=256,
        attention_classwise=True,
        # detail loss lambda_d; the context prediction alone is not supervised
        hr_loss_weight=0.1,
        lr_loss_weight=0.0),
    # full resolution for the detail crop, half resolution for the context
    scales=[1, 0.5],
    hr_crop_size=(512, 512),
    # output stride 4 times the scale ratio 2: the crop falls on both prediction grids
    crop_coord_divisible=8,
    # detail predictions at inference from overlapping 512 windows (stride 256), batched
    hr_slide_inference=True,
    hr_slide_overlapping=True,
    # evaluation on 2048x1024: overlapping 1024x1024 windows, stride 512, batched
    test_cfg=dict(mode='slide', batched_slide=True, crop_size=(1024, 1024), stride=(512, 512)))
