"""ICCLD's two-phase domain adaptation (paper, Fig. 1) on top of DACS.

Phase 1 is DACS on E and D (the student's ``phase`` buffer is 1; D reads m_hat0 = 0). In
phase 2 the student's passes run the diffusion, and each iteration, with one draw (eq. 2's
``t`` and ``eps``, the chain's ``m_T``) shared by the three domains, is:

- source: L_seg (eq. 1) + L_ldm (eq. 2) + chain loss + feature distance + lambda_adv *
  generator term (eq. 3)
- mixed (ClassMix of source and pseudo-labelled target): L_seg + L_ldm + chain loss +
  lambda_adv * generator term
- target (pseudo-labels and their weight): L_ldm + chain loss + lambda_adv * generator term
- then one student step, the discriminator's step on the detached inputs of all three
  domains (eq. 3, cross-entropy against the domain), and the teacher's EMA update.

These are parts of DACS's iteration (``DACS.train_step``). The phase is the student's alone:
this wrapper never reads it, it reads what the student's source pass returns (a phase-2 pass
returns its diffusion draw), and adds the target pass (before MIC's masked pass, with
``mask_consistency``) and the discriminator's step only then.

f_dis reads the sample-space output of eps_theta, the chain's x0-estimate divided by the mask
scale. The generator term is computed through the discriminator with detached parameters, so
the discriminator never receives a gradient from it; the discriminator's loss sees only
detached inputs, so the student never receives one from that.
"""
import math
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

import torch
from mmengine.model import is_model_wrapper
from mmengine.optim import OptimWrapper, OptimWrapperDict
from mmseg.registry import MODELS
from mmseg.utils import ConfigType, SampleList
from torch import Tensor

from ..diffusion import DiffusionDraw
from ..losses.iccld_losses import domain_accuracy, loss_adv_discriminator, loss_adv_generator
from .dacs import DACS
from .iteration import UDAIteration

# Domain indices of the discriminator's output (paper: o^s, o^{s+t}, o^t).
SOURCE, MIXED, TARGET = 0, 1, 2
DOMAIN_NAMES = ('src', 'mix', 'tgt')


@dataclass
class ICCLDIteration(UDAIteration):
    """ICCLD's additions: the source pass's ``DiffusionDraw`` (None in phase 1), which the
    mixed and target passes share, and f_dis's detached input of each domain, in pass
    order."""

    draw: Optional[DiffusionDraw] = None
    adv_inputs: List[Tensor] = field(default_factory=list)


@MODELS.register_module()
class ICCLDUDA(DACS):
    """DACS around an ``ICCLD`` segmentor, plus the diffusion and adversarial terms of phase 2.

    ``ICCLDPhaseHook`` sets the training phase (1 or 2) and the adversarial weight through
    :meth:`set_phase`; the phase lives in the student's ``phase`` buffer, so checkpoints
    carry it. Phase 2 needs an ``OptimWrapperDict`` with ``'model'`` and ``'discriminator'``
    (``MultiOptimWrapperConstructor``).

    Args:
        model: Config of the ``ICCLD`` segmentor (the student).
        discriminator: Config of f_dis, e.g. ``DomainDiscriminator``.
        target_condition_grad: Whether the target domain's L_ldm and generator term reach
            E (backbone and projector). False trains eps_theta (and not E) on the target, and
            saves one backward pass of the backbone per iteration; E still learns the
            alignment through the source and mixed domains.
        adv_margins: ``(top, bottom, left, right)`` image pixels cut from f_dis's input in
            every domain (rounded up to latent cells), so that a fixed cue of one domain
            (an ego-vehicle band) cannot be what it learns.
        **kwargs: The arguments of :class:`DACS` (``mask_consistency`` included: MIC's
            masked pass follows the target pass and has no generator term).
    """

    iteration_type = ICCLDIteration

    def __init__(self,
                 model: ConfigType,
                 discriminator: ConfigType,
                 target_condition_grad: bool = True,
                 adv_margins: Sequence[int] = (0, 0, 0, 0),
                 **kwargs) -> None:
        super().__init__(model=model, **kwargs)
        if not hasattr(self.student, 'set_phase'):
            raise TypeError(f'ICCLDUDA needs an ICCLD segmentor (with training phases), '
                            f'got {type(self.student).__name__}')
        if len(adv_margins) != 4 or min(adv_margins) < 0:
            raise ValueError(f'adv_margins is (top, bottom, left, right) >= 0, got '
                             f'{adv_margins!r}')
        self.discriminator = MODELS.build(discriminator)
        self.target_condition_grad = target_condition_grad
        self.adv_margins = tuple(int(m) for m in adv_margins)
        self.lambda_adv = 0.0

    def set_phase(self, phase: int, lambda_adv: float = 0.0) -> bool:
        """Switch student and teacher to phase 1 or 2 and set the adversarial weight.

        Args:
            phase: 1 (DACS on E and D) or 2 (latent diffusion and adversarial alignment).
            lambda_adv: Weight of the generator's KL term (eq. 3).

        Returns:
            Whether the phase changed.
        """
        self.teacher.module.set_phase(phase)
        self.lambda_adv = float(lambda_adv)
        return self.student.set_phase(phase)

    # ------------------------------------------------------------ parts of an iteration

    def source_pass(self, it: ICCLDIteration) -> None:
        """Eq. 1 and, in phase 2, eq. 2 and the chain with a fresh draw (kept for the other
        passes) and the generator term; the feature distance; one backward."""

        def losses() -> dict:
            output = self.source_losses(it.data['inputs'], it.data['data_samples'],
                                        mode='uda')
            it.draw = output.draw
            return self.with_generator_loss(output, it)

        self.student_pass(it, 'src', losses)

    def mixed_pass(self, it: ICCLDIteration) -> None:
        """Eq. 1 and, in phase 2, eq. 2, the chain and the generator term on the mixed batch,
        with the iteration's draw, one backward."""
        self.student_pass(it, 'mix', lambda: self.with_generator_loss(
            self.mixed_losses(it.mixed_inputs, it.mixed_samples, mode='uda', draw=it.draw),
            it))

    def extra_passes(self, it: ICCLDIteration) -> None:
        """In phase 2 (the source pass drew), the target pass (:meth:`target_pass`); then
        DACS's extra passes."""
        if it.draw is not None:
            self.target_pass(it)
        super().extra_passes(it)

    def target_pass(self, it: ICCLDIteration) -> None:
        """Eq. 2, the chain and the generator term on the pseudo-labelled target
        (:meth:`target_losses`), with the iteration's draw, one backward."""
        if not (isinstance(it.optim_wrappers, OptimWrapperDict)
                and 'discriminator' in it.optim_wrappers.keys()):
            raise KeyError('ICCLD phase 2 trains a discriminator: configure optim_wrapper '
                           "with constructor='MultiOptimWrapperConstructor' and the keys "
                           "'model' and 'discriminator'")
        samples = self.build_data_samples(it.pseudo_labels.unsqueeze(1),
                                          it.pseudo_weights.unsqueeze(1),
                                          it.data['target_data_samples'])
        self.student_pass(it, 'tgt', lambda: self.with_generator_loss(
            self.target_losses(it.data['target_inputs'], samples, it.draw), it))

    def after_student_step(self, it: ICCLDIteration) -> None:
        """In phase 2, the discriminator's step (:meth:`discriminator_step`) on the domains'
        detached inputs, after the generator graphs were backpropagated."""
        if it.adv_inputs:
            it.log_vars.update(self.discriminator_step(it.optim_wrappers['discriminator'],
                                                       it.adv_inputs))

    def finish_iteration(self, it: ICCLDIteration) -> Dict[str, Tensor]:
        """DACS's log variables; phase 2 adds ``tgt.*``, ``dis.*`` (loss and accuracy per
        domain, from the parts) and ``lambda_adv``."""
        log_vars = super().finish_iteration(it)
        if it.adv_inputs:
            log_vars['lambda_adv'] = torch.tensor(self.lambda_adv)
        return log_vars

    # ------------------------------------------------- what the parts compute

    def target_losses(self, inputs: Tensor, data_samples: SampleList, draw):
        """Eq. 2 and the chain on the target with its pseudo-labels and weights (no L_seg:
        DACS supervises the target only through the mix).

        Args:
            inputs: Target images ``(N, 3, H, W)``.
            data_samples: Samples with the pseudo-labels as ``gt_sem_seg`` and their pixel
                weights as ``seg_weight``.
            draw: The iteration's ``DiffusionDraw``.

        Returns:
            The student's ``ICCLDOutput`` with ``loss_ldm``.
        """
        return self.model(inputs, data_samples, mode='uda', draw=draw, with_seg=False,
                          condition_grad=self.target_condition_grad)

    def cut_adv_margins(self, value: Tensor) -> Tensor:
        """A latent-grid map without the ``adv_margins`` rows and columns (rounded up to
        latent cells).

        Args:
            value: (N, C, h, w) on the student's latent grid.

        Returns:
            (N, C, h - top - bottom, w - left - right).
        """
        stride = self.student.mask_latent_stride
        top, bottom, left, right = (math.ceil(m / stride) for m in self.adv_margins)
        h, w = value.shape[2:]
        if top + bottom >= h or left + right >= w:
            raise ValueError(f'adv_margins {self.adv_margins} leave nothing of a {h}x{w} '
                             f'latent (stride {stride})')
        return value[:, :, top:h - bottom, left:w - right]

    def with_generator_loss(self, output, it: ICCLDIteration) -> dict:
        """One domain's losses, with the generator's term of eq. 3 in phase 2.

        Args:
            output: One domain's ``ICCLDOutput``; in phase 2 (it holds the chain's estimate)
                ``loss_adv_gen`` joins its losses.
            it: The iteration; its ``adv_inputs`` receive f_dis's input, detached, for the
                discriminator's step.

        Returns:
            ``output.losses``.
        """
        if output.sample is None:
            return output.losses
        adv_input = self.cut_adv_margins(output.sample / self.student.diffusion.mask_scale)
        it.adv_inputs.append(adv_input.detach())
        if self.lambda_adv > 0:
            output.losses['loss_adv_gen'] = self.lambda_adv * loss_adv_generator(
                self.discriminate_without_grad(adv_input))
        return output.losses

    def discriminate_without_grad(self, adv_input: Tensor) -> Tensor:
        """f_dis(input) with the discriminator's parameters detached.

        Gradients reach the input (and through it eps_theta and E) but never the
        discriminator, which the generator loss must not train. Going around the DDP
        wrapper is right here: nothing of the discriminator is to be synchronised. The
        graph holds views of the discriminator's weights, so it must be backpropagated
        before the discriminator's optimizer steps (the order of the iteration's parts).

        Args:
            adv_input: f_dis's input ``(N, C_m, h, w)``.

        Returns:
            Domain logits ``(N, 3)`` or, for a patch discriminator, ``(N, 3, h', w')``.
        """
        discriminator = self.discriminator
        if is_model_wrapper(discriminator):
            discriminator = discriminator.module
        state = {name: p.detach() for name, p in discriminator.named_parameters()}
        state.update(discriminator.named_buffers())
        return torch.func.functional_call(discriminator, state, (adv_input, ))

    def discriminator_step(self, optim_wrapper: OptimWrapper,
                           adv_inputs: List[Tensor]) -> Dict[str, Tensor]:
        """Train f_dis to tell the domains apart from detached inputs (eq. 3, first term).

        Args:
            optim_wrapper: The discriminator's optimizer wrapper.
            adv_inputs: Detached inputs of the source, mixed and target batches.

        Returns:
            ``dis.loss`` and ``dis.acc_src/mix/tgt`` (fraction of each domain's decisions,
            per image or per patch, the discriminator gets right before its update).
        """
        with optim_wrapper.optim_context(self.discriminator):
            logits = self.discriminator(torch.cat(adv_inputs))
            per_domain = logits.split([len(a) for a in adv_inputs])
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
            log_vars[f'dis.acc_{DOMAIN_NAMES[domain]}'] = domain_accuracy(
                domain_logits.detach(), domain)
        return log_vars
