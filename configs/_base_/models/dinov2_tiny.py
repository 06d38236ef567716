# A DINOv2-shaped ViT/14 small enough to train on CPU (docs/vfm.md): transformers' DINOv2 with
# 64-channel tokens, 4 blocks of 2 heads (all four taken), position embeddings stored at
# 126 / 14 = 9 x 9. Trained from scratch: no pretrained file exists at this size.
# `segmentor` is what the tiny configs change in the tiny DAFormer network, `optim_wrapper`
# what they change in its optimisation (layer-wise learning-rate decay).
dinov2_tiny = dict(
    segmentor=dict(
        backbone=dict(
            _delete_=True,
            type='DINOv2',
            arch='small',
            img_size=126,
            vit_cfg=dict(hidden_size=64, num_hidden_layers=4, num_attention_heads=2)),
        decode_head=dict(in_channels=[64, 64, 64, 64])),
    optim_wrapper=dict(
        constructor='LayerDecayOptimWrapperConstructor',
        paramwise_cfg=dict(num_layers=4, layer_decay_rate=0.9)))
