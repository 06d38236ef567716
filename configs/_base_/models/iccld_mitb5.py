# ICCLD with a MiT-B5 encoder (SegFormer's mit-b5), as in the paper's experiments.
# E = MiT-B5 + the neck's latent projector; eps_theta = a light diffusers UNet2DModel;
# D = InterCoderHead (DAFormer-sized context fusion + long skips from every stage).
# iccld_mit_tiny.py's network at MiT-B5's size.
_base_ = ['./iccld_mit_tiny.py']
model = dict(
    backbone=dict(
        type='MixVisionTransformerSDPA',
        embed_dims=64,
        num_layers=[3, 6, 40, 3],
        init_cfg=dict(type='Pretrained', checkpoint='pretrained/mit_b5.pth')),
    neck=dict(in_channels=[64, 128, 320, 512], latent_channels=256),
    diffusion=dict(latent_channels=256, cond_channels=64, block_out_channels=(32, 64, 128),
                   norm_num_groups=16),
    decode_head=dict(in_channels=[64, 128, 320, 512], channels=256, latent_channels=256))
