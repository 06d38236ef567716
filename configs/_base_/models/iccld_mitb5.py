# ICCLD with a MiT-B5 encoder (SegFormer's mit-b5), as in the paper's experiments.
# E = MiT-B5 + the neck's latent projector; eps_theta = a light diffusers UNet2DModel;
# D = InterCoderHead (DAFormer-sized context fusion + long skips from every stage).
norm_cfg = dict(type='BN', requires_grad=True)
num_classes = 19
model = dict(
    type='ICCLD',
    data_preprocessor=None,  # the UDA wrapper owns it
    pretrained=None,
    phase=1,
    loss_ldm_weight=1.0,
    # phase 2: D reads the x0-estimate of the sampler's own K-step chain from m_T ~ N(0, I)
    # (what it reads at test time), and L_seg trains every step of that chain
    decoder_input='sampled',
    chain_grad='all',
    detach_mask_estimate=False,
    backbone=dict(
        type='MixVisionTransformerSDPA',
        in_channels=3,
        embed_dims=64,
        num_stages=4,
        num_layers=[3, 6, 40, 3],
        num_heads=[1, 2, 5, 8],
        patch_sizes=[7, 3, 3, 3],
        sr_ratios=[8, 4, 2, 1],
        out_indices=(0, 1, 2, 3),
        mlp_ratio=4,
        qkv_bias=True,
        drop_rate=0.0,
        attn_drop_rate=0.0,
        drop_path_rate=0.1,
        init_cfg=dict(type='Pretrained', checkpoint='pretrained/mit_b5.pth')),
    neck=dict(
        type='LatentProjector',
        in_channels=[64, 128, 320, 512],
        latent_channels=256,
        latent_stride=4,
        norm_cfg=norm_cfg),
    diffusion=dict(
        type='MaskDiffusion',
        num_classes=num_classes,
        latent_channels=256,
        cond_channels=64,
        mask_scale=1.0,
        block_out_channels=(32, 64, 128),
        layers_per_block=1,
        norm_num_groups=16,
        num_train_timesteps=1000,
        # v keeps the x0-estimate well conditioned at every t (eq. 2 stays on the noise)
        prediction_type='v_prediction',
        beta_schedule='squaredcos_cap_v2',
        timestep_spacing='trailing'),
    decode_head=dict(
        type='InterCoderHead',
        in_channels=[64, 128, 320, 512],
        in_index=[0, 1, 2, 3],
        channels=256,
        latent_channels=256,
        dilations=(1, 6, 12, 18),
        dropout_ratio=0.1,
        num_classes=num_classes,
        norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode=dict(
            type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0, avg_non_ignore=False)),
    train_cfg=dict(),
    test_cfg=dict(mode='whole', num_inference_steps=3, num_samples=1, seed=0))
