# ICCLD-HR with a MiT-B5 encoder: iccld_mitb5.py's network in hrda_mitb5.py's views (a
# 1024x1024 crop's context at half resolution and a 512x512 detail crop, per-class scale
# attention, batched sliding windows). The mask diffusion runs on the context view, the
# detail view's D reads its crop of the context's estimate (docs/method.md 6.3).
_base_ = ['./iccld_mitb5.py']
model = dict(
    type='ICCLDHR',
    decode_head=dict(
        _delete_=True,
        type='ICCLDHRHead',
        single_scale_head=_base_.model.decode_head,
        attention_embed_dims=256,
        attention_classwise=True,
        hr_loss_weight=0.1,
        lr_loss_weight=0.0),
    scales=[1, 0.5],
    hr_crop_size=(512, 512),
    crop_coord_divisible=8,
    hr_slide_inference=True,
    hr_slide_overlapping=True,
    test_cfg=dict(mode='slide', batched_slide=True, crop_size=(1024, 1024), stride=(512, 512)))
