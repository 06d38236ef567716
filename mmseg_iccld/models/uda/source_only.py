"""Source-only training with DAFormer's ImageNet feature distance: domain generalisation.

HRDA's domain-generalisation runs (Hoyer et al., PAMI 2023) train DAFormer and HRDA on GTA5
alone and test on real datasets never seen in training. They keep what acts on the source
(rare class sampling in the dataset, the ImageNet feature distance here) and drop what needs
target images (teacher, pseudo-labels, ClassMix). MIC's code runs them as DACS with
``source_only=True``; here that is its own model: the student and the frozen ImageNet copy,
one pass, one step. Its batches hold source samples alone (``UDADataset(target=None)``).
"""
from collections import OrderedDict
from typing import Dict, Optional, Sequence, Union

import torch.nn as nn
from mmengine.optim import OptimWrapper, OptimWrapperDict
from mmseg.registry import MODELS
from mmseg.utils import ConfigType, OptConfigType, OptMultiConfig
from torch import Tensor

from .base import UDAModel
from .dacs import CITYSCAPES_THING_CLASSES
from .iteration import UDAIteration


@MODELS.register_module()
class SourceOnly(UDAModel):
    """A student trained on labelled source images, with the ImageNet feature distance.

    Children: ``model`` (the student, trained and evaluated), ``imnet_backbone`` (frozen copy
    of the student's initialised backbone; only when the feature distance is on) and
    ``data_preprocessor``.

    Args:
        model: Config (or module) of any mmseg segmentor with a ``backbone``.
        data_preprocessor: Config of the batch preprocessor (``UDADataPreprocessor``, or
            mmseg's ``SegDataPreProcessor``).
        imnet_feature_dist_lambda: Weight of the feature distance; 0 turns it off. DAFormer
            and HRDA: 0.005.
        imnet_feature_dist_classes: Classes whose pixels enter it; None for all pixels.
            DAFormer: the Cityscapes thing classes.
        imnet_feature_dist_scale_min_ratio: Majority ratio of a feature cell's class. 0.75.
        nonfinite: What a NaN or infinite loss term does: ``'raise'`` or ``'skip'`` the step.
        channels_last: Channels-last weights and images (:class:`UDAModel`).
        compile_modules: Student submodules run through ``torch.compile``.
        compile_cfg: Keyword arguments of ``torch.compile``.
        init_cfg: Initialisation config of this wrapper (the student has its own).
    """

    def __init__(self,
                 model: Union[ConfigType, nn.Module],
                 data_preprocessor: OptConfigType = None,
                 imnet_feature_dist_lambda: float = 0.005,
                 imnet_feature_dist_classes: Optional[Sequence[int]] = CITYSCAPES_THING_CLASSES,
                 imnet_feature_dist_scale_min_ratio: float = 0.75,
                 nonfinite: str = 'raise',
                 channels_last: bool = False,
                 compile_modules: Sequence[str] = (),
                 compile_cfg: Optional[dict] = None,
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(model, data_preprocessor=data_preprocessor, nonfinite=nonfinite,
                         channels_last=channels_last, compile_modules=compile_modules,
                         compile_cfg=compile_cfg, init_cfg=init_cfg)
        self.keep_imnet_backbone(imnet_feature_dist_lambda, imnet_feature_dist_classes,
                                 imnet_feature_dist_scale_min_ratio)
        self.apply_speed_options()

    def init_weights(self) -> None:
        """Initialise the student (its pretrained backbone), then copy it into the frozen one.

        A checkpoint loaded afterwards (``load_from``, ``--resume``) brings its own copy.
        """
        super().init_weights()
        if self.imnet_backbone is not None:
            self.imnet_backbone.load_state_dict(self.student.backbone.state_dict())

    def train_step(self, data: Union[dict, tuple, list],
                   optim_wrapper: Union[OptimWrapper, OptimWrapperDict]) -> Dict[str, Tensor]:
        """One iteration: the source loss and feature distance, one backward, one step.

        Args:
            data: A batch of source samples (``inputs``, ``data_samples``); target samples,
                if the batch has them, are not read.
            optim_wrapper: The student's optimizer wrapper (or a dict holding it as
                ``'model'``).

        Returns:
            Detached log variables: ``loss`` and the ``src.*`` terms.
        """
        student_wrapper = self.student_optim_wrapper(optim_wrapper)
        data = self.preprocess(data)
        self.loss_guard.begin(self)
        it = UDAIteration(data=data, optim_wrapper=student_wrapper,
                          optim_wrappers=optim_wrapper)
        self.student_pass(it, 'src',
                          lambda: self.source_losses(data['inputs'], data['data_samples']))
        if not self.loss_guard.skip_step():
            student_wrapper.step()
        student_wrapper.zero_grad()
        log_vars = OrderedDict(loss=it.total_loss())
        log_vars.update(it.log_vars)
        log_vars.update(self.loss_guard.log_vars())
        return log_vars
