"""DACS unsupervised domain adaptation as DAFormer, HRDA and MIC train it.

DACS (Tranheden et al., WACV 2021) trains a student on labelled source images and on
ClassMix images that paste source classes onto target images labelled by an EMA teacher.
DAFormer (Hoyer et al., CVPR 2022) adds the ImageNet feature distance and the pseudo-label
margins; HRDA keeps this loop, MIC adds a pass to it, ICCLD adds a pass and a step.

One iteration is a fixed sequence of named parts (``docs/method.md``, 3.1), methods that a
subclass overrides or extends; a :class:`~.iteration.UDAIteration` carries their results:

1. ``begin_iteration``: preprocess; at iteration 0 the teacher and the frozen ImageNet
   backbone copy the student;
2. ``source_pass``: source loss plus feature distance, one backward;
3. ``label_target``: teacher pseudo-labels of the unaugmented target, one confidence weight;
4. ``mix_domains``: ClassMix with color jitter and Gaussian blur;
5. ``mixed_pass``: mixed loss with the pixel weights, one backward;
6. ``extra_passes``: further passes, each with its own backward: a method's own first
   (ICCLD's ``target_pass``), then MIC's ``masked_pass``;
7. ``student_step``: the student's one optimizer step;
8. ``after_student_step``: none in DACS (ICCLD: the discriminator's step);
9. ``teacher_step``: the teacher's EMA update;
10. ``finish_iteration``: the log variables.
"""
from collections import OrderedDict
from typing import Dict, Optional, Sequence, Tuple, Type, Union

import torch
import torch.nn as nn
from mmengine.optim import OptimWrapper, OptimWrapperDict
from mmseg.registry import MODELS
from mmseg.utils import ConfigType, OptConfigType, OptMultiConfig, SampleList
from torch import Tensor

from .pixel_weights import bind_pixel_weighted_loss, weighted_data_samples
from .base import UDAModel
from .iteration import UDAIteration
from .masking import MaskedImageConsistency
from .mixed_batch import ClassMixStep
from .pseudo_label import pseudo_labels_and_weights
from .teacher import EMATeacher

# Cityscapes train ids of DAFormer's "thing" classes: traffic light, traffic sign, person,
# rider, car, truck, bus, train, motorcycle, bicycle.
CITYSCAPES_THING_CLASSES = (6, 7, 11, 12, 13, 14, 15, 16, 17, 18)


@MODELS.register_module()
class DACS(ClassMixStep, UDAModel):
    """DACS with DAFormer's additions around any mmseg segmentor.

    Children: ``model`` (the student, trained and evaluated), ``teacher`` (EMA of the
    student, :class:`EMATeacher`), ``imnet_backbone`` (frozen copy of the student's initial
    backbone; only when the feature distance is on) and ``data_preprocessor``.

    Args:
        model: Config (or module) of any mmseg segmentor with a ``backbone``; its decode
            heads must honour ``seg_weight`` (stock heads are adapted automatically).
        data_preprocessor: Config of the batch preprocessor, normally
            ``UDADataPreprocessor`` (normalises ``inputs`` and ``target_inputs``). Its
            ``mean``/``std`` are also used to de-normalise for the color jitter.
        alpha: Final EMA decay of the teacher; the decay of update ``t`` is
            ``min(1 - 1 / (t + 1), alpha)``. DAFormer: 0.999.
        pseudo_threshold: Max softmax probability a target pixel needs to count as
            confident; the pseudo-label weight is the batch's fraction of such pixels.
            DAFormer: 0.968.
        pseudo_margins: ``(top, bottom, left, right)`` pixels of the target crop whose
            pseudo-label weight is 0. DAFormer on Cityscapes 512x512 crops: ``(15, 120, 0, 0)``.
        color_jitter_strength: Brightness, contrast, saturation and hue strength of the
            color jitter on mixed images. DAFormer: 0.2.
        color_jitter_probability: Probability of color-jittering a batch of mixed images.
            DAFormer: 0.8.
        blur: Whether mixed images are Gaussian-blurred with probability 0.5
            (sigma ~ U(0.15, 1.15), kernel about 10% of the side).
        imnet_feature_dist_lambda: Weight of the ImageNet feature distance; 0 turns it off
            (and no frozen backbone is kept). DAFormer: 0.005.
        imnet_feature_dist_classes: Classes whose pixels enter the feature distance; None
            for all pixels. DAFormer: the Cityscapes thing classes.
        imnet_feature_dist_scale_min_ratio: Majority ratio a feature cell's class needs when
            the label is downscaled to the feature grid. DAFormer: 0.75.
        nonfinite: What a NaN or infinite loss term does: ``'raise'`` or ``'skip'`` the step.
        mask_consistency: MIC's masked image consistency (``docs/method.md``, 7), an extra
            pass of any subclass too: the arguments of :class:`MaskedImageConsistency`
            (``mask_ratio``, ``mask_block_size``, ``loss_weight``, ``color_augmentation``);
            None turns it off.
        channels_last: Keep the 4-d weights of student, teacher and ImageNet backbone, and the
            preprocessed images, in the channels-last memory format (the layout GPU
            convolution kernels prefer). The same computation up to rounding.
        compile_modules: Student submodules run through ``torch.compile`` (:class:`UDAModel`).
        compile_cfg: Keyword arguments of ``torch.compile``.
        init_cfg: Initialisation config of this wrapper (the student has its own).
    """

    # the state one iteration hands from part to part; a subclass may extend it
    iteration_type: Type[UDAIteration] = UDAIteration

    def __init__(self,
                 model: Union[ConfigType, nn.Module],
                 data_preprocessor: OptConfigType = None,
                 alpha: float = 0.999,
                 pseudo_threshold: float = 0.968,
                 pseudo_margins: Sequence[int] = (0, 0, 0, 0),
                 color_jitter_strength: float = 0.2,
                 color_jitter_probability: float = 0.8,
                 blur: bool = True,
                 imnet_feature_dist_lambda: float = 0.005,
                 imnet_feature_dist_classes: Optional[Sequence[int]] = CITYSCAPES_THING_CLASSES,
                 imnet_feature_dist_scale_min_ratio: float = 0.75,
                 nonfinite: str = 'raise',
                 mask_consistency: Optional[dict] = None,
                 channels_last: bool = False,
                 compile_modules: Sequence[str] = (),
                 compile_cfg: Optional[dict] = None,
                 init_cfg: OptMultiConfig = None) -> None:
        if len(pseudo_margins) != 4:
            raise ValueError('pseudo_margins is (top, bottom, left, right), got '
                             f'{pseudo_margins!r}')
        super().__init__(model, data_preprocessor=data_preprocessor, nonfinite=nonfinite,
                         channels_last=channels_last, compile_modules=compile_modules,
                         compile_cfg=compile_cfg, init_cfg=init_cfg)
        bind_pixel_weighted_loss(self.model)
        self.teacher = EMATeacher(self.model, alpha=alpha)

        self.pseudo_threshold = pseudo_threshold
        self.pseudo_margins = tuple(int(m) for m in pseudo_margins)
        self.color_jitter_strength = color_jitter_strength
        self.color_jitter_probability = color_jitter_probability
        self.blur = blur
        self.mask_consistency = (None if mask_consistency is None else
                                 MaskedImageConsistency(**mask_consistency))
        self.keep_imnet_backbone(imnet_feature_dist_lambda, imnet_feature_dist_classes,
                                 imnet_feature_dist_scale_min_ratio)
        self.apply_speed_options()

    @property
    def alpha(self) -> float:
        """The teacher's final EMA decay (held by the teacher)."""
        return self.teacher.alpha

    def train_step(self, data: Union[dict, tuple, list],
                   optim_wrapper: Union[OptimWrapper, OptimWrapperDict]) -> Dict[str, Tensor]:
        """One iteration: the parts in their fixed order (module docstring).

        Args:
            data: A UDA batch: ``inputs``, ``data_samples``, ``target_inputs``,
                ``target_data_samples``, collated (the data preprocessor normalises it) or
                already preprocessed.
            optim_wrapper: The student's optimizer wrapper, or an ``OptimWrapperDict`` whose
                ``'model'`` entry is (and which holds the other networks' wrappers).

        Returns:
            Detached log variables: ``loss`` (total), ``src.*``, ``mix.*``,
            ``masked.*`` (with MIC) and ``pseudo_weight``.
        """
        it = self.begin_iteration(data, optim_wrapper)
        self.source_pass(it)
        self.label_target(it)
        self.mix_domains(it)
        self.mixed_pass(it)
        self.extra_passes(it)
        self.student_step(it)
        self.after_student_step(it)
        self.teacher_step(it)
        return self.finish_iteration(it)

    # ------------------------------------------------------------ parts of an iteration

    def begin_iteration(self, data: Union[dict, tuple, list],
                        optim_wrapper: Union[OptimWrapper, OptimWrapperDict]) -> UDAIteration:
        """Preprocess the batch, copy the student at iteration 0, open the loss guard.

        Returns:
            The iteration's state (:attr:`iteration_type`).
        """
        student_wrapper = self.student_optim_wrapper(optim_wrapper)
        data = self.preprocess(data)
        if self.teacher.host_steps == 0:
            self.initialize_frozen_copies()
        self.loss_guard.begin(self)
        return self.iteration_type(data=data, optim_wrapper=student_wrapper,
                                   optim_wrappers=optim_wrapper)

    def source_pass(self, it: UDAIteration) -> None:
        """Source loss and feature distance (:meth:`source_losses`), one backward."""
        data = it.data
        self.student_pass(it, 'src',
                          lambda: self.source_losses(data['inputs'], data['data_samples']))

    def label_target(self, it: UDAIteration) -> None:
        """The teacher's pseudo-labels of the target and their weights (:meth:`pseudo_label`)."""
        it.pseudo_labels, it.pseudo_weights, it.pseudo_weight = self.pseudo_label(
            it.data['target_inputs'], it.data['target_data_samples'])

    def mix_domains(self, it: UDAIteration) -> None:
        """ClassMix of source onto pseudo-labelled target, augmented (:meth:`mix`)."""
        data = it.data
        it.mixed_inputs, it.mixed_samples = self.mix(
            data['inputs'], data['data_samples'], data['target_inputs'], it.pseudo_labels,
            it.pseudo_weights)

    def mixed_pass(self, it: UDAIteration) -> None:
        """Weighted loss on the mixed batch (:meth:`mixed_losses`), one backward."""
        self.student_pass(it, 'mix', lambda: self.mixed_losses(it.mixed_inputs, it.mixed_samples))

    def extra_passes(self, it: UDAIteration) -> None:
        """Passes after the mixed one, each with its own backward, before the student step.

        DACS has none of its own; with ``mask_consistency``, MIC's :meth:`masked_pass`. A
        subclass runs its own passes first and then calls this, so that the plug-in comes
        last and leaves the random draws of the method's own passes as they are without it.
        """
        if self.mask_consistency is not None:
            self.masked_pass(it)

    def masked_pass(self, it: UDAIteration) -> None:
        """MIC: the masked, color-augmented target against the pseudo-labels, one backward."""
        data = it.data
        inputs, samples = self.mask_consistency.masked_batch(
            data['target_inputs'], data['target_data_samples'], it.pseudo_labels,
            it.pseudo_weights, self.photometric_augmentation)
        self.student_pass(it, 'masked', lambda: self.masked_losses(inputs, samples))

    def student_step(self, it: UDAIteration) -> None:
        """The student's one optimizer step; a skipped iteration only drops the gradients."""
        if not self.loss_guard.skip_step():
            it.optim_wrapper.step()
        it.optim_wrapper.zero_grad()

    def after_student_step(self, it: UDAIteration) -> None:
        """Work after the student's step, before the teacher's update; none in DACS."""

    def teacher_step(self, it: UDAIteration) -> None:
        """The teacher's EMA update (:meth:`update_teacher`), unless the iteration is skipped."""
        if not self.loss_guard.skip_step():
            self.update_teacher()

    def finish_iteration(self, it: UDAIteration) -> Dict[str, Tensor]:
        """The detached log variables: total loss, the passes' terms, the pseudo weight."""
        log_vars = OrderedDict(loss=it.total_loss())
        log_vars.update(it.log_vars)
        log_vars['pseudo_weight'] = it.pseudo_weight
        log_vars.update(self.loss_guard.log_vars())
        return log_vars

    # ------------------------------------------------- what the parts compute

    def initialize_frozen_copies(self) -> None:
        """Iteration 0: the teacher and the ImageNet backbone copy the initialised student.

        Both are submodules, so checkpoints hold them and a resumed run (teacher ``steps``
        > 0) does not copy again.
        """
        self.teacher.update_parameters(self.student)
        if self.imnet_backbone is not None:
            self.imnet_backbone.load_state_dict(self.student.backbone.state_dict())

    @torch.no_grad()
    def pseudo_label(self, inputs: Tensor,
                     data_samples: SampleList) -> Tuple[Tensor, Tensor, Tensor]:
        """Teacher pseudo-labels of the unaugmented target batch and their pixel weights.

        Args:
            inputs: Target images ``(N, 3, H, W)``.
            data_samples: Target data samples (their labels are never used).

        Returns:
            tuple: labels ``(N, H, W)`` long; pixel weights ``(N, H, W)`` float (the batch's
            confident fraction, 0 on the margins); that fraction as a 0-dim tensor.
        """
        logits = self.teacher_logits(inputs, data_samples)
        return pseudo_labels_and_weights(logits, self.pseudo_threshold, self.pseudo_margins,
                                         data_samples)

    def teacher_logits(self, inputs: Tensor, data_samples: SampleList) -> Tensor:
        """Teacher logits at the input resolution (its ``encode_decode``: HRDA's sliding
        windows, ICCLD's chain).

        Args:
            inputs: Target images ``(N, 3, H, W)``.
            data_samples: Target data samples (their metainfo is passed on).

        Returns:
            Logits ``(N, C, H, W)``.
        """
        size = tuple(inputs.shape[2:])
        metas = [dict(sample.metainfo, img_shape=size, pad_shape=size)
                 for sample in data_samples]
        return self.teacher.module.encode_decode(inputs, metas)

    def mixed_losses(self, inputs: Tensor, data_samples: SampleList, **kwargs) -> dict:
        """Weighted loss of the student on the mixed batch.

        Args:
            inputs: Mixed images ``(N, 3, H, W)``.
            data_samples: Mixed data samples with ``gt_sem_seg`` and ``seg_weight``.
            **kwargs: Passed to the student's ``forward``; ``mode`` defaults to 'loss'.

        Returns:
            The student's losses (or its output in another ``mode``).
        """
        kwargs.setdefault('mode', 'loss')
        return self.model(inputs, data_samples, **kwargs)

    def masked_losses(self, inputs: Tensor, data_samples: SampleList, **kwargs) -> dict:
        """MIC: the student's losses on the masked target, times ``loss_weight``.

        Args:
            inputs: Masked target images ``(N, 3, H, W)``.
            data_samples: Samples with the pseudo-labels and their weights.
            **kwargs: Passed to the student's ``forward``; ``mode`` defaults to 'loss'.

        Returns:
            The weighted loss dict.
        """
        kwargs.setdefault('mode', 'loss')
        return self.mask_consistency.weigh(self.model(inputs, data_samples, **kwargs))

    def update_teacher(self) -> None:
        """EMA update of the teacher, after the optimizer step."""
        self.teacher.update_parameters(self.student)

    # ------------------------------------------------------------------------- helpers

    # a method, so that subclasses build their pseudo-labelled samples the same way
    build_data_samples = staticmethod(weighted_data_samples)
