# Source-only training with DAFormer's ImageNet feature distance, as HRDA trains its
# domain-generalisation models (mmseg_iccld/models/uda/source_only.py documents every key):
# DACS's preprocessor and feature distance, no teacher, no target.
#     model = dict(_base_.uda, _delete_=True, model=_base_.model)
_base_ = ['dacs.py']
uda = dict(
    _delete_=True,
    type='SourceOnly',
    data_preprocessor=_base_.uda.data_preprocessor,
    imnet_feature_dist_lambda=_base_.uda.imnet_feature_dist_lambda,
    imnet_feature_dist_classes=_base_.uda.imnet_feature_dist_classes,
    imnet_feature_dist_scale_min_ratio=_base_.uda.imnet_feature_dist_scale_min_ratio)
