"""The runner-facing half of the UDA models (DACS and its subclasses, and SourceOnly).

mmengine's runner trains through ``train_step`` and evaluates through ``forward(...,
mode='predict')``; the UDA models evaluate their student, keep a frozen ImageNet copy in eval
mode for DAFormer's feature distance, optionally keep their weights and images channels-last,
and sum, check and backpropagate the loss dict of each domain the same way. ``UDAModel`` holds
that shared part, the source loss with the feature distance included; the iteration itself is
``DACS.train_step`` (whose named parts its subclasses override) or ``SourceOnly.train_step``.
"""
from collections import OrderedDict
from copy import deepcopy
from typing import Callable, Dict, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
from mmengine.model import BaseModel, is_model_wrapper
from mmengine.optim import OptimWrapper, OptimWrapperDict
from mmseg.registry import MODELS
from mmseg.utils import (ConfigType, OptConfigType, OptMultiConfig, OptSampleList, SampleList,
                         add_prefix)
from torch import Tensor

from .feature_distance import capture_imnet_features, feature_distance_loss
from .iteration import UDAIteration
from .loss_guard import NonFiniteLossGuard


class UDAModel(BaseModel):
    """A student segmentor (``model``) trained by a UDA iteration, evaluated alone.

    Subclasses add the teacher and the rest, call :meth:`keep_imnet_backbone` for the feature
    distance, and call :meth:`apply_speed_options` once all their modules exist.

    Args:
        model: Config (or module) of the student, any mmseg segmentor.
        data_preprocessor: Config of the batch preprocessor (normally ``UDADataPreprocessor``).
        nonfinite: What a NaN or infinite loss term does: ``'raise'`` or ``'skip'`` the step
            (:class:`NonFiniteLossGuard`).
        channels_last: Keep the 4-d weights and the preprocessed images in the channels-last
            memory format (the layout GPU convolution kernels prefer); the same computation up
            to rounding.
        compile_modules: Submodules of the student (dotted names, e.g. ``'backbone'``,
            ``'decode_head'``, ``'diffusion.unet'``) whose ``forward`` runs through
            ``torch.compile``; also where the model calls ``self.forward`` directly, as
            mmseg's decode heads do in ``loss``. The teacher and the frozen copy stay eager.
        compile_cfg: Keyword arguments of ``torch.compile`` (``mode``, ``backend``, ...).
        init_cfg: Initialisation config of the wrapper (the student has its own).
    """

    def __init__(self,
                 model: Union[ConfigType, nn.Module],
                 data_preprocessor: OptConfigType = None,
                 nonfinite: str = 'raise',
                 channels_last: bool = False,
                 compile_modules: Sequence[str] = (),
                 compile_cfg: Optional[dict] = None,
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.model = MODELS.build(model) if isinstance(model, dict) else model
        if not hasattr(self.model, 'backbone'):
            raise TypeError(f'{type(self).__name__} needs a segmentor with a backbone, got '
                            f'{type(self.model).__name__}')
        self.imnet_backbone = None
        self.imnet_feature_dist_lambda = 0.0
        head = self.model.decode_head
        head = head[-1] if isinstance(head, nn.ModuleList) else head
        self.num_classes = head.num_classes
        self.ignore_index = head.ignore_index
        self.channels_last = channels_last
        self.compile_modules = tuple(compile_modules)
        self.compile_cfg = dict(compile_cfg or {})
        self.loss_guard = NonFiniteLossGuard(nonfinite)

    def apply_speed_options(self) -> None:
        """Apply ``channels_last`` and ``compile_modules``; call once every module exists.

        The layout is converted in place, so references to the parameters (the teacher's,
        for one) stay valid.
        """
        if self.channels_last:
            self.to(memory_format=torch.channels_last)
        for name in self.compile_modules:
            try:
                module = self.model.get_submodule(name)
            except AttributeError:
                student = type(self.model).__name__
                raise ValueError(f'compile_modules: the student ({student}) has no submodule '
                                 f'{name!r}') from None
            module.forward = torch.compile(module.forward, **self.compile_cfg)

    def keep_imnet_backbone(self, lambda_: float, classes: Optional[Sequence[int]],
                            scale_min_ratio: float) -> None:
        """Set up DAFormer's ImageNet feature distance: a frozen copy of the student's backbone.

        Args:
            lambda_: Weight of the feature distance; 0 turns it off (and no copy is kept).
            classes: Classes whose pixels enter it; None for all pixels.
            scale_min_ratio: Majority ratio a feature cell's class needs when the label is
                downscaled to the feature grid.
        """
        self.imnet_feature_dist_lambda = lambda_
        self.imnet_feature_dist_classes = None if classes is None else tuple(classes)
        self.imnet_feature_dist_scale_min_ratio = scale_min_ratio
        if lambda_ > 0:
            self.imnet_backbone = deepcopy(self.model.backbone).requires_grad_(False)
            # It receives the student's initialised backbone before the first step; marking
            # it initialised keeps init_weights from reading the pretrained file twice.
            self.imnet_backbone._is_init = True

    def source_losses(self, inputs: Tensor, data_samples: SampleList, **kwargs) -> dict:
        """Supervised source loss and, on the same forward pass, the feature distance.

        The feature distance reads the last of the backbone features the student names as
        ImageNet-comparable (:func:`capture_imnet_features`: HRDA's context view, else the
        backbone features of ``inputs``), taken from this forward pass, also under DDP.

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
        with capture_imnet_features(self.student, inputs) as calls:
            output = self.model(inputs, data_samples, **kwargs)
        if len(calls) != 1:
            raise RuntimeError(
                f'{type(self.student).__name__} made {len(calls)} ImageNet-comparable backbone '
                'calls in its forward pass, not one: a segmentor that does not encode its input '
                'as it is must name that call through an imnet_feature_tap attribute '
                '(models/uda/feature_distance.py)')
        backbone_input, features = calls[0]
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

    @property
    def student(self) -> nn.Module:
        """The student segmentor, unwrapped from DDP where the runner wrapped it."""
        return self.model.module if is_model_wrapper(self.model) else self.model

    def forward(self, inputs: Tensor, data_samples: OptSampleList = None,
                mode: str = 'tensor'):
        """mmseg's forward modes (``'loss'``, ``'predict'``, ``'tensor'``), by the student."""
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if mode == 'predict':
            return self.predict(inputs, data_samples)
        if mode == 'tensor':
            return self._forward(inputs, data_samples)
        raise RuntimeError(f'Invalid mode "{mode}". Only supports loss, predict and tensor mode')

    def loss(self, inputs: Tensor, data_samples: SampleList) -> dict:
        """Supervised loss of the student (through its DDP wrapper, when there is one)."""
        return self.model(inputs, data_samples, mode='loss')

    def predict(self, inputs: Tensor, data_samples: OptSampleList = None) -> SampleList:
        """Predictions of the student: evaluation always uses the student."""
        return self.student.predict(self.memory_format(inputs), data_samples)

    def _forward(self, inputs: Tensor, data_samples: OptSampleList = None):
        """The student's raw network output."""
        return self.student._forward(inputs, data_samples)

    def init_weights(self) -> None:
        """Initialise the weights; with ``channels_last``, as in the default layout.

        Random initialisations fill a tensor in memory order, so they are drawn in the
        default layout (the same weights as without ``channels_last``) and converted after.
        """
        if not self.channels_last:
            return super().init_weights()
        self.to(memory_format=torch.contiguous_format)
        super().init_weights()
        self.to(memory_format=torch.channels_last)

    def train(self, mode: bool = True) -> 'UDAModel':
        """Set train/eval mode; the frozen ImageNet backbone always stays in eval mode."""
        super().train(mode)
        if self.imnet_backbone is not None:
            self.imnet_backbone.eval()
        return self

    def backward_losses(self, optim_wrapper: OptimWrapper, losses: dict,
                        prefix: str) -> Tuple[Tensor, Dict[str, Tensor]]:
        """Sum the ``loss*`` terms, backward once, and return what to log.

        Args:
            optim_wrapper: The student's optimizer wrapper (AMP loss scaling happens here).
            losses: Loss dict of one domain.
            prefix: Log prefix, e.g. ``'src'``.

        Returns:
            tuple: the detached total and the detached, prefixed log variables.
        """
        losses = add_prefix(losses, prefix)
        self.loss_guard.check(losses)  # raises here, before the backward, under 'raise'
        loss, log_vars = self.parse_losses(losses)
        optim_wrapper.backward(loss)
        log_vars.pop('loss')
        return loss.detach(), OrderedDict((k, v.detach()) for k, v in log_vars.items())

    def student_pass(self, it: UDAIteration, prefix: str,
                     losses_of: Callable[[], dict]) -> None:
        """One pass of the student: its losses, one backward, recorded in ``it``.

        Args:
            it: The iteration; receives the pass's total and log variables.
            prefix: Log prefix of the pass, e.g. ``'src'``.
            losses_of: Computes the pass's loss dict; it runs in the student's optimizer
                context (AMP, gradient accumulation), so forward passes belong in it.
        """
        with it.optim_wrapper.optim_context(self.model):
            losses = losses_of()
        it.add_pass(*self.backward_losses(it.optim_wrapper, losses, prefix))

    def preprocess(self, data: Union[dict, tuple, list]) -> dict:
        """The data preprocessor's training batch, images in the model's memory format."""
        data = self.data_preprocessor(data, True)
        for key in ('inputs', 'target_inputs'):
            if key in data:
                data[key] = self.memory_format(data[key])
        return data

    def memory_format(self, images: Tensor) -> Tensor:
        """``images`` in channels-last layout when the model uses it, else unchanged."""
        if self.channels_last and isinstance(images, Tensor) and images.dim() == 4:
            return images.contiguous(memory_format=torch.channels_last)
        return images

    @staticmethod
    def student_optim_wrapper(
            optim_wrapper: Union[OptimWrapper, OptimWrapperDict]) -> OptimWrapper:
        """The student's optimizer wrapper: the wrapper itself or the dict's ``'model'``."""
        if isinstance(optim_wrapper, OptimWrapperDict):
            return optim_wrapper['model']
        return optim_wrapper

    def normalization(self) -> Tuple[Tensor, Tensor]:
        """Mean and std ``(3,)`` (0-255 range) the data preprocessor normalised with.

        A preprocessor that does not normalise leaves pixels in 0-255: mean 0, std 1.
        """
        preprocessor = self.data_preprocessor
        if getattr(preprocessor, '_enable_normalize', False):
            return preprocessor.mean.flatten(), preprocessor.std.flatten()
        return torch.zeros(3), torch.ones(3)
