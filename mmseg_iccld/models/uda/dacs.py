"""DACS unsupervised domain adaptation as DAFormer, HRDA and MIC train it.

DACS (Tranheden et al., WACV 2021) trains a student on labelled source images and on
ClassMix images that paste source classes onto target images labelled by an EMA teacher.
DAFormer (Hoyer et al., CVPR 2022) adds the ImageNet feature distance and the pseudo-label
margins; HRDA and MIC keep this loop. One iteration (``docs/method.md``, 3.1):

1. iteration 0 only: the teacher and the frozen ImageNet backbone copy the student;
2. source loss plus feature distance, one backward;
3. teacher pseudo-label on the unaugmented target, one confidence weight per batch;
4. ClassMix with color jitter and Gaussian blur;
5. mixed loss with the pixel weights, one backward;
6. one optimizer step, then the teacher's EMA update.
"""
from collections import OrderedDict
from copy import deepcopy
from typing import Dict, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
from mmengine.optim import OptimWrapper, OptimWrapperDict
from mmseg.registry import MODELS
from mmseg.utils import ConfigType, OptConfigType, OptMultiConfig, SampleList
from torch import Tensor

from .pixel_weights import bind_pixel_weighted_loss, weighted_data_samples
from .base import UDAModel
from .classmix import class_mix, class_mix_masks, color_jitter, gaussian_blur
from .feature_distance import feature_distance_loss
from .masking import MaskedImageConsistency
from .pseudo_label import pseudo_label_from_logits, pseudo_weight_map
from .teacher import EMATeacher

# Cityscapes train ids of DAFormer's "thing" classes: traffic light, traffic sign, person,
# rider, car, truck, bus, train, motorcycle, bicycle.
CITYSCAPES_THING_CLASSES = (6, 7, 11, 12, 13, 14, 15, 16, 17, 18)


@MODELS.register_module()
class DACS(UDAModel):
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
        mask_consistency: MIC's masked image consistency (``docs/method.md``, MIC): the
            arguments of :class:`MaskedImageConsistency` (``mask_ratio``,
            ``mask_block_size``, ``loss_weight``, ``color_augmentation``); None turns it off.
        channels_last: Keep the 4-d weights of student, teacher and ImageNet backbone, and the
            preprocessed images, in the channels-last memory format (the layout GPU
            convolution kernels prefer). The same computation up to rounding.
        compile_modules: Student submodules run through ``torch.compile`` (:class:`UDAModel`).
        compile_cfg: Keyword arguments of ``torch.compile``.
        init_cfg: Initialisation config of this wrapper (the student has its own).
    """

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
        if not hasattr(self.model, 'backbone'):
            raise TypeError(f'DACS needs a segmentor with a backbone, got '
                            f'{type(self.model).__name__}')
        bind_pixel_weighted_loss(self.model)
        self.teacher = EMATeacher(self.model, alpha=alpha)

        self.pseudo_threshold = pseudo_threshold
        self.pseudo_margins = tuple(int(m) for m in pseudo_margins)
        self.color_jitter_strength = color_jitter_strength
        self.color_jitter_probability = color_jitter_probability
        self.blur = blur
        self.imnet_feature_dist_lambda = imnet_feature_dist_lambda
        self.imnet_feature_dist_classes = (None if imnet_feature_dist_classes is None else
                                           tuple(imnet_feature_dist_classes))
        self.imnet_feature_dist_scale_min_ratio = imnet_feature_dist_scale_min_ratio
        self.mask_consistency = (None if mask_consistency is None else
                                 MaskedImageConsistency(**mask_consistency))
        if self.mask_consistency is not None and type(self).train_step is not DACS.train_step:
            # a subclass with its own iteration would silently skip the masked loss
            raise ValueError(f'{type(self).__name__} has its own train_step, which does not '
                             'run the masked image consistency (mask_consistency)')

        head = self.model.decode_head
        head = head[-1] if isinstance(head, nn.ModuleList) else head
        self.num_classes = head.num_classes
        self.ignore_index = head.ignore_index

        if imnet_feature_dist_lambda > 0:
            self.imnet_backbone = deepcopy(self.model.backbone).requires_grad_(False)
            # It receives the student's initialised backbone at iteration 0; marking it
            # initialised keeps init_weights from reading the pretrained file twice.
            self.imnet_backbone._is_init = True
        self.apply_speed_options()

    @property
    def alpha(self) -> float:
        """The teacher's final EMA decay (held by the teacher)."""
        return self.teacher.alpha

    def train_step(self, data: Union[dict, tuple, list],
                   optim_wrapper: Union[OptimWrapper, OptimWrapperDict]) -> Dict[str, Tensor]:
        """One DACS iteration (``docs/method.md``, 3.1).

        Args:
            data: A UDA batch: ``inputs``, ``data_samples``, ``target_inputs``,
                ``target_data_samples``, collated (the data preprocessor normalises it) or
                already preprocessed.
            optim_wrapper: The student's optimizer wrapper, or an ``OptimWrapperDict`` whose
                ``'model'`` entry is.

        Returns:
            Detached log variables: ``loss`` (total), ``src.*``, ``mix.*``,
            ``masked.*`` (with MIC) and ``pseudo_weight``.
        """
        optim_wrapper = self.student_optim_wrapper(optim_wrapper)
        data = self.preprocess(data)
        if self.teacher.host_steps == 0:
            self.initialize_frozen_copies()
        self.loss_guard.begin(self)

        with optim_wrapper.optim_context(self.model):
            losses = self.source_losses(data['inputs'], data['data_samples'])
        src_loss, src_log = self.backward_losses(optim_wrapper, losses, 'src')

        pseudo_labels, pseudo_weights, pseudo_weight = self.pseudo_label(
            data['target_inputs'], data['target_data_samples'])
        mixed_inputs, mixed_samples = self.mix(data['inputs'], data['data_samples'],
                                               data['target_inputs'], pseudo_labels,
                                               pseudo_weights)

        with optim_wrapper.optim_context(self.model):
            losses = self.mixed_losses(mixed_inputs, mixed_samples)
        mix_loss, mix_log = self.backward_losses(optim_wrapper, losses, 'mix')

        # MIC: after the mixed loss, its own backward, before the one optimizer step
        masked_loss, masked_log = 0.0, OrderedDict()
        if self.mask_consistency is not None:
            masked_inputs, masked_samples = self.mask_consistency.masked_batch(
                data['target_inputs'], data['target_data_samples'], pseudo_labels,
                pseudo_weights, self.photometric_augmentation)
            with optim_wrapper.optim_context(self.model):
                losses = self.mask_consistency.weigh(
                    self.model(masked_inputs, masked_samples, mode='loss'))
            masked_loss, masked_log = self.backward_losses(optim_wrapper, losses, 'masked')

        if self.loss_guard.skip_step():
            optim_wrapper.zero_grad()
        else:
            optim_wrapper.step()
            optim_wrapper.zero_grad()
            self.update_teacher()

        log_vars = OrderedDict(loss=src_loss + mix_loss + masked_loss)
        log_vars.update(src_log)
        log_vars.update(mix_log)
        log_vars.update(masked_log)
        log_vars['pseudo_weight'] = pseudo_weight
        log_vars.update(self.loss_guard.log_vars())
        return log_vars

    # ------------------------------------------------------------- steps of an iteration

    def initialize_frozen_copies(self) -> None:
        """Iteration 0: the teacher and the ImageNet backbone copy the initialised student.

        Both are submodules, so checkpoints hold them and a resumed run (teacher ``steps``
        > 0) does not copy again.
        """
        self.teacher.update_parameters(self.student)
        if self.imnet_backbone is not None:
            self.imnet_backbone.load_state_dict(self.student.backbone.state_dict())

    def source_losses(self, inputs: Tensor, data_samples: SampleList, **kwargs) -> dict:
        """Supervised source loss and, on the same forward pass, the feature distance.

        The last backbone feature is captured with a forward hook on the student's backbone
        (its first call in the forward pass), so any segmentor works, also under DDP.

        Args:
            inputs: Source images ``(N, 3, H, W)``.
            data_samples: Source data samples with ``gt_sem_seg``.
            **kwargs: Passed to the student's ``forward``; ``mode`` defaults to 'loss'.

        Returns:
            The student's output: its loss dict, or (another ``mode``) an output holding
            it as ``losses``; the dict gets ``loss_feat_dist`` when the feature distance is
            on.
        """
        kwargs.setdefault('mode', 'loss')
        if self.imnet_backbone is None:
            return self.model(inputs, data_samples, **kwargs)
        captured = []

        def capture(module: nn.Module, args: tuple, output) -> None:
            if not captured:
                captured.append((args[0] if args else None, output))

        handle = self.student.backbone.register_forward_hook(capture)
        try:
            output = self.model(inputs, data_samples, **kwargs)
        finally:
            handle.remove()
        if not captured or captured[0][0] is None:
            raise RuntimeError(f'{type(self.student).__name__} did not call its backbone with '
                               'a positional input; the feature distance cannot be computed')
        backbone_input, features = captured[0]
        labels = torch.stack([sample.gt_sem_seg.data for sample in data_samples])
        losses = output if isinstance(output, dict) else output.losses
        losses['loss_feat_dist'] = self.feature_distance(backbone_input, features[-1], labels)
        return output

    def feature_distance(self, backbone_input: Tensor, features: Tensor,
                         labels: Tensor) -> Tensor:
        """Lambda times the thing-class distance to the frozen backbone's last feature.

        Args:
            backbone_input: What the student's backbone received ``(N, 3, H, W)``.
            features: Student's last backbone feature ``(N, C, h, w)``.
            labels: Source labels ``(N, 1, H', W')``.

        Returns:
            0-dim tensor.
        """
        with torch.no_grad():
            reference = self.imnet_backbone(backbone_input)[-1].detach()
        distance = feature_distance_loss(
            features, reference, labels, self.imnet_feature_dist_classes,
            self.imnet_feature_dist_scale_min_ratio, self.num_classes, self.ignore_index)
        return self.imnet_feature_dist_lambda * distance

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
        labels, weight = pseudo_label_from_logits(logits, self.pseudo_threshold)
        return labels, pseudo_weight_map(weight, labels.shape, self.pseudo_margins), weight

    def teacher_logits(self, inputs: Tensor, data_samples: SampleList) -> Tensor:
        """Teacher logits at the input resolution.

        A segmentor that defines ``generate_pseudo_label(inputs, batch_img_metas)`` (HRDA's
        does) is asked through it; any other through ``encode_decode``.

        Args:
            inputs: Target images ``(N, 3, H, W)``.
            data_samples: Target data samples (their metainfo is passed on).

        Returns:
            Logits ``(N, C, H, W)``.
        """
        size = tuple(inputs.shape[2:])
        metas = [dict(sample.metainfo, img_shape=size, pad_shape=size)
                 for sample in data_samples]
        teacher = self.teacher.module
        if hasattr(teacher, 'generate_pseudo_label'):
            return teacher.generate_pseudo_label(inputs, metas)
        return teacher.encode_decode(inputs, metas)

    def mix(self, inputs: Tensor, data_samples: SampleList, target_inputs: Tensor,
            pseudo_labels: Tensor, pseudo_weights: Tensor) -> Tuple[Tensor, SampleList]:
        """ClassMix of source onto target, then color jitter and blur of the mixed images.

        Args:
            inputs: Source images ``(N, 3, H, W)``.
            data_samples: Source data samples with ``gt_sem_seg``.
            target_inputs: Target images ``(N, 3, H, W)``.
            pseudo_labels: Target pseudo-labels ``(N, H, W)``.
            pseudo_weights: Target pixel weights ``(N, H, W)``.

        Returns:
            tuple: mixed images ``(N, 3, H, W)`` and data samples with ``gt_sem_seg`` and
            ``seg_weight`` (metainfo of the source samples).
        """
        labels = torch.stack([sample.gt_sem_seg.data for sample in data_samples])
        masks = class_mix_masks(labels, self.ignore_index)
        mixed_inputs, mixed_samples = self.mix_with_masks(
            masks, inputs, data_samples, target_inputs, pseudo_labels, pseudo_weights)
        return self.photometric_augmentation(mixed_inputs), mixed_samples

    def mix_with_masks(self, masks: Tensor, inputs: Tensor, data_samples: SampleList,
                       target_inputs: Tensor, pseudo_labels: Tensor,
                       pseudo_weights: Tensor) -> Tuple[Tensor, SampleList]:
        """Mix images, labels and weights with given masks (source pixels weigh 1).

        Args:
            masks: ``(N, 1, H, W)``, 1 where the source pixel is kept.
            inputs, data_samples, target_inputs, pseudo_labels, pseudo_weights: As in
                :meth:`mix`.

        Returns:
            tuple: mixed images ``(N, 3, H, W)`` (not yet augmented) and data samples.
        """
        if inputs.shape[2:] != target_inputs.shape[2:]:
            raise ValueError(f'ClassMix needs source and target crops of one size, got '
                             f'{tuple(inputs.shape[2:])} and {tuple(target_inputs.shape[2:])}')
        labels = torch.stack([sample.gt_sem_seg.data for sample in data_samples])
        pseudo_weights = pseudo_weights.unsqueeze(1)
        mixed_inputs = class_mix(masks, inputs, target_inputs)
        mixed_labels = class_mix(masks, labels, pseudo_labels.unsqueeze(1).to(labels.dtype))
        mixed_weights = class_mix(masks, torch.ones_like(pseudo_weights), pseudo_weights)
        return mixed_inputs, self.build_data_samples(mixed_labels, mixed_weights, data_samples)

    def photometric_augmentation(self, images: Tensor) -> Tensor:
        """DAFormer's color jitter and Gaussian blur of normalised mixed images.

        Args:
            images: ``(N, 3, H, W)``, normalised by the data preprocessor.

        Returns:
            ``(N, 3, H, W)``.
        """
        mean, std = self.normalization()
        images = color_jitter(images, mean, std, self.color_jitter_strength,
                              self.color_jitter_probability)
        if self.blur:
            images = gaussian_blur(images)
        return images

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

    def update_teacher(self) -> None:
        """EMA update of the teacher, after the optimizer step."""
        self.teacher.update_parameters(self.student)

    # ------------------------------------------------------------------------- helpers

    # a method, so that subclasses build their pseudo-labelled samples the same way
    build_data_samples = staticmethod(weighted_data_samples)
