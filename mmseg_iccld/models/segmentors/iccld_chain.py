"""Phase 2 of ICCLD on one view's latent: eq. 2 on the label code, the sampler's chain and
its loss, and the start of a refining chain (the training half of the diffusion in ``ICCLD``).
"""
from dataclasses import dataclass, field
from typing import List, Optional, Tuple

import torch
from mmseg.models.utils import resize
from mmseg.utils import SampleList
from torch import Tensor

from ..diffusion import DiffusionDraw
from ..losses.iccld_losses import loss_chain, loss_ldm

CHAIN_GRADS = dict(all=None, last=1, none=0)  # -> grad_steps of MaskDiffusion.sample


@dataclass
class ViewDiffusion:
    """Phase 2 on one view's latent (:meth:`ICCLDChain.view_diffusion`).

    Attributes:
        losses: ``loss_ldm`` (eq. 2) and ``loss_chain``, each when computed.
        noise_pred: eps_hat of eq. 2 with its graph.
        label_estimate: The x0-estimate of eq. 2's draw (the noised label's).
        sample: x0-estimate of the sampler's chain with its graph, or None.
    """
    losses: dict = field(default_factory=dict)
    noise_pred: Optional[Tensor] = None
    label_estimate: Optional[Tensor] = None
    sample: Optional[Tensor] = None


class ICCLDChain:
    """Diffusion methods of :class:`ICCLD`, which provides ``diffusion``, ``decode_head``,
    ``chain_steps``, ``chain_grad``, ``chain_loss_weight``, ``loss_ldm_weight``,
    ``decoder_input``, ``detach_mask_estimate``, ``refine_strength`` and
    ``refine_start_grad``.
    """

    def view_diffusion(self, image_latent: Tensor, data_samples: SampleList,
                       draw: DiffusionDraw, with_ldm: bool = True,
                       with_chain: bool = True,
                       start: Optional[Tensor] = None) -> ViewDiffusion:
        """Phase 2 on one view's latent: eq. 2 on its label code and the sampler's chain.

        Args:
            image_latent: z0 of the view, (N, C_z, h, w).
            data_samples: Samples with the view's ``gt_sem_seg`` and optionally ``seg_weight``.
            draw: eps, t and m_T of the view.
            with_ldm: Compute eq. 2's loss.
            with_chain: Run the sampler's chain (and its loss, ``chain_loss_weight`` > 0).
            start: The code the chain refines (``refine_strength``), or None: from m_T.

        Returns:
            :class:`ViewDiffusion`.
        """
        mask_latent, weight, noise_pred, label_estimate = self._denoise_labels(
            image_latent, data_samples, draw)
        view = ViewDiffusion(noise_pred=noise_pred, label_estimate=label_estimate)
        if with_ldm:
            view.losses['loss_ldm'] = self.loss_ldm_weight * loss_ldm(noise_pred, draw.noise,
                                                                      weight)
        if with_chain:
            view.sample = self.run_chain(image_latent, draw.chain_noise, self.chain_steps,
                                         start, CHAIN_GRADS[self.chain_grad])
            if self.chain_loss_weight > 0:
                view.losses['loss_chain'] = self.chain_loss_weight * loss_chain(
                    view.sample, mask_latent, weight)
        return view

    def run_chain(self, image_latent: Tensor, noise: Tensor, num_steps: int,
                  start: Optional[Tensor] = None, grad_steps: Optional[int] = None) -> Tensor:
        """The sampler's K steps: from m_T = ``noise``, or refining ``start`` (SDEdit, with
        ``refine_strength`` of the schedule)."""
        if start is None:
            return self.diffusion.sample(image_latent, noise, num_steps, grad_steps)
        return self.diffusion.sample(image_latent, noise, num_steps, grad_steps, start=start,
                                     strength=self.refine_strength)

    def chain_start(self, stages: List[Tensor], image_latent: Tensor) -> Optional[Tensor]:
        """The code a refining chain starts from: D's own prediction with m_hat0 = 0 (phase
        1's decode; in ``ICCLDHR`` the context view's), its softmax coded as the mask, on the
        latent grid. None without ``refine_strength`` (the chain starts from noise). In
        training the decode is D's test-time one, in eval mode and without graph, unless
        ``refine_start_grad``: then it runs in training mode and the chain's and D's losses
        reach D through it.

        Args:
            stages: Encoder stages of the view that carries the chain.
            image_latent: z0 of that view, (N, C_z, h, w).

        Returns:
            ``scale * (2 * softmax(D(stages, z0, 0)) - 1)``, (N, C_m, h, w), or None.
        """
        if self.refine_strength is None:
            return None
        head = self.chain_start_head
        if self.training and not self.refine_start_grad:
            # as D decodes at test time: eval mode (running statistics, no dropout), and
            # no graph, so the extra decode neither trains D nor moves its BN statistics
            was_training = head.training
            head.eval()
            with torch.no_grad():
                logits = head(stages, image_latent, None)
            head.train(was_training)
        else:
            logits = head(stages, image_latent, None)
        if logits.shape[2:] != image_latent.shape[2:]:
            logits = resize(logits, size=image_latent.shape[2:], mode='bilinear',
                            align_corners=self.align_corners)
        return self.diffusion.probability_code(logits.softmax(dim=1))

    @property
    def chain_start_head(self):
        """The single-view D whose m_hat0 = 0 prediction a refining chain starts from."""
        return self.decode_head

    def view_mask_estimate(self, view: ViewDiffusion) -> Tensor:
        """The m_hat0 that D reads in training (``decoder_input``, ``detach_mask_estimate``)."""
        estimate = view.sample if self.decoder_input == 'sampled' else view.label_estimate
        return estimate.detach() if self.detach_mask_estimate else estimate

    def _denoise_labels(self, image_latent: Tensor, data_samples: SampleList,
                        draw: DiffusionDraw) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
        """eps_theta on the forward-noised label code of ``data_samples`` (eq. 2's input).

        Args:
            image_latent: z0, (N, C_z, h, w).
            data_samples: Samples with ``gt_sem_seg`` and optionally ``seg_weight``.
            draw: eps and t of the noising.

        Returns:
            The label code m0 and its pixel weight, eps_hat and the x0-estimate.
        """
        mask_latent, weight = self.diffusion.training_targets(data_samples,
                                                              image_latent.shape[2:])
        noisy_mask = self.diffusion.add_noise(mask_latent, draw.noise, draw.timesteps)
        noise_pred, label_estimate = self.diffusion.denoise(noisy_mask, image_latent,
                                                            draw.timesteps)
        return mask_latent, weight, noise_pred, label_estimate

    def _phase1_ldm(self, image_latent: Tensor, data_samples: SampleList) -> Tensor:
        """Eq. 2 with a fresh draw, for ``phase1_ldm_weight`` (z0 given detached).

        Args:
            image_latent: z0 without graph, (N, C_z, h, w).
            data_samples: Samples with ``gt_sem_seg`` and optionally ``seg_weight``.

        Returns:
            The unweighted L_ldm.
        """
        draw = self.diffusion.draw(image_latent)
        _, weight, noise_pred, _ = self._denoise_labels(image_latent, data_samples, draw)
        return loss_ldm(noise_pred, draw.noise, weight)
