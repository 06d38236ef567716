# HRDA on the tiny MiT of daformer_mit_tiny.py, for 256x256 crops on CPU: the same structure
# as hrda_mitb5.py at a quarter of the size (128x128 detail crop, 256x256 evaluation
# windows) with 32-channel attention embeddings (the tiny DAFormer head's width).
_base_ = ['./daformer_mit_tiny.py']
model = dict(
    type='HRDAEncoderDecoder',
    decode_head=dict(
        _delete_=True,
        type='HRDAHead',
        single_scale_head=_base_.model.decode_head,
        attention_embed_dims=32,
        attention_classwise=True,
        hr_loss_weight=0.1,
        lr_loss_weight=0.0),
    scales=[1, 0.5],
    hr_crop_size=(128, 128),
    crop_coord_divisible=8,
    hr_slide_inference=True,
    hr_slide_overlapping=True,
    test_cfg=dict(mode='slide', batched_slide=True, crop_size=(256, 256), stride=(128, 128)))
