# The tiny MiT encoder of the CPU-sized models (daformer_mit_tiny.py, iccld_mit_tiny.py): four
# stages of one block each with 16/32/80/128 channels and MiT-B5's heads, patch sizes and
# reduction ratios. Trained from scratch: no pretrained file exists at this size.
model = dict(
    backbone=dict(
        type='MixVisionTransformer',
        in_channels=3,
        embed_dims=16,
        num_stages=4,
        num_layers=[1, 1, 1, 1],
        num_heads=[1, 2, 5, 8],
        patch_sizes=[7, 3, 3, 3],
        sr_ratios=[8, 4, 2, 1],
        out_indices=(0, 1, 2, 3),
        mlp_ratio=4,
        qkv_bias=True,
        drop_rate=0.0,
        attn_drop_rate=0.0,
        drop_path_rate=0.1))
