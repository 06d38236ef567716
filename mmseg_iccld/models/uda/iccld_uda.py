"""ICCLD's two-step domain adaptation (paper, Fig. 1) on top of DACS.

Step 1 is DACS on E and D (``ICCLD.diffusion_stage == 1``; D reads m_hat0 = 0). Step 2 adds,
per iteration, with one draw of ``t`` and ``eps`` shared by the three domains:

- source: L_seg (eq. 1) + L_ldm (eq. 2) + feature distance + lambda_adv * generator KL (eq. 3)
- mixed (ClassMix of source and pseudo-labelled target): L_seg + L_ldm + lambda_adv * KL
- target (pseudo-labels and their weight): L_ldm + lambda_adv * KL
- then one student step, the discriminator's step on the detached predicted noise of all
  three domains (eq. 3, cross-entropy against the domain), and the teacher's EMA update.

The generator's KL is computed through the discriminator with detached parameters, so the
discriminator never receives a gradient from it; the discriminator's loss sees only
detached noise predictions, so the student never receives one from that.
"""
from collections import OrderedDict
from typing import Dict, List, Union

import torch
from mmengine.model import is_model_wrapper
from mmengine.optim import OptimWrapper, OptimWrapperDict
from mmseg.registry import MODELS
from mmseg.utils import ConfigType, SampleList
from torch import Tensor

from ..losses.iccld_losses import loss_adv_discriminator, loss_adv_generator
from .dacs import DACS

# Domain indices of the discriminator's output (paper: o^s, o^{s+t}, o^t).
SOURCE, MIXED, TARGET = 0, 1, 2
DOMAIN_NAMES = ('src', 'mix', 'tgt')


@MODELS.register_module()
class ICCLDUDA(DACS):
    """DACS around an ``ICCLD`` segmentor, plus the diffusion and adversarial terms of step 2.

    The training step (1 or 2) and the adversarial weight are set by ``ICCLDStepHook``
    through :meth:`set_training_step`; the step lives in the student's ``diffusion_stage``
    buffer, so checkpoints carry it. Step 2 needs an ``OptimWrapperDict`` with ``'model'``
    and ``'discriminator'`` (``MultiOptimWrapperConstructor``).

    Args:
        model: Config of the ``ICCLD`` segmentor (the student).
        discriminator: Config of f_dis, e.g. ``DomainDiscriminator``.
        target_condition_grad: Whether the target domain's L_ldm and generator KL reach E
            (backbone and projector). False trains eps_theta (and not E) on the target, and
            saves one backward pass of the backbone per iteration; E still learns the
            alignment through the source and mixed domains.
        **kwargs: The arguments of :class:`DACS`.
    """

    def __init__(self,
                 model: ConfigType,
                 discriminator: ConfigType,
                 target_condition_grad: bool = True,
                 **kwargs) -> None:
        super().__init__(model=model, **kwargs)
        if not hasattr(self.student, 'set_diffusion_stage'):
            raise TypeError(f'ICCLDUDA needs an ICCLD segmentor (with diffusion stages), '
                            f'got {type(self.student).__name__}')
        self.discriminator = MODELS.build(discriminator)
        self.target_condition_grad = target_condition_grad
        self.lambda_adv = 0.0

    @property
    def training_step(self) -> int:
        """The current training step, 1 or 2 (the student's diffusion stage)."""
        return self.student.current_stage

    def set_training_step(self, step: int, lambda_adv: float = 0.0) -> None:
        """Switch student and teacher to step 1 or 2 and set the adversarial weight.

        Args:
            step: 1 (DACS on E and D) or 2 (latent diffusion and adversarial alignment).
            lambda_adv: Weight of the generator's KL term (eq. 3).
        """
        self.student.set_diffusion_stage(step)
        self.teacher.module.set_diffusion_stage(step)
        self.lambda_adv = float(lambda_adv)

    def train_step(self, data: Union[dict, tuple, list],
                   optim_wrapper: Union[OptimWrapper, OptimWrapperDict]) -> Dict[str, Tensor]:
        """One iteration of step 1 (DACS) or step 2 (module docstring).

        Args:
            data: A UDA batch (``inputs``, ``data_samples``, ``target_inputs``,
                ``target_data_samples``).
            optim_wrapper: ``OptimWrapperDict`` with ``'model'`` (and, for step 2,
                ``'discriminator'``), or the student's wrapper alone in step 1.

        Returns:
            Detached log variables: ``loss``, ``src.*``, ``mix.*``, ``tgt.*``, ``dis.*``
            (discriminator loss and accuracy per domain), ``pseudo_weight``, ``lambda_adv``.
        """
        if self.training_step == 1:
            return super().train_step(data, optim_wrapper)
        if not (isinstance(optim_wrapper, OptimWrapperDict)
                and 'discriminator' in optim_wrapper.keys()):
            raise KeyError('ICCLD step 2 trains a discriminator: configure optim_wrapper '
                           "with constructor='MultiOptimWrapperConstructor' and the keys "
                           "'model' and 'discriminator'")
        model_wrapper = optim_wrapper['model']
        data = self.preprocess(data)
        if self.teacher.host_steps == 0:
            self.initialize_frozen_copies()
        self.loss_guard.begin(self)

        noise_preds: List[Tensor] = []
        with model_wrapper.optim_context(self.model):
            losses = self.source_losses(data['inputs'], data['data_samples'],
                                        return_noise_pred=True)
            noise, timesteps = losses.pop('noise'), losses.pop('timesteps')
            self.add_generator_loss(losses, noise_preds)
        src_loss, src_log = self.backward_losses(model_wrapper, losses, 'src')

        pseudo_labels, pseudo_weights, pseudo_weight = self.pseudo_label(
            data['target_inputs'], data['target_data_samples'])
        mixed_inputs, mixed_samples = self.mix(data['inputs'], data['data_samples'],
                                               data['target_inputs'], pseudo_labels,
                                               pseudo_weights)
        with model_wrapper.optim_context(self.model):
            losses = self.mixed_losses(mixed_inputs, mixed_samples, noise=noise,
                                       timesteps=timesteps, return_noise_pred=True)
            self.drop_draw(losses)
            self.add_generator_loss(losses, noise_preds)
        mix_loss, mix_log = self.backward_losses(model_wrapper, losses, 'mix')

        target_samples = self.build_data_samples(pseudo_labels.unsqueeze(1),
                                                 pseudo_weights.unsqueeze(1),
                                                 data['target_data_samples'])
        with model_wrapper.optim_context(self.model):
            losses = self.target_losses(data['target_inputs'], target_samples, noise,
                                        timesteps)
            self.add_generator_loss(losses, noise_preds)
        tgt_loss, tgt_log = self.backward_losses(model_wrapper, losses, 'tgt')

        if not self.loss_guard.skip_step():
            model_wrapper.step()
        model_wrapper.zero_grad()
        dis_log = self.discriminator_step(optim_wrapper['discriminator'], noise_preds)
        if not self.loss_guard.skip_step():
            self.update_teacher()

        log_vars = OrderedDict(loss=src_loss + mix_loss + tgt_loss)
        for part in (src_log, mix_log, tgt_log, dis_log):
            log_vars.update(part)
        log_vars['pseudo_weight'] = pseudo_weight
        log_vars['lambda_adv'] = torch.tensor(self.lambda_adv)
        log_vars.update(self.loss_guard.log_vars())
        return log_vars

    # ------------------------------------------------------------- steps of an iteration

    def target_losses(self, inputs: Tensor, data_samples: SampleList, noise: Tensor,
                      timesteps: Tensor) -> dict:
        """Eq. 2 on the target with its pseudo-labels and weights (no L_seg: DACS supervises
        the target only through the mix).

        Args:
            inputs: Target images ``(N, 3, H, W)``.
            data_samples: Samples with the pseudo-labels as ``gt_sem_seg`` and their pixel
                weights as ``seg_weight``.
            noise: The iteration's eps ``(N, C_m, h, w)``.
            timesteps: The iteration's t ``(N, )``.

        Returns:
            ``loss_ldm`` and ``noise_pred``.
        """
        losses = self.model(inputs, data_samples, mode='loss', noise=noise,
                            timesteps=timesteps, with_seg=False, with_ldm=True,
                            return_noise_pred=True,
                            condition_grad=self.target_condition_grad)
        self.drop_draw(losses)
        return losses

    def add_generator_loss(self, losses: dict, noise_preds: List[Tensor]) -> None:
        """Replace ``noise_pred`` in ``losses`` by the generator's KL term (eq. 3).

        Args:
            losses: One domain's losses with ``noise_pred`` (eps_hat with its graph).
            noise_preds: Receives eps_hat, detached, for the discriminator's step.
        """
        noise_pred = losses.pop('noise_pred')
        noise_preds.append(noise_pred.detach())
        if self.lambda_adv > 0:
            losses['loss_adv_gen'] = self.lambda_adv * loss_adv_generator(
                self.discriminate_without_grad(noise_pred))

    def discriminate_without_grad(self, noise_pred: Tensor) -> Tensor:
        """f_dis(eps_hat) with the discriminator's parameters detached.

        Gradients reach eps_hat (and through it eps_theta and E) but never the
        discriminator, which the generator loss must not train. Going around the DDP
        wrapper is right here: nothing of the discriminator is to be synchronised. The
        graph holds views of the discriminator's weights, so it must be backpropagated
        before the discriminator's optimizer steps (``train_step``'s order).

        Args:
            noise_pred: eps_hat ``(N, C_m, h, w)``.

        Returns:
            Domain logits ``(N, 3)``.
        """
        discriminator = self.discriminator
        if is_model_wrapper(discriminator):
            discriminator = discriminator.module
        state = {name: p.detach() for name, p in discriminator.named_parameters()}
        state.update(discriminator.named_buffers())
        return torch.func.functional_call(discriminator, state, (noise_pred, ))

    def discriminator_step(self, optim_wrapper: OptimWrapper,
                           noise_preds: List[Tensor]) -> Dict[str, Tensor]:
        """Train f_dis to tell the domains apart from detached eps_hat (eq. 3, first term).

        Args:
            optim_wrapper: The discriminator's optimizer wrapper.
            noise_preds: Detached eps_hat of the source, mixed and target batches.

        Returns:
            ``dis.loss`` and ``dis.acc_src/mix/tgt`` (fraction of each domain's samples the
            discriminator classifies correctly, before its update).
        """
        with optim_wrapper.optim_context(self.discriminator):
            logits = self.discriminator(torch.cat(noise_preds))
            per_domain = logits.split([len(n) for n in noise_preds])
            loss = sum(loss_adv_discriminator(domain_logits, domain)
                       for domain, domain_logits in enumerate(per_domain)) / len(per_domain)
        self.loss_guard.check({'dis.loss': loss})
        if self.loss_guard.skip_step():
            optim_wrapper.backward(loss)  # DDP expects a backward for each forward
            optim_wrapper.zero_grad()
        else:
            optim_wrapper.update_params(loss)
        log_vars = OrderedDict({'dis.loss': loss.detach()})
        for domain, domain_logits in enumerate(per_domain):
            correct = (domain_logits.detach().argmax(dim=1) == domain).float().mean()
            log_vars[f'dis.acc_{DOMAIN_NAMES[domain]}'] = correct
        return log_vars

    @staticmethod
    def drop_draw(losses: dict) -> None:
        """Remove the shared draw the student hands back (it is the iteration's own)."""
        losses.pop('noise', None)
        losses.pop('timesteps', None)
