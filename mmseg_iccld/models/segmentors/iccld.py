"""ICCLD: Inter-Coder Connected Latent Diffusion for semantic segmentation.

Yu et al., "Adversarially Domain-adaptive Latent Diffusion for Unsupervised Semantic
Segmentation". One pass is ``encode -> diffusion -> decode``:

- E (backbone + the ``LatentProjector`` neck) gives the encoder stages and the image latent z0;
- the ``MaskDiffusion`` module (eps_theta, eq. 2, the sampler's chain) gives the mask estimate
  m_hat0, the x0-estimate of K DDIM steps from ``m_T ~ N(0, I)`` conditioned on z0;
- D (``InterCoderHead``) decodes z0, m_hat0 and long skips from every encoder stage (eq. 1).

Training has two phases, held in the ``phase`` buffer: phase 1 trains E and D with D reading
m_hat0 = 0; phase 2 adds the diffusion (eq. 2 and the chain's loss) and D reads the chain's
estimate, as at test time. The UDA loop (DACS, eq. 3's discriminator) lives in ``ICCLDUDA``.
"""
from dataclasses import dataclass, field
from typing import List, Optional, Sequence, Tuple

import torch
from mmengine.config import ConfigDict
from mmengine.structures import PixelData
from mmseg.models.segmentors import EncoderDecoder
from mmseg.registry import MODELS
from mmseg.utils import (ConfigType, ForwardResults, OptConfigType, OptMultiConfig,
                         OptSampleList, SampleList, add_prefix)
from torch import Tensor

from ..diffusion import DiffusionDraw
from ..losses.pixel_weighted import stack_seg_weight

# chain_grad -> how many of the chain's last steps keep their graph (None: all)
CHAIN_GRADS = dict(all=None, last=1)


@dataclass
class ICCLDOutput:
    """What one ``ICCLD`` training pass hands to a UDA wrapper.

    Attributes:
        losses: Loss dict (``decode.*``, ``loss_ldm``, ``loss_chain``; the wrapper adds its
            own terms).
        draw: The diffusion's draw of the pass (the other domains share it), or None: a
            phase-1 pass, without diffusion.
        sample: m_hat0 of the sampler's chain with its graph (what f_dis reads), or None.
    """
    losses: dict = field(default_factory=dict)
    draw: Optional[DiffusionDraw] = None
    sample: Optional[Tensor] = None


@MODELS.register_module()
class ICCLD(EncoderDecoder):
    """E (backbone + ``LatentProjector`` neck) + ``MaskDiffusion`` + ``InterCoderHead`` (D).

    Test settings (``test_cfg``): ``mode`` ('whole' or 'slide', with ``crop_size`` and
    ``stride``), ``num_inference_steps`` K (default 3, also the training chain's length, at
    least 1 there; 0 decodes with m_hat0 = 0), ``num_samples`` S (default 1; S > 1 returns
    the log of the mean softmax over S noise draws and adds ``uncertainty`` to the data
    samples) and ``seed`` (default 0) of the generator that draws ``m_T``.

    Args:
        backbone: Config of the encoder backbone (four stages, strides 4 to 32).
        neck: Config of ``LatentProjector`` (stages -> stages + z0).
        diffusion: Config of ``MaskDiffusion``.
        decode_head: Config of ``InterCoderHead``.
        auxiliary_head: Optional auxiliary heads on the backbone stages.
        train_cfg: Training config, passed to the heads.
        test_cfg: Test config, see above.
        data_preprocessor: Data preprocessor config (None when a UDA wrapper owns it).
        pretrained: Path of pretrained backbone weights.
        init_cfg: mmengine initialisation config.
        phase: Initial training phase, 1 or 2.
        loss_ldm_weight: Weight of eq. 2.
        chain_grad: Which steps of the training chain keep their graph: ``'all'`` (D's loss
            and eq. 3 train every step, as they run at test time) or ``'last'`` (cheaper: the
            earlier steps run without gradient).
        chain_loss_weight: Weight of the chain's loss (its estimate against the label code;
            not in the paper, 0 leaves it out).
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
                 chain_grad: str = 'all',
                 chain_loss_weight: float = 0.0,
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
        if chain_grad not in CHAIN_GRADS:
            raise ValueError(f'chain_grad must be one of {tuple(CHAIN_GRADS)}, got '
                             f'{chain_grad!r}')
        self.loss_ldm_weight = loss_ldm_weight
        self.chain_grad = chain_grad
        self.chain_loss_weight = chain_loss_weight
        # a buffer, so checkpoints (and resumed runs) know their phase; the passes read its
        # host copy, so they never wait for the device
        self.register_buffer('phase', torch.tensor(1, dtype=torch.long))
        self._phase = 1
        self.set_phase(phase)

    # ------------------------------------------------------------------ the phase

    def set_phase(self, phase: int) -> bool:
        """Switch between phase 1 (D reads m_hat0 = 0) and phase 2 (latent diffusion).

        Args:
            phase: 1 or 2.

        Returns:
            Whether the phase changed.
        """
        if phase not in (1, 2):
            raise ValueError(f'phase must be 1 or 2, got {phase}')
        changed = phase != self._phase
        self.phase.fill_(phase)
        self._phase = phase
        return changed

    @property
    def in_phase2(self) -> bool:
        """Whether the diffusion runs: in training and at test time alike."""
        return self._phase == 2

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs) -> None:
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        self._phase = int(self.phase)

    @property
    def num_inference_steps(self) -> int:
        """K, the DDIM steps of prediction; 0 in phase 1."""
        return self.test_cfg.get('num_inference_steps', 3) if self.in_phase2 else 0

    @property
    def num_samples(self) -> int:
        """S, the noise draws averaged by prediction."""
        return self.test_cfg.get('num_samples', 1)

    @property
    def mask_latent_stride(self) -> int:
        """Input pixels per cell of the mask latent (the projector's latent stride)."""
        return self.neck.latent_stride

    # ------------------------------------------------------------------ one pass

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

    def loss(self, inputs: Tensor, data_samples: SampleList) -> dict:
        """Eq. 1 (through D) and, in phase 2, eq. 2 and the chain's loss, with a fresh draw.

        Args:
            inputs: Images, (N, 3, H, W).
            data_samples: Samples with ``gt_sem_seg`` and optionally ``seg_weight``.

        Returns:
            'decode.loss_ce', 'decode.acc_seg' and, in phase 2, 'loss_ldm' (and
            'loss_chain').
        """
        return self.uda_loss(inputs, data_samples).losses

    def uda_loss(self,
                 inputs: Tensor,
                 data_samples: SampleList,
                 draw: Optional[DiffusionDraw] = None,
                 with_seg: bool = True,
                 condition_grad: bool = True) -> ICCLDOutput:
        """``encode -> diffusion -> decode`` on one batch: eq. 1 and, in phase 2, eq. 2, the
        chain's loss and what eq. 3 reads.

        Args:
            inputs: Images, (N, 3, H, W).
            data_samples: Samples with ``gt_sem_seg`` (labels or pseudo-labels) and optionally
                ``seg_weight`` (PixelData (1, H, W)).
            draw: eps, t and m_T of this pass (phase 2); drawn when None.
            with_seg: Decode with D and compute L_seg; False skips D (the target pass).
            condition_grad: Whether gradients flow into E (backbone and projector) through
                this batch; False computes z0 without a graph (only eps_theta and D learn).

        Returns:
            :class:`ICCLDOutput`: losses 'decode.loss_ce', 'decode.acc_seg' (with_seg) and,
            in phase 2, 'loss_ldm' and 'loss_chain' (``chain_loss_weight`` > 0), the draw
            and the chain's estimate.
        """
        with torch.set_grad_enabled(condition_grad and torch.is_grad_enabled()):
            stages, image_latent = self.encode(inputs)
        output = ICCLDOutput()
        if self.in_phase2:
            output.draw = draw if draw is not None else self.diffusion.draw(image_latent)
            output.sample = self.diffusion_losses(image_latent, data_samples, output)
        if not with_seg:
            return output
        head_input = self.decoder_inputs(inputs, stages, image_latent, [output.sample],
                                         training=True)[0]
        loss_decode = self.decode_head.loss(head_input, data_samples, self.train_cfg)
        output.losses.update(add_prefix(loss_decode, 'decode'))
        if self.with_auxiliary_head:
            output.losses.update(self._auxiliary_head_forward_train(stages, data_samples))
        return output

    def diffusion_losses(self, image_latent: Tensor, data_samples: SampleList,
                         output: ICCLDOutput) -> Tensor:
        """The diffusion's part of a phase-2 pass: its weighted losses join ``output``.

        Args:
            image_latent: z0, (N, C_z, h, w).
            data_samples: Samples with ``gt_sem_seg`` and optionally ``seg_weight``.
            output: The pass's output, with its draw.

        Returns:
            m_hat0 of the chain, with its graph.
        """
        labels = torch.stack([sample.gt_sem_seg.data for sample in data_samples])
        loss = self.diffusion.loss(image_latent, labels, stack_seg_weight(data_samples, labels),
                                   output.draw, self.chain_steps, CHAIN_GRADS[self.chain_grad])
        output.losses['loss_ldm'] = self.loss_ldm_weight * loss.loss_ldm
        if self.chain_loss_weight > 0:
            output.losses['loss_chain'] = self.chain_loss_weight * loss.loss_chain
        return loss.estimate

    @property
    def chain_steps(self) -> int:
        """K of the training chain: the test K, at least 1."""
        return max(1, self.test_cfg.get('num_inference_steps', 3))

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

    def decode_logits(self, head_input) -> Tensor:
        """D's logits of one input of :meth:`decoder_inputs`, before resizing."""
        return self.decode_head.forward(*head_input)

    # ------------------------------------------------------------------ prediction

    def mask_estimates(self, image_latent: Tensor, num_samples: int) -> List[Optional[Tensor]]:
        """The mask estimates D reads at test time, one per draw; [None] (m_hat0 = 0) at K = 0.

        Every image gets the same draws of m_T from a generator seeded by ``test_cfg.seed``,
        so a prediction depends neither on the batch nor on earlier calls.

        Args:
            image_latent: z0, (N, C_z, h, w).
            num_samples: S, the number of draws.

        Returns:
            S tensors m_hat0, (N, C_m, h, w), or [None].
        """
        num_steps = self.num_inference_steps
        if num_steps == 0:
            return [None]
        noise = self.diffusion.seeded_noise(image_latent, num_samples,
                                            self.test_cfg.get('seed', 0))
        return [self.diffusion.sample(image_latent, draw, num_steps) for draw in noise]

    def encode_decode(self, inputs: Tensor, batch_img_metas: List[dict]) -> Tensor:
        """z0 = E(x); K DDIM steps from seeded noise to m_hat0; logits = D(z0, m_hat0, skips).

        Args:
            inputs: Images or slide crops, (N, 3, H, W).
            batch_img_metas: Image meta information.

        Returns:
            Logits (S = 1) or log of the mean softmax over S draws (S > 1), (N, C, H, W).
        """
        stages, image_latent = self.encode(inputs)
        estimates = self.mask_estimates(image_latent, self.num_samples)
        head_inputs = self.decoder_inputs(inputs, stages, image_latent, estimates)
        if self.num_samples == 1:
            return self.decode_head.predict(head_inputs[0], batch_img_metas, self.test_cfg)
        mean_prob = 0
        for head_input in head_inputs:
            logits = self.decode_head.predict(head_input, batch_img_metas, self.test_cfg)
            mean_prob = mean_prob + logits.softmax(dim=1) / len(head_inputs)
        # the log keeps argmax and softmax of the mean; tiny keeps later resizing finite
        return mean_prob.clamp_min(torch.finfo(mean_prob.dtype).tiny).log()

    def _forward(self, inputs: Tensor, data_samples: OptSampleList = None) -> Tensor:
        """D's logits for the first noise draw, without post-processing."""
        stages, image_latent = self.encode(inputs)
        estimate = self.mask_estimates(image_latent, num_samples=1)
        return self.decode_logits(self.decoder_inputs(inputs, stages, image_latent,
                                                      estimate)[0])

    def postprocess_result(self,
                           seg_logits: Tensor,
                           data_samples: OptSampleList = None) -> SampleList:
        """mmseg's post-processing, plus ``uncertainty`` (1, H, W) when S > 1: the entropy of
        the mean softmax, at the original image size.

        Args:
            seg_logits: Output of ``inference``, (N, C, H, W).
            data_samples: Seg data samples, or None.

        Returns:
            Data samples with ``seg_logits``, ``pred_sem_seg`` and, for S > 1,
            ``uncertainty``.
        """
        data_samples = super().postprocess_result(seg_logits, data_samples)
        if self.num_samples > 1:
            for sample in data_samples:
                prob = sample.seg_logits.data.softmax(dim=0)
                entropy = -torch.special.xlogy(prob, prob).sum(dim=0, keepdim=True)
                sample.set_data({'uncertainty': PixelData(data=entropy)})
        return data_samples
