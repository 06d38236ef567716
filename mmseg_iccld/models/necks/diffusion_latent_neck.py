"""ICCLD's latent diffusion neck: image latent z0, mask latent m0 and the denoiser eps_theta.

The diffused variable is the latent of the segmentation map; the clean image latent
``z0 = E(x)`` is the condition (see docs/method.md, section 4). The denoiser is a diffusers
``UNet2DModel`` on ``cat([m_t, proj(z0)])``, the channel-concatenation conditioning of
diffusers' latent super-resolution pipeline. Training noise comes from diffusers'
``DDPMScheduler``, sampling from its ``DDIMScheduler`` (eta 0); both share one beta schedule.
"""
import math
from typing import Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from diffusers import DDIMScheduler, DDPMScheduler, UNet2DModel
from mmcv.cnn import ConvModule
from mmengine.model import BaseModule
from mmseg.models.utils import resize
from mmseg.registry import MODELS
from mmseg.utils import ConfigType, OptConfigType
from torch import Tensor


@MODELS.register_module()
class DiffusionLatentNeck(BaseModule):
    """Latent projector, fixed analog one-hot mask code and conditional denoiser eps_theta.

    ``forward`` maps the four backbone stages to the image latent z0; the segmentor calls
    the other public methods for training (``mask_latent``, ``add_noise``, ``predict_noise``,
    ``predict_clean_mask``) and holds the DDIM loop for sampling (``sample_scheduler``).

    Args:
        in_channels: Channels of the backbone stages (strides 4, 8, 16, 32).
        num_classes: Classes of the mask code; the mask latent has this many channels.
        latent_channels: C_z, channels of z0.
        latent_stride: Stride of the latent grid, one of the backbone strides (4 or 8).
        cond_channels: C_c, channels of proj(z0) fed to the denoiser.
        mask_scale: ``scale`` of the mask code ``m0 = scale * (2 * onehot(y) - 1)``; also the
            clamp range of x0-estimates.
        block_out_channels: Channels of the UNet levels; the latent is padded to a multiple of
            ``2 ** (len(block_out_channels) - 1)`` (``size_divisor``).
        layers_per_block: ResNet layers per UNet down block.
        norm_num_groups: GroupNorm groups inside the UNet.
        unet_cfg: Further ``UNet2DModel`` arguments (block types, attention); they override
            the light defaults (plain ResNet blocks, no attention).
        num_train_timesteps: Diffusion steps T of the noise schedule.
        beta_schedule: diffusers beta schedule name.
        timestep_spacing: DDIM timestep spacing; 'trailing' makes the first of K steps start
            at t = T - 1, where the sampler's pure noise ``m_T`` belongs.
        ignore_index: Label value without a class (zero code, zero loss weight).
        norm_cfg: Norm of the projector's fusion layer.
        act_cfg: Activation of the projector's fusion layer.
        align_corners: ``align_corners`` of the projector's resizing.
        init_cfg: mmengine initialisation config.
    """

    def __init__(self,
                 in_channels: Sequence[int],
                 num_classes: int,
                 latent_channels: int = 256,
                 latent_stride: int = 4,
                 cond_channels: int = 64,
                 mask_scale: float = 1.0,
                 block_out_channels: Sequence[int] = (32, 64, 128),
                 layers_per_block: int = 1,
                 norm_num_groups: int = 16,
                 unet_cfg: Optional[dict] = None,
                 num_train_timesteps: int = 1000,
                 beta_schedule: str = 'squaredcos_cap_v2',
                 timestep_spacing: str = 'trailing',
                 ignore_index: int = 255,
                 norm_cfg: OptConfigType = dict(type='BN', requires_grad=True),
                 act_cfg: ConfigType = dict(type='ReLU'),
                 align_corners: bool = False,
                 init_cfg: OptConfigType = None):
        super().__init__(init_cfg=init_cfg)
        if len(in_channels) != 4:
            raise ValueError(f'expected 4 backbone stages, got {len(in_channels)}')
        if latent_stride not in (4, 8, 16, 32):
            raise ValueError(f'latent_stride must be a backbone stride, got {latent_stride}')
        self.num_classes = num_classes
        self.latent_channels = latent_channels
        self.latent_stride = latent_stride
        self.latent_index = int(math.log2(latent_stride)) - 2
        self.mask_scale = mask_scale
        self.ignore_index = ignore_index
        self.align_corners = align_corners

        # latent projector E: z0 = fuse(cat_i resize(embed_i(stage_i)))
        self.stage_embeds = nn.ModuleList(
            nn.Conv2d(c, latent_channels, kernel_size=1) for c in in_channels)
        self.fuse = ConvModule(
            latent_channels * len(in_channels),
            latent_channels,
            kernel_size=1,
            norm_cfg=norm_cfg,
            act_cfg=act_cfg)

        # eps_theta(m_t, t | z0)
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
        unet_args.update(unet_cfg or {})
        self.unet = UNet2DModel(**unet_args)
        self.size_divisor = 2**(len(self.unet.config.block_out_channels) - 1)

        schedule = dict(
            num_train_timesteps=num_train_timesteps,
            beta_schedule=beta_schedule,
            prediction_type='epsilon',
            clip_sample=False)
        self.noise_scheduler = DDPMScheduler(**schedule)
        # DDIM clamps its x0-estimate to the code's range (not diffusers' default +-1); an
        # unclamped estimate at t = T - 1 is scaled by 1 / sqrt(alpha_bar) ~ 2e4 and would
        # throw the remaining steps off the data range.
        self.sample_scheduler = DDIMScheduler(
            **dict(schedule, clip_sample=True),
            clip_sample_range=mask_scale,
            timestep_spacing=timestep_spacing)

    @property
    def num_train_timesteps(self) -> int:
        """T, the number of diffusion steps of the noise schedule."""
        return self.noise_scheduler.config.num_train_timesteps

    def forward(self, inputs: Sequence[Tensor]) -> Tensor:
        """Fuse the backbone stages into the image latent z0.

        Args:
            inputs: Backbone stages, (N, C_i, H / s_i, W / s_i) for s_i = 4, 8, 16, 32.

        Returns:
            z0, (N, C_z, h, w) on the grid of the stage with stride ``latent_stride``.
        """
        size = inputs[self.latent_index].shape[2:]
        embeds = [
            resize(embed(x), size=size, mode='bilinear', align_corners=self.align_corners)
            for embed, x in zip(self.stage_embeds, inputs)
        ]
        return self.fuse(torch.cat(embeds, dim=1))

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

    def predict_noise(self, noisy_mask: Tensor, image_latent: Tensor,
                      timesteps: Tensor) -> Tensor:
        """eps_theta(m_t, t | z0) on ``cat([m_t, proj(z0)])``, for any latent size.

        The UNet halves the grid ``len(block_out_channels) - 1`` times, so the input is padded
        (replicated at the bottom and right edges) to a multiple of ``2 ** that`` and the
        prediction cropped back.

        Args:
            noisy_mask: m_t, (N, C_m, h, w).
            image_latent: z0, (N, C_z, h, w).
            timesteps: t, (N, ) long.

        Returns:
            eps_hat, (N, C_m, h, w).
        """
        h, w = noisy_mask.shape[2:]
        sample = torch.cat([noisy_mask, self.cond_proj(image_latent)], dim=1)
        pad_h = -h % self.size_divisor
        pad_w = -w % self.size_divisor
        if pad_h or pad_w:
            sample = F.pad(sample, (0, pad_w, 0, pad_h), mode='replicate')
        noise_pred = self.unet(sample, timesteps).sample
        return noise_pred[:, :, :h, :w]

    def predict_clean_mask(self, noisy_mask: Tensor, noise_pred: Tensor,
                           timesteps: Tensor) -> Tensor:
        """The x0-estimate ``m_hat0 = (m_t - sqrt(1 - a_t) eps_hat) / sqrt(a_t)``, clamped.

        Clamping to the code's range [-scale, scale] bounds the estimate at large t, where
        ``1 / sqrt(a_t)`` reaches about 2e4 for the cosine schedule.

        Args:
            noisy_mask: m_t, (N, C_m, h, w).
            noise_pred: eps_hat, (N, C_m, h, w).
            timesteps: t, (N, ) long, or a scalar shared by the batch.

        Returns:
            m_hat0, (N, C_m, h, w).
        """
        alphas_cumprod = self.noise_scheduler.alphas_cumprod.to(noisy_mask.device)
        alpha_bar = alphas_cumprod[timesteps.to(noisy_mask.device)].reshape(-1, 1, 1, 1)
        estimate = (noisy_mask - (1 - alpha_bar).sqrt() * noise_pred) / alpha_bar.sqrt()
        return estimate.clamp(-self.mask_scale, self.mask_scale)
