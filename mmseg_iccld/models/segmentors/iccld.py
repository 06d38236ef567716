"""ICCLD: Inter-Coder Connected Latent Diffusion for semantic segmentation.

Yu et al., "Adversarially Domain-adaptive Latent Diffusion for Unsupervised Semantic
Segmentation". E (backbone + the ``LatentProjector`` neck) gives the image latent z0; the
``MaskDiffusion`` module holds eps_theta, which denoises the latent of the segmentation map
conditioned on z0; D decodes z0, the mask estimate m_hat0 and long skips from every encoder
stage. Training has two phases (``phase``): phase 1 trains E and D with D reading
m_hat0 = 0; phase 2 adds eps_theta's noise loss (eq. 2, on forward-noised mask latents) and
D reads a mask estimate: by default the x0-estimate of the sampler's own K-step chain from
``m_T ~ N(0, I)``, what it reads at test time (``decoder_input='sampled'``). The UDA loop
(DACS, eq. 3's discriminator) lives in the UDA wrappers; this class holds the model and
eq. 1-2, and ``ICCLDPredictor`` its prediction.
"""
from dataclasses import dataclass, field
from typing import List, Optional, Sequence, Tuple

import torch
from mmengine.config import ConfigDict
from mmseg.models.segmentors import EncoderDecoder
from mmseg.registry import MODELS
from mmseg.utils import (ConfigType, ForwardResults, OptConfigType, OptMultiConfig,
                         OptSampleList, SampleList, add_prefix)
from torch import Tensor

from ..diffusion import DiffusionDraw
from .iccld_chain import CHAIN_GRADS, ICCLDChain
from .iccld_legacy import check_layout, rename_legacy_keys
from .iccld_phases import ICCLDPhases
from .iccld_predictor import ICCLDPredictor

DECODER_INPUTS = ('sampled', 'noised_label')


@dataclass
class ICCLDOutput:
    """What one ``ICCLD`` training pass hands to a UDA wrapper.

    Attributes:
        losses: Loss dict (``decode.*``, ``loss_ldm``; the wrapper adds its own terms).
        draw: The draw the pass used (to share with the other domains), or None in phase 1.
        noise_pred: eps_hat of eq. 2 with its graph, or None.
        sample: x0-estimate of the sampler's chain with its graph, or None.
        image_latent: z0 of the pass with its graph (phase 2), or None.
    """
    losses: dict = field(default_factory=dict)
    draw: Optional[DiffusionDraw] = None
    noise_pred: Optional[Tensor] = None
    sample: Optional[Tensor] = None
    image_latent: Optional[Tensor] = None


@MODELS.register_module()
class ICCLD(ICCLDChain, ICCLDPhases, ICCLDPredictor, EncoderDecoder):
    """E (backbone + ``LatentProjector`` neck) + ``MaskDiffusion`` + ``InterCoderHead`` (D).

    Test settings (``test_cfg``): ``mode`` ('whole' or 'slide', with ``crop_size`` and
    ``stride``), ``num_inference_steps`` K (default 3; 0 decodes with m_hat0 = 0),
    ``num_samples`` S (default 1; S > 1 returns log of the mean softmax over S noise draws
    and adds ``uncertainty`` to the data samples) and ``seed`` (default 0) of the generator
    that draws ``m_T``.

    Args:
        backbone: Config of the encoder backbone (four stages, strides 4 to 32).
        neck: Config of ``LatentProjector`` (stages -> stages + z0).
        diffusion: Config of ``MaskDiffusion`` (mask code, eps_theta, schedulers).
        decode_head: Config of ``InterCoderHead``.
        auxiliary_head: Optional auxiliary heads on the backbone stages.
        train_cfg: Training config, passed to the heads.
        test_cfg: Test config, see above.
        data_preprocessor: Data preprocessor config (None when a UDA wrapper owns it).
        pretrained: Path of pretrained backbone weights.
        init_cfg: mmengine initialisation config.
        phase: Initial training phase, 1 or 2.
        loss_ldm_weight: Weight of eq. 2 in the loss dict.
        detach_mask_estimate: Stop L_seg's gradient at m_hat0, so eps_theta learns from eq. 2
            (and eq. 3) only. Needed with ``decoder_input='noised_label'`` and epsilon
            prediction, where the x0-estimate scales the gradient by
            ``1 / sqrt(alpha_bar_t)`` (about 2e4 at t = T - 1).
        decoder_input: What D reads in phase 2 training. ``'sampled'``: the x0-estimate of
            the test-time sampler, K DDIM steps from ``m_T ~ N(0, I)`` conditioned on z0
            (self-aligned, as DDP trains its decoder). ``'noised_label'``: the x0-estimate
            of eq. 2's draw, the forward-noised label code at a uniform t (the label shows
            through m_t for most t, and there is no label at test time).
        train_sampling_steps: K of the training chain; None uses ``test_cfg``'s K.
        chain_grad: Which steps of the training chain keep their graph: ``'all'`` (L_seg
            and eq. 3 train every step, as they run at test time), ``'last'`` (cheaper: the
            earlier steps run without gradient) or ``'none'``.
        chain_loss_weight: Weight of :func:`loss_chain` (the chain's estimate against the
            label code, in every pass that runs the chain); 0 (the paper) leaves it out.
        phase1_ldm_weight: Weight of eq. 2 in phase 1, on z0 detached: eps_theta learns to
            denoise while E and D train as in the paper's step 1, so that phase 2 starts
            from a trained denoiser instead of a random one. 0 (the paper) leaves eps_theta
            untrained until the switch.
        phase2_frozen: Names of submodules that stop training in phase 2 (parameters
            without gradient, modules in eval mode), e.g. ``('backbone', 'neck')`` for E.
            Empty (default): E and D keep training beside eps_theta.
        refine_strength: None (default, the paper): the chain starts from m_T ~ N(0, I).
            A strength s in (0, 1): the chain refines D's own prediction instead, SDEdit's
            way: D's m_hat0 = 0 decode (phase 1's), coded as the mask
            (:meth:`ICCLDChain.chain_start`), is forward-noised to the first of the last K
            steps of a ``round(K / s)``-step schedule and denoised from there, in training
            and at test time (docs/method.md 6.3).
        refine_start_grad: In training, decode the refining chain's start in training mode
            with its graph (the chain's and D's losses then train D through it, and the
            extra decode moves D's BN statistics). False (default): D's test-time decode,
            in eval mode and without graph.
        diffusion_stage: The earlier name of ``phase`` (configs dumped with it still build).
        **kwargs: Arguments of a segmentor base a subclass adds (``ICCLDHR``: HRDA's views).
    """

    def __init__(self,
                 backbone: ConfigType,
                 neck: ConfigType,
                 diffusion: ConfigType,
                 decode_head: ConfigType,
                 auxiliary_head: OptConfigType = None,
                 train_cfg: OptConfigType = None,
                 test_cfg: OptConfigType = None,
                 data_preprocessor: OptConfigType = None,
                 pretrained: Optional[str] = None,
                 init_cfg: OptMultiConfig = None,
                 phase: int = 1,
                 loss_ldm_weight: float = 1.0,
                 detach_mask_estimate: bool = False,
                 decoder_input: str = 'sampled',
                 train_sampling_steps: Optional[int] = None,
                 chain_grad: str = 'all',
                 chain_loss_weight: float = 0.0,
                 phase1_ldm_weight: float = 0.0,
                 phase2_frozen: Sequence[str] = (),
                 refine_strength: Optional[float] = None,
                 refine_start_grad: bool = False,
                 diffusion_stage: Optional[int] = None,
                 **kwargs):
        super().__init__(
            backbone=backbone,
            decode_head=decode_head,
            neck=neck,
            auxiliary_head=auxiliary_head,
            train_cfg=train_cfg,
            test_cfg=ConfigDict(test_cfg if test_cfg is not None else dict(mode='whole')),
            data_preprocessor=data_preprocessor,
            pretrained=pretrained,
            init_cfg=init_cfg,
            **kwargs)
        self.diffusion = MODELS.build(diffusion)
        if self.diffusion.num_classes != self.decode_head.num_classes:
            raise ValueError(f'the diffusion codes {self.diffusion.num_classes} classes, the '
                             f'decode head predicts {self.decode_head.num_classes}')
        if decoder_input not in DECODER_INPUTS:
            raise ValueError(f'decoder_input must be one of {DECODER_INPUTS}, got '
                             f'{decoder_input!r}')
        if chain_grad not in CHAIN_GRADS:
            raise ValueError(f'chain_grad must be one of {tuple(CHAIN_GRADS)}, got '
                             f'{chain_grad!r}')
        if train_sampling_steps is not None and train_sampling_steps < 1:
            raise ValueError(f'train_sampling_steps must be >= 1, got {train_sampling_steps}')
        if refine_strength is not None and not 0 < refine_strength < 1:
            raise ValueError(f'refine_strength must be in (0, 1) or None, got '
                             f'{refine_strength}')
        self.refine_strength = refine_strength
        self.refine_start_grad = refine_start_grad
        self.loss_ldm_weight = loss_ldm_weight
        self.detach_mask_estimate = detach_mask_estimate
        self.decoder_input = decoder_input
        self.train_sampling_steps = train_sampling_steps
        self.chain_grad = chain_grad
        self.chain_loss_weight = chain_loss_weight
        self.phase1_ldm_weight = phase1_ldm_weight
        self.init_phases(phase if diffusion_stage is None else diffusion_stage, phase2_frozen)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs) -> None:
        rename_legacy_keys(state_dict, prefix)
        check_layout(state_dict, prefix)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        self.phase_loaded()

    @property
    def mask_latent_stride(self) -> int:
        """Input pixels per cell of the mask latent (the projector's latent stride)."""
        return self.neck.latent_stride

    @property
    def chain_steps(self) -> int:
        """K of the training chain (``train_sampling_steps``, else the test K, at least 1)."""
        if self.train_sampling_steps is not None:
            return self.train_sampling_steps
        return max(1, self.test_cfg.get('num_inference_steps', 3))

    def forward(self,
                inputs: Tensor,
                data_samples: OptSampleList = None,
                mode: str = 'tensor',
                **kwargs) -> ForwardResults:
        """mmseg's forward, plus ``mode='uda'`` (:meth:`uda_loss`, through DDP's forward).

        Args:
            inputs: Images, (N, 3, H, W).
            data_samples: Seg data samples.
            mode: 'loss', 'uda', 'predict' or 'tensor'.
            **kwargs: ``uda_loss`` keyword arguments, only in 'loss' and 'uda' mode.

        Returns:
            A loss dict, an :class:`ICCLDOutput`, a list of data samples or the decode
            head's logits.
        """
        if mode == 'uda':
            return self.uda_loss(inputs, data_samples, **kwargs)
        if mode == 'loss':
            return self.uda_loss(inputs, data_samples, **kwargs).losses
        if kwargs:
            raise TypeError(f'mode {mode!r} takes no keyword arguments, got {list(kwargs)}')
        return super().forward(inputs, data_samples, mode)

    def encode(self, inputs: Tensor) -> Tuple[List[Tensor], Tensor]:
        """E: the backbone stages and z0 (``extract_feat`` applies the projector neck).

        Args:
            inputs: Images, (N, 3, H, W).

        Returns:
            Four stages (N, C_i, H / s_i, W / s_i) for s_i = 4, 8, 16, 32, and z0.
        """
        *stages, image_latent = self.extract_feat(inputs)
        return stages, image_latent

    def decoder_inputs(self, inputs: Tensor, stages: List[Tensor], image_latent: Tensor,
                       mask_estimates: Sequence[Optional[Tensor]],
                       training: bool = False) -> list:
        """D's input for each mask estimate: ``(stages, z0, m_hat0)``.

        Args:
            inputs: The images that were encoded (a subclass with more views reads them).
            stages: Encoder stages of ``inputs``.
            image_latent: z0.
            mask_estimates: m_hat0 of each draw (None: m_hat0 = 0).
            training: Whether this is a training pass.

        Returns:
            One input of ``decode_head`` per mask estimate.
        """
        return [(stages, image_latent, mask) for mask in mask_estimates]

    def loss(self, inputs: Tensor, data_samples: SampleList) -> dict:
        """Eq. 1 (through D) and, in phase 2, eq. 2 on one batch, with a fresh draw.

        Args:
            inputs: Images, (N, 3, H, W).
            data_samples: Samples with ``gt_sem_seg`` and optionally ``seg_weight``.

        Returns:
            'decode.loss_ce', 'decode.acc_seg' and, in phase 2, 'loss_ldm'.
        """
        return self.uda_loss(inputs, data_samples).losses

    def uda_loss(self,
                 inputs: Tensor,
                 data_samples: SampleList,
                 draw: Optional[DiffusionDraw] = None,
                 with_seg: bool = True,
                 with_ldm: Optional[bool] = None,
                 with_sample: bool = False,
                 condition_grad: bool = True) -> ICCLDOutput:
        """Eq. 1 (through D) and eq. 2 on one batch, and what eq. 3 reads.

        Args:
            inputs: Images, (N, 3, H, W).
            data_samples: Samples with ``gt_sem_seg`` (labels or pseudo-labels) and optionally
                ``seg_weight`` (PixelData (1, H, W)).
            draw: eps, t and m_T of this pass (phase 2); drawn when None.
            with_seg: Decode with D and compute L_seg; False skips D entirely.
            with_ldm: Compute L_ldm; None: in phase 2, and in phase 1 with a
                ``phase1_ldm_weight`` (there on z0 detached, with a draw of its own).
            with_sample: Also run the sampler's chain when D does not read it (eq. 3 on the
                chain's x0-estimate of a batch without L_seg).
            condition_grad: Whether gradients flow into E (backbone and projector) through
                this batch; False computes z0 without a graph (only eps_theta and D learn).

        Returns:
            :class:`ICCLDOutput`: losses 'decode.loss_ce', 'decode.acc_seg' (with_seg),
            'loss_ldm' (with_ldm), 'loss_chain' (``chain_loss_weight`` > 0 and a chain); in
            phase 2 the draw, eps_hat, the chain's estimate and z0.
        """
        with torch.set_grad_enabled(condition_grad and torch.is_grad_enabled()):
            stages, image_latent = self.encode(inputs)
        output = ICCLDOutput()
        view = None
        if self.in_phase2:
            with_ldm = with_ldm is None or with_ldm
            if draw is None:
                draw = self.diffusion.draw(image_latent)
            self.diffusion.check_draw(draw, image_latent)
            output.draw = draw
            with_chain = (self.decoder_input == 'sampled' and with_seg) or with_sample
            start = self.chain_start(stages, image_latent) if with_chain else None
            view = self.view_diffusion(image_latent, data_samples, draw, with_ldm,
                                       with_chain, start)
            output.losses.update(view.losses)
            output.noise_pred, output.sample = view.noise_pred, view.sample
            output.image_latent = image_latent
        elif with_ldm or (with_ldm is None and self.phase1_ldm_weight > 0):
            if self.phase1_ldm_weight <= 0:
                raise ValueError('eq. 2 (with_ldm) in phase 1 needs phase1_ldm_weight > 0')
            output.losses['loss_ldm'] = self.phase1_ldm_weight * self._phase1_ldm(
                image_latent.detach(), data_samples)
        if not with_seg:
            return output

        mask_estimate = None if view is None else self.view_mask_estimate(view)
        head_input, view_losses = self.training_decoder_input(
            inputs, stages, image_latent, mask_estimate, data_samples, bool(with_ldm))
        output.losses.update(view_losses)
        loss_decode = self.decode_head.loss(head_input, data_samples, self.train_cfg)
        output.losses.update(add_prefix(loss_decode, 'decode'))
        if self.with_auxiliary_head:
            output.losses.update(self._auxiliary_head_forward_train(stages, data_samples))
        return output

    def training_decoder_input(self, inputs: Tensor, stages: List[Tensor],
                               image_latent: Tensor, mask_estimate: Optional[Tensor],
                               data_samples: SampleList, with_ldm: bool) -> Tuple[object, dict]:
        """D's input in a training pass, and the losses of views a subclass adds.

        Args:
            inputs: The images that were encoded.
            stages: Encoder stages of ``inputs``.
            image_latent: z0.
            mask_estimate: m_hat0 (None: m_hat0 = 0).
            data_samples: The pass's samples (a view with a chain of its own trains it).
            with_ldm: Whether the pass computes eq. 2.

        Returns:
            The ``decode_head`` input and a loss dict (empty here).
        """
        return self.decoder_inputs(inputs, stages, image_latent, [mask_estimate],
                                   training=True)[0], {}
