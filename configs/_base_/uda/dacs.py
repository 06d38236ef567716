# DACS as DAFormer trains it (mmseg_iccld/models/uda/dacs.py documents every key).
# The experiment configs wrap their segmentor with it:
#     model = dict(_base_.uda, _delete_=True, model=_base_.model)
uda = dict(
    type='DACS',
    data_preprocessor=dict(
        type='UDADataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True,
        pad_val=0,
        seg_pad_val=255,
        # training batches are padded to a multiple of the MiT's stride (crops already are)
        size_divisor=32),
    alpha=0.999,
    pseudo_threshold=0.968,
    # top, bottom, left, right rows/columns of the 512x512 Cityscapes crop (of 1024x512)
    pseudo_margins=(15, 120, 0, 0),
    color_jitter_strength=0.2,
    color_jitter_probability=0.8,
    blur=True,
    imnet_feature_dist_lambda=0.005,
    imnet_feature_dist_classes=[6, 7, 11, 12, 13, 14, 15, 16, 17, 18],
    imnet_feature_dist_scale_min_ratio=0.75)
# mmengine's default DDP wrapper never calls DACS.train_step; this one wraps the student
# alone and lets train_step run (docs/method.md, 3.3).
model_wrapper_cfg = dict(
    type='MMSeparateDistributedDataParallel',
    find_unused_parameters=True,
    broadcast_buffers=False)
