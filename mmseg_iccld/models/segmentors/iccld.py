"""ICCLD: Inter-Coder Connected Latent Diffusion for semantic segmentation.

Yu et al., "Adversarially Domain-adaptive Latent Diffusion for Unsupervised Semantic
Segmentation". E (backbone + latent projector) gives the image latent z0; eps_theta denoises
the latent of the segmentation map conditioned on z0; D decodes z0, the mask estimate m_hat0
and long skips from every encoder stage. Training is in two steps (``diffusion_stage``):
step 1 trains E and D with D reading m_hat0 = 0, step 2 adds eps_theta's noise loss and D
reads the x0-estimate of the noised mask latent. The UDA training loop (DACS, eq. 3's
discriminator) lives in the UDA wrappers; this class holds the model and eq. 1-2.
"""
from typing import List, Optional, Tuple

import torch
from mmengine.config import ConfigDict
from mmengine.structures import PixelData
from mmseg.models.segmentors import EncoderDecoder
from mmseg.registry import MODELS
from mmseg.utils import (ConfigType, ForwardResults, OptConfigType, OptMultiConfig,
                         OptSampleList, SampleList, add_prefix)
from torch import Tensor

from ..losses.iccld_losses import loss_ldm
from ..losses.pixel_weighted import stack_seg_weight


@MODELS.register_module()
class ICCLD(EncoderDecoder):
    """E + ``DiffusionLatentNeck`` (projector, eps_theta) + ``InterCoderHead`` (D).

    Test settings (``test_cfg``): ``mode`` ('whole' or 'slide', with ``crop_size`` and
    ``stride``), ``num_inference_steps`` K (default 3; 0 decodes with m_hat0 = 0),
    ``num_samples`` S (default 1; S > 1 returns log of the mean softmax over S noise draws
    and adds ``uncertainty`` to the data samples) and ``seed`` (default 0) of the generator
    that draws ``m_T``.

    Args:
        backbone: Config of the encoder backbone (four stages, strides 4 to 32).
        neck: Config of ``DiffusionLatentNeck``.
        decode_head: Config of ``InterCoderHead``.
        auxiliary_head: Optional auxiliary heads on the backbone stages.
        train_cfg: Training config, passed to the heads.
        test_cfg: Test config, see above.
        data_preprocessor: Data preprocessor config (None when a UDA wrapper owns it).
        pretrained: Path of pretrained backbone weights.
        init_cfg: mmengine initialisation config.
        diffusion_stage: Initial training step, 1 or 2.
        loss_ldm_weight: Weight of eq. 2 in the loss dict.
        detach_mask_estimate: Stop L_seg's gradient at m_hat0, so eps_theta learns from eq. 2
            (and eq. 3) only; through the x0-estimate the gradient would be scaled by
            ``1 / sqrt(alpha_bar_t)``, about 2e4 at t = T - 1.
    """

    def __init__(self,
                 backbone: ConfigType,
                 neck: ConfigType,
                 decode_head: ConfigType,
                 auxiliary_head: OptConfigType = None,
                 train_cfg: OptConfigType = None,
                 test_cfg: OptConfigType = None,
                 data_preprocessor: OptConfigType = None,
                 pretrained: Optional[str] = None,
                 init_cfg: OptMultiConfig = None,
                 diffusion_stage: int = 1,
                 loss_ldm_weight: float = 1.0,
                 detach_mask_estimate: bool = True):
        super().__init__(
            backbone=backbone,
            decode_head=decode_head,
            neck=neck,
            auxiliary_head=auxiliary_head,
            train_cfg=train_cfg,
            test_cfg=ConfigDict(test_cfg if test_cfg is not None else dict(mode='whole')),
            data_preprocessor=data_preprocessor,
            pretrained=pretrained,
            init_cfg=init_cfg)
        if self.neck.num_classes != self.decode_head.num_classes:
            raise ValueError(f'neck codes {self.neck.num_classes} classes, decode head '
                             f'predicts {self.decode_head.num_classes}')
        self.loss_ldm_weight = loss_ldm_weight
        self.detach_mask_estimate = detach_mask_estimate
        # a buffer, so checkpoints (and resumed runs) know which step they are in; the
        # forward passes read its host copy, so they never wait for the device
        self.register_buffer('diffusion_stage', torch.tensor(1, dtype=torch.long))
        self._stage = 1
        self.set_diffusion_stage(diffusion_stage)

    def set_diffusion_stage(self, stage: int) -> None:
        """Switch between step 1 (D reads m_hat0 = 0) and step 2 (latent diffusion).

        Args:
            stage: 1 or 2.
        """
        if stage not in (1, 2):
            raise ValueError(f'diffusion_stage must be 1 or 2, got {stage}')
        self.diffusion_stage.fill_(stage)
        self._stage = stage

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs) -> None:
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        self._stage = int(self.diffusion_stage)  # the step the checkpoint was in

    @property
    def current_stage(self) -> int:
        """The training step, 1 or 2: the ``diffusion_stage`` buffer, read on the host.

        The buffer changes only through :meth:`set_diffusion_stage` and checkpoint loading,
        which both update this copy.
        """
        return self._stage

    @property
    def in_stage2(self) -> bool:
        """Whether the model is in step 2 (latent diffusion)."""
        return self._stage == 2

    @property
    def num_inference_steps(self) -> int:
        """K, the DDIM steps of prediction; always 0 in step 1."""
        return self.test_cfg.get('num_inference_steps', 3) if self.in_stage2 else 0

    @property
    def num_samples(self) -> int:
        """S, the noise draws averaged by prediction."""
        return self.test_cfg.get('num_samples', 1)

    def forward(self,
                inputs: Tensor,
                data_samples: OptSampleList = None,
                mode: str = 'tensor',
                **kwargs) -> ForwardResults:
        """mmseg's forward; keyword arguments go to ``loss`` (shared noise under DDP).

        Args:
            inputs: Images, (N, 3, H, W).
            data_samples: Seg data samples.
            mode: 'loss', 'predict' or 'tensor'.
            **kwargs: ``loss`` keyword arguments, only in 'loss' mode.

        Returns:
            A loss dict, a list of data samples or the decode head's logits.
        """
        if mode == 'loss':
            return self.loss(inputs, data_samples, **kwargs)
        if kwargs:
            raise TypeError(f'mode {mode!r} takes no keyword arguments, got {list(kwargs)}')
        return super().forward(inputs, data_samples, mode)

    def extract_feat(self, inputs: Tensor) -> List[Tensor]:
        """The encoder stages (the neck's projector is applied separately).

        Args:
            inputs: Images, (N, 3, H, W).

        Returns:
            Four stages, (N, C_i, H / s_i, W / s_i) for s_i = 4, 8, 16, 32.
        """
        return self.backbone(inputs)

    def loss(self,
             inputs: Tensor,
             data_samples: SampleList,
             noise: Optional[Tensor] = None,
             timesteps: Optional[Tensor] = None,
             with_seg: bool = True,
             with_ldm: Optional[bool] = None,
             return_noise_pred: bool = False,
             condition_grad: bool = True) -> dict:
        """Eq. 1 (through D) and eq. 2 on one batch.

        Args:
            inputs: Images, (N, 3, H, W).
            data_samples: Samples with ``gt_sem_seg`` (labels or pseudo-labels) and optionally
                ``seg_weight`` (PixelData (1, H, W)).
            noise: eps, (N, num_classes, h, w) on the latent grid; drawn when None.
            timesteps: t, (N, ) long; drawn uniformly from [0, T) when None.
            with_seg: Decode with D and compute L_seg; False skips D entirely.
            with_ldm: Compute L_ldm; None means ``diffusion_stage == 2``.
            return_noise_pred: Add eps_hat (with its graph) as 'noise_pred' for eq. 3, and
                the draw it used as 'noise' and 'timesteps' (so a caller can share it with
                other domains); the caller pops the three before summing the losses.
            condition_grad: Whether gradients flow into E (backbone and projector) through
                this batch; False computes z0 without a graph (only eps_theta and D learn).

        Returns:
            'decode.loss_ce', 'decode.acc_seg' (with_seg), 'loss_ldm' (with_ldm) and
            'noise_pred', 'noise', 'timesteps' (return_noise_pred).
        """
        with torch.set_grad_enabled(condition_grad and torch.is_grad_enabled()):
            feats = self.extract_feat(inputs)
            image_latent = self.neck(feats)
        with_ldm = self.in_stage2 if with_ldm is None else with_ldm
        decode_reads_mask = with_seg and self.in_stage2

        losses = dict()
        mask_estimate = None
        if with_ldm or return_noise_pred or decode_reads_mask:
            noise_pred, mask_estimate, noise, timesteps, latent_weight = self._denoise_train(
                image_latent, data_samples, noise, timesteps)
            if with_ldm:
                losses['loss_ldm'] = self.loss_ldm_weight * loss_ldm(
                    noise_pred, noise, latent_weight)
            if return_noise_pred:
                losses.update(noise_pred=noise_pred, noise=noise, timesteps=timesteps)
        if not with_seg:
            return losses

        if not decode_reads_mask:
            mask_estimate = None
        elif self.detach_mask_estimate:
            mask_estimate = mask_estimate.detach()
        loss_decode = self.decode_head.loss((feats, image_latent, mask_estimate), data_samples,
                                            self.train_cfg)
        losses.update(add_prefix(loss_decode, 'decode'))
        if self.with_auxiliary_head:
            losses.update(self._auxiliary_head_forward_train(feats, data_samples))
        return losses

    def encode_decode(self, inputs: Tensor, batch_img_metas: List[dict]) -> Tensor:
        """z0 = E(x); K DDIM steps from seeded noise to m_hat0; logits = D(z0 ++ m_hat0, skips).

        Args:
            inputs: Images or slide crops, (N, 3, H, W).
            batch_img_metas: Image meta information.

        Returns:
            Logits (S = 1) or log of the mean softmax over S draws (S > 1), (N, C, H, W).
        """
        feats = self.extract_feat(inputs)
        image_latent = self.neck(feats)
        estimates = self._test_mask_estimates(image_latent, self.num_samples)
        if self.num_samples == 1:
            return self.decode_head.predict((feats, image_latent, estimates[0]),
                                            batch_img_metas, self.test_cfg)
        mean_prob = 0
        for mask_estimate in estimates:
            logits = self.decode_head.predict((feats, image_latent, mask_estimate),
                                              batch_img_metas, self.test_cfg)
            mean_prob = mean_prob + logits.softmax(dim=1) / len(estimates)
        # the log keeps argmax and softmax of the mean; tiny keeps later resizing finite
        return mean_prob.clamp_min(torch.finfo(mean_prob.dtype).tiny).log()

    def sample_mask_latent(self, image_latent: Tensor, noise: Tensor,
                           num_steps: int) -> Tensor:
        """DDIM (eta 0) from ``m_T = noise`` to the mask estimate m_hat0.

        Each step predicts eps; diffusers' DDIM step forms the x0-estimate, clamped to the
        code's range (the neck sets ``clip_sample_range`` to the mask scale), and moves to the
        next timestep from it. The last x0-estimate is m_hat0.

        Args:
            image_latent: z0, (N, C_z, h, w).
            noise: m_T, (N, C_m, h, w).
            num_steps: K >= 1.

        Returns:
            m_hat0, (N, C_m, h, w).
        """
        scheduler = self.neck.sample_scheduler
        scheduler.set_timesteps(num_steps)
        noisy_mask = noise
        for t in scheduler.timesteps.tolist():
            timesteps = torch.full((len(noise), ), t, dtype=torch.long, device=noise.device)
            noise_pred = self.neck.predict_noise(noisy_mask, image_latent, timesteps)
            step = scheduler.step(noise_pred, t, noisy_mask)
            noisy_mask, mask_estimate = step.prev_sample, step.pred_original_sample
        return mask_estimate

    def _forward(self, inputs: Tensor, data_samples: OptSampleList = None) -> Tensor:
        """D's logits for the first noise draw, without post-processing.

        Args:
            inputs: Images, (N, 3, H, W).
            data_samples: Unused.

        Returns:
            Logits, (N, C, H / 4, W / 4).
        """
        feats = self.extract_feat(inputs)
        image_latent = self.neck(feats)
        mask_estimate = self._test_mask_estimates(image_latent, num_samples=1)[0]
        return self.decode_head.forward(feats, image_latent, mask_estimate)

    def postprocess_result(self,
                           seg_logits: Tensor,
                           data_samples: OptSampleList = None) -> SampleList:
        """mmseg's post-processing, plus ``uncertainty`` (1, H, W) when S > 1.

        The uncertainty is the entropy of the mean softmax, at the original image size.

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

    def _denoise_train(self, image_latent: Tensor, data_samples: SampleList,
                       noise: Optional[Tensor],
                       timesteps: Optional[Tensor]
                       ) -> Tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        """Noise the mask latent of the labels and predict the noise (one training draw).

        Args:
            image_latent: z0, (N, C_z, h, w).
            data_samples: Samples with ``gt_sem_seg`` and optionally ``seg_weight``.
            noise: eps, (N, C_m, h, w), or None to draw it.
            timesteps: t, (N, ) long, or None to draw it.

        Returns:
            eps_hat (N, C_m, h, w), the clamped x0-estimate m_hat0 (N, C_m, h, w), eps
            (N, C_m, h, w), t (N, ) and the latent-pixel weights (N, h, w): 0 on ignored
            labels, ``seg_weight`` sampled on the latent grid elsewhere.
        """
        size = image_latent.shape[2:]
        seg_label = torch.stack([sample.gt_sem_seg.data for sample in data_samples])
        label = self.neck.downsample_to_latent(seg_label, size)
        weight = (label != self.neck.ignore_index).float()
        seg_weight = stack_seg_weight(data_samples, seg_label)
        if seg_weight is not None:
            weight = weight * self.neck.downsample_to_latent(seg_weight, size)
        mask_latent = self.neck.mask_latent(label)

        if noise is None:
            noise = torch.randn_like(mask_latent)
        elif noise.shape != mask_latent.shape:
            raise ValueError(f'noise has shape {tuple(noise.shape)}, the mask latent '
                             f'{tuple(mask_latent.shape)}')
        if timesteps is None:
            timesteps = torch.randint(
                0, self.neck.num_train_timesteps, (len(noise), ), device=noise.device)
        noisy_mask = self.neck.add_noise(mask_latent, noise, timesteps)
        noise_pred = self.neck.predict_noise(noisy_mask, image_latent, timesteps)
        mask_estimate = self.neck.predict_clean_mask(noisy_mask, noise_pred, timesteps)
        return noise_pred, mask_estimate, noise, timesteps, weight

    def _test_mask_estimates(self, image_latent: Tensor,
                             num_samples: int) -> List[Optional[Tensor]]:
        """The mask latents D reads at test time, one per draw; [None] (m_hat0 = 0) at K = 0.

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
        n, _, h, w = image_latent.shape
        generator = torch.Generator(device=image_latent.device)
        generator.manual_seed(self.test_cfg.get('seed', 0))
        noise = torch.randn((num_samples, 1, self.neck.num_classes, h, w),
                            generator=generator, device=image_latent.device,
                            dtype=image_latent.dtype)
        return [
            self.sample_mask_latent(image_latent, draw.expand(n, -1, -1, -1), num_steps)
            for draw in noise
        ]
