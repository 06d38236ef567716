# A tiny ICCLD for CPU training on 128x128 crops: the tiny MiT of mit_tiny.py (16-128 channels,
# one layer per stage), a 2-level UNet and a narrow head. No pretrained weights.
_base_ = ['./mit_tiny.py']
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
    chain_grad='all',
    # the chain's estimate against the label code (not in the paper; 0 leaves it out): the
    # steps the sampler takes then learn a segmentation, the estimate D reads
    # (docs/findings.md)
    chain_loss_weight=1.0,
    neck=dict(
        type='LatentProjector',
        in_channels=[16, 32, 80, 128],
        latent_channels=32,
        latent_stride=4,
        norm_cfg=norm_cfg),
    diffusion=dict(
        type='MaskDiffusion',
        num_classes=num_classes,
        latent_channels=32,
        cond_channels=16,
        mask_scale=1.0,
        # a UNet much lighter than the encoder, as MiT-B5's (6.5 of 69 GMACs per image)
        block_out_channels=(16, 32),
        layers_per_block=1,
        norm_num_groups=8,
        num_train_timesteps=1000,
        # v keeps the x0-estimate well conditioned at every t (eq. 2 stays on the noise)
        prediction_type='v_prediction',
        beta_schedule='squaredcos_cap_v2',
        timestep_spacing='trailing'),
    decode_head=dict(
        type='InterCoderHead',
        in_channels=[16, 32, 80, 128],
        in_index=[0, 1, 2, 3],
        channels=32,
        latent_channels=32,
        dilations=(1, 6, 12, 18),
        dropout_ratio=0.1,
        num_classes=num_classes,
        norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode=dict(
            type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0, avg_non_ignore=False)),
    train_cfg=dict(),
    test_cfg=dict(mode='whole', num_inference_steps=3, num_samples=1, seed=0))
