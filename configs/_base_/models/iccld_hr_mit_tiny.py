# ICCLD-HR on the tiny MiT of iccld_mit_tiny.py, for 256x256 crops on CPU: hrda_mit_tiny.py's
# views (128x128 detail crop, 256x256 evaluation windows, 32-channel attention) around
# ICCLD's network (docs/method.md 6.3: the diffusion runs on the context view).
_base_ = ['./iccld_mit_tiny.py']
model = dict(
    type='ICCLDHR',
    decode_head=dict(
        _delete_=True,
        type='ICCLDHRHead',
        # D decodes both views; the scale attention reads the stages D reads
        single_scale_head=_base_.model.decode_head,
        attention_embed_dims=32,
        attention_classwise=True,
        hr_loss_weight=0.1,
        lr_loss_weight=0.0),
    scales=[1, 0.5],
    hr_crop_size=(128, 128),
    # a multiple of the context latent's cell (latent stride 4 / scale 0.5 = 8 pixels)
    crop_coord_divisible=8,
    hr_slide_inference=True,
    hr_slide_overlapping=True,
    test_cfg=dict(mode='slide', batched_slide=True, crop_size=(256, 256), stride=(128, 128)))
