"""ICCLD's latent diffusion of the segmentation mask: the mask code, eps_theta, eq. 2 from
labels to loss, the sampler's chain and its loss, and sampling.

The diffused variable is the latent of the segmentation map, a fixed analog one-hot code; the
clean image latent ``z0 = E(x)`` is the condition (docs/method.md, section 4). The denoiser is
a diffusers ``UNet2DModel`` on ``cat([m_t, proj(z0)])``, the channel-concatenation
conditioning of diffusers' latent super-resolution pipeline. Training noise comes from
diffusers' ``DDPMScheduler``, sampling from its ``DDIMScheduler`` (eta 0); both share one beta
schedule and one parametrisation of the UNet's output (``prediction_type``). As in
lucidrains' ``GaussianDiffusion``, this module owns noising, losses and sampling; the
segmentor only hands it z0, the labels and the draw (:meth:`MaskDiffusion.loss`) or z0 and
m_T (:meth:`MaskDiffusion.sample`).
"""
from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from diffusers import DDIMScheduler, DDPMScheduler, UNet2DModel
from mmengine.model import BaseModule
from mmseg.registry import MODELS
from mmseg.utils import OptConfigType
from torch import Tensor

from ..losses.iccld_losses import loss_chain, loss_ldm

PREDICTION_TYPES = ('epsilon', 'v_prediction')


@dataclass
class DiffusionDraw:
    """The random draw of one training pass, shared by the domains of an iteration.

    Attributes:
        noise: eps of eq. 2, (N, C_m, h, w).
        timesteps: t of eq. 2, (N, ) long.
        chain_noise: m_T of the sampler's chain, (N, C_m, h, w).
    """
    noise: Tensor
    timesteps: Tensor
    chain_noise: Tensor


@dataclass
class DiffusionLoss:
    """What one training pass of the diffusion gives (:meth:`MaskDiffusion.loss`).

    Attributes:
        loss_ldm: Eq. 2, unweighted.
        loss_chain: The chain's estimate against the label code, unweighted.
        estimate: m_hat0, the x0-estimate of the sampler's chain, with its graph
            (N, C_m, h, w): what D and f_dis read.
    """
    loss_ldm: Tensor
    loss_chain: Tensor
    estimate: Tensor


@MODELS.register_module()
class MaskDiffusion(BaseModule):
    """Fixed analog one-hot mask code, conditional denoiser eps_theta, training draw, sampler.

    Args:
        num_classes: Classes of the mask code; the mask latent has this many channels.
        latent_channels: C_z, channels of the condition z0.
        cond_channels: C_c, channels of proj(z0) fed to the denoiser.
        mask_scale: ``scale`` of the mask code ``m0 = scale * (2 * onehot(y) - 1)``; also the
            clamp range of x0-estimates.
        block_out_channels: Channels of the UNet levels; the latent is padded to a multiple of
            ``2 ** (len(block_out_channels) - 1)`` (``size_divisor``).
        layers_per_block: ResNet layers per UNet down block.
        norm_num_groups: GroupNorm groups inside the UNet.
        num_train_timesteps: Diffusion steps T of the noise schedule.
        prediction_type: What the UNet outputs: ``'epsilon'`` (the noise, as eq. 2 is
            written) or ``'v_prediction'`` (``v = sqrt(a_t) eps - sqrt(1 - a_t) m0``). Eq. 2
            is computed on the noise either way (:meth:`denoise`); v keeps the x0-estimate
            well conditioned at large t, where the epsilon form divides by ``sqrt(a_t)``
            (about 5e-5 at t = T - 1).
        beta_schedule: diffusers beta schedule name.
        timestep_spacing: DDIM timestep spacing; 'trailing' makes the first of K steps start
            at t = T - 1, where the sampler's pure noise ``m_T`` belongs.
        ignore_index: Label value without a class (zero code, zero loss weight).
        init_cfg: mmengine initialisation config.
    """

    def __init__(self,
                 num_classes: int,
                 latent_channels: int = 256,
                 cond_channels: int = 64,
                 mask_scale: float = 1.0,
                 block_out_channels: Sequence[int] = (32, 64, 128),
                 layers_per_block: int = 1,
                 norm_num_groups: int = 16,
                 num_train_timesteps: int = 1000,
                 prediction_type: str = 'epsilon',
                 beta_schedule: str = 'squaredcos_cap_v2',
                 timestep_spacing: str = 'trailing',
                 ignore_index: int = 255,
                 init_cfg: OptConfigType = None):
        super().__init__(init_cfg=init_cfg)
        if prediction_type not in PREDICTION_TYPES:
            raise ValueError(f'prediction_type must be one of {PREDICTION_TYPES}, got '
                             f'{prediction_type!r}')
        self.num_classes = num_classes
        self.mask_scale = mask_scale
        self.ignore_index = ignore_index
        self.prediction_type = prediction_type

        self.cond_proj = nn.Conv2d(latent_channels, cond_channels, kernel_size=1)
        unet_args = dict(
            in_channels=num_classes + cond_channels,
            out_channels=num_classes,
            block_out_channels=tuple(block_out_channels),
            layers_per_block=layers_per_block,
            norm_num_groups=norm_num_groups,
            down_block_types=('DownBlock2D', ) * len(block_out_channels),
            up_block_types=('UpBlock2D', ) * len(block_out_channels),
            add_attention=False)
        self.unet = UNet2DModel(**unet_args)
        self.size_divisor = 2**(len(block_out_channels) - 1)

        schedule = dict(
            num_train_timesteps=num_train_timesteps,
            beta_schedule=beta_schedule,
            prediction_type=prediction_type,
            clip_sample=False)
        self.noise_scheduler = DDPMScheduler(**schedule)
        # DDIM clamps its x0-estimate to the code's range (not diffusers' default +-1): an
        # unclamped epsilon-form estimate at t = T - 1 is scaled by 1 / sqrt(alpha_bar) ~ 2e4
        # and would throw the remaining steps off the data range.
        self.sample_scheduler = DDIMScheduler(
            **dict(schedule, clip_sample=True),
            clip_sample_range=mask_scale,
            timestep_spacing=timestep_spacing)

    @property
    def num_train_timesteps(self) -> int:
        """T, the number of diffusion steps of the noise schedule."""
        return self.noise_scheduler.config.num_train_timesteps

    # ------------------------------------------------------------------ the mask code

    def downsample_to_latent(self, pixel_map: Tensor, size: Tuple[int, int]) -> Tensor:
        """Sample an image-resolution map (labels, weights) onto the latent grid (nearest).

        Args:
            pixel_map: (N, 1, H, W) or (N, H, W).
            size: The latent grid (h, w).

        Returns:
            (N, h, w), same dtype as ``pixel_map``.
        """
        if pixel_map.dim() == 3:
            pixel_map = pixel_map.unsqueeze(1)
        sampled = F.interpolate(pixel_map.float(), size=size, mode='nearest')
        return sampled.squeeze(1).to(pixel_map.dtype)

    def mask_latent(self, label: Tensor) -> Tensor:
        """The fixed analog one-hot code ``m0 = scale * (2 * onehot(y) - 1)``.

        Args:
            label: Class indices on the latent grid, (N, h, w) long.

        Returns:
            m0, (N, num_classes, h, w); zero at ``ignore_index`` pixels.
        """
        label = label.long()
        valid = label != self.ignore_index
        onehot = F.one_hot(torch.where(valid, label, 0), self.num_classes)
        code = self.mask_scale * (2 * onehot.permute(0, 3, 1, 2).float() - 1)
        return code * valid.unsqueeze(1)

    def label_targets(self, labels: Tensor, weights: Optional[Tensor],
                      size: Tuple[int, int]) -> Tuple[Tensor, Tensor]:
        """m0 of image-resolution labels and the latent-pixel weights of eq. 2 and the chain.

        Args:
            labels: Class indices (or pseudo-labels), (N, 1, H, W) or (N, H, W).
            weights: Their pixel weights (DACS's pseudo-label weight), (N, H, W), or None.
            size: The latent grid (h, w).

        Returns:
            m0 (N, C_m, h, w) and weights (N, h, w): 0 on ignored labels, ``weights``
            sampled on the latent grid elsewhere.
        """
        label = self.downsample_to_latent(labels, size)
        weight = (label != self.ignore_index).float()
        if weights is not None:
            weight = weight * self.downsample_to_latent(weights, size)
        return self.mask_latent(label), weight

    # ------------------------------------------------------------------ eps_theta

    def add_noise(self, mask_latent: Tensor, noise: Tensor, timesteps: Tensor) -> Tensor:
        """Forward diffusion ``m_t = sqrt(a_t) m0 + sqrt(1 - a_t) eps`` (DDPM scheduler).

        Args:
            mask_latent: m0, (N, C_m, h, w).
            noise: eps, (N, C_m, h, w).
            timesteps: t, (N, ) long.

        Returns:
            m_t, (N, C_m, h, w).
        """
        return self.noise_scheduler.add_noise(mask_latent, noise, timesteps)

    def predict_output(self, noisy_mask: Tensor, image_latent: Tensor,
                       timesteps: Tensor) -> Tensor:
        """The UNet's output on ``cat([m_t, proj(z0)])`` (eps or v), for any latent size.

        The UNet halves the grid ``len(block_out_channels) - 1`` times, so the input is padded
        (replicated at the bottom and right edges) to a multiple of ``2 ** that`` and the
        output cropped back.

        Args:
            noisy_mask: m_t, (N, C_m, h, w).
            image_latent: z0, (N, C_z, h, w).
            timesteps: t, (N, ) long.

        Returns:
            eps_hat or v_hat by ``prediction_type``, (N, C_m, h, w).
        """
        h, w = noisy_mask.shape[2:]
        sample = torch.cat([noisy_mask, self.cond_proj(image_latent)], dim=1)
        pad_h = -h % self.size_divisor
        pad_w = -w % self.size_divisor
        if pad_h or pad_w:
            sample = F.pad(sample, (0, pad_w, 0, pad_h), mode='replicate')
        return self.unet(sample, timesteps).sample[:, :, :h, :w]

    def denoise(self, noisy_mask: Tensor, image_latent: Tensor,
                timesteps: Tensor) -> Tuple[Tensor, Tensor]:
        """eps_theta(m_t, t | z0) and the clamped x0-estimate it implies.

        epsilon: ``m_hat0 = (m_t - sqrt(1 - a_t) eps_hat) / sqrt(a_t)``;
        v: ``eps_hat = sqrt(a_t) v_hat + sqrt(1 - a_t) m_t`` and
        ``m_hat0 = sqrt(a_t) m_t - sqrt(1 - a_t) v_hat``, as diffusers' schedulers read them.
        m_hat0 is clamped to the code's range [-scale, scale], which bounds the epsilon form
        at large t, where ``1 / sqrt(a_t)`` reaches about 2e4 for the cosine schedule.

        Args:
            noisy_mask: m_t, (N, C_m, h, w).
            image_latent: z0, (N, C_z, h, w).
            timesteps: t, (N, ) long.

        Returns:
            eps_hat and m_hat0, both (N, C_m, h, w).
        """
        output = self.predict_output(noisy_mask, image_latent, timesteps)
        alpha_bar = self._alpha_bar(timesteps, noisy_mask)
        if self.prediction_type == 'v_prediction':
            noise_pred = alpha_bar.sqrt() * output + (1 - alpha_bar).sqrt() * noisy_mask
            estimate = alpha_bar.sqrt() * noisy_mask - (1 - alpha_bar).sqrt() * output
        else:
            noise_pred = output
            estimate = (noisy_mask - (1 - alpha_bar).sqrt() * output) / alpha_bar.sqrt()
        return noise_pred, estimate.clamp(-self.mask_scale, self.mask_scale)

    def _alpha_bar(self, timesteps: Tensor, like: Tensor) -> Tensor:
        alphas_cumprod = self.noise_scheduler.alphas_cumprod.to(like.device)
        return alphas_cumprod[timesteps.to(like.device)].reshape(-1, 1, 1, 1).to(like.dtype)

    # ------------------------------------------------------------------ training and sampling

    def draw(self, image_latent: Tensor) -> DiffusionDraw:
        """A new draw: eps ~ N(0, I), t ~ U{0..T-1} and m_T ~ N(0, I) on z0's grid.

        Args:
            image_latent: z0, (N, C_z, h, w) (sets shapes, device and dtype).

        Returns:
            The draw.
        """
        n, _, h, w = image_latent.shape
        noise = torch.randn((n, self.num_classes, h, w), device=image_latent.device,
                            dtype=image_latent.dtype)
        timesteps = torch.randint(0, self.num_train_timesteps, (n, ),
                                  device=image_latent.device)
        return DiffusionDraw(noise, timesteps, torch.randn_like(noise))

    def check_draw(self, draw: DiffusionDraw, image_latent: Tensor) -> None:
        """Raise unless ``draw`` fits the mask latent of ``image_latent``."""
        n, _, h, w = image_latent.shape
        shape = (n, self.num_classes, h, w)
        for name in ('noise', 'chain_noise'):
            value = getattr(draw, name)
            if tuple(value.shape) != shape:
                raise ValueError(f'draw.{name} has shape {tuple(value.shape)}, the mask '
                                 f'latent {shape}')

    def loss(self, image_latent: Tensor, labels: Tensor, weights: Optional[Tensor],
             draw: DiffusionDraw, num_steps: int,
             grad_steps: Optional[int] = None) -> DiffusionLoss:
        """Eq. 2 on the label code and the sampler's chain with its loss, for one pass.

        Eq. 2 (:func:`loss_ldm`): eps_theta on the label code forward-noised with the draw's
        eps at its t. The chain: K DDIM steps from the draw's m_T, conditioned on z0; its
        x0-estimate is what D reads (the same chain it reads at test time) and what f_dis
        reads, and :func:`loss_chain` holds it to the label code.

        Args:
            image_latent: z0, (N, C_z, h, w).
            labels: Labels or pseudo-labels at image resolution, (N, 1, H, W).
            weights: Their pixel weights, (N, H, W), or None.
            draw: eps, t and m_T of the pass.
            num_steps: K of the chain.
            grad_steps: How many of the chain's last steps keep their graph; None: all.

        Returns:
            :class:`DiffusionLoss`.
        """
        self.check_draw(draw, image_latent)
        mask_latent, weight = self.label_targets(labels, weights, image_latent.shape[2:])
        noisy_mask = self.add_noise(mask_latent, draw.noise, draw.timesteps)
        noise_pred, _ = self.denoise(noisy_mask, image_latent, draw.timesteps)
        eq2 = loss_ldm(noise_pred, draw.noise, weight)
        estimate = self.sample(image_latent, draw.chain_noise, num_steps, grad_steps)
        return DiffusionLoss(eq2, loss_chain(estimate, mask_latent, weight), estimate)

    def sample(self, image_latent: Tensor, noise: Tensor, num_steps: int,
               grad_steps: Optional[int] = None) -> Tensor:
        """DDIM (eta 0) from ``m_T = noise`` to m_hat0.

        Each step evaluates eps_theta; diffusers' DDIM step forms the x0-estimate, clamped to
        the code's range (``clip_sample_range`` is the mask scale), and moves to the next
        timestep from it. The last x0-estimate is m_hat0.

        Args:
            image_latent: z0, (N, C_z, h, w).
            noise: m_T, (N, C_m, h, w).
            num_steps: K >= 1.
            grad_steps: How many of the last steps keep their graph (when gradients are
                enabled); None: all of them.

        Returns:
            m_hat0, (N, C_m, h, w).
        """
        scheduler = self.sample_scheduler
        scheduler.set_timesteps(num_steps)
        first_grad = 0 if grad_steps is None else num_steps - grad_steps
        noisy_mask = noise
        for i, t in enumerate(scheduler.timesteps.tolist()):
            timesteps = torch.full((len(noise), ), t, dtype=torch.long, device=noise.device)
            with torch.set_grad_enabled(torch.is_grad_enabled() and i >= first_grad):
                output = self.predict_output(noisy_mask, image_latent, timesteps)
                step = scheduler.step(output, t, noisy_mask)
            noisy_mask, mask_estimate = step.prev_sample, step.pred_original_sample
        return mask_estimate

    def seeded_noise(self, image_latent: Tensor, num_samples: int, seed: int) -> Tensor:
        """S draws of m_T from a generator seeded with ``seed``, the same for every image.

        Args:
            image_latent: z0, (N, C_z, h, w).
            num_samples: S.
            seed: Seed of the generator.

        Returns:
            (S, N, C_m, h, w), each draw broadcast over the batch.
        """
        n, _, h, w = image_latent.shape
        generator = torch.Generator(device=image_latent.device)
        generator.manual_seed(seed)
        noise = torch.randn((num_samples, 1, self.num_classes, h, w), generator=generator,
                            device=image_latent.device, dtype=image_latent.dtype)
        return noise.expand(-1, n, -1, -1, -1)
