"""ICCLD's two-phase domain adaptation (paper, Fig. 1) on top of DACS.

Phase 1 is DACS on E and D (``ICCLD.phase == 1``; D reads m_hat0 = 0). Phase 2 adds,
per iteration, with one draw (eq. 2's ``t`` and ``eps``, the chain's ``m_T``) shared by the
three domains:

- source: L_seg (eq. 1) + L_ldm (eq. 2) + feature distance + lambda_adv * generator term (eq. 3)
- mixed (ClassMix of source and pseudo-labelled target): L_seg + L_ldm + lambda_adv * generator
- target (pseudo-labels and their weight): L_ldm + lambda_adv * generator
- then one student step, the discriminator's step on the detached inputs of all three
  domains (eq. 3, cross-entropy against the domain), and the teacher's EMA update.

These are parts of DACS's iteration (``DACS.train_step``): phase 2 extends the source and
mixed passes, adds the target pass as the first extra pass (MIC's masked pass, with
``mask_consistency``, follows it) and the discriminator's step after the student's step.

What f_dis reads (``adv_input``): the sample-space output of eps_theta, the x0-estimate of
the sampler's chain (default), eq. 2's predicted noise (the paper's literal input), or the
image latent z0 that conditions eps_theta (the latent features eq. 3 is said to align). The
generator term is computed through the discriminator with detached parameters, so the
discriminator never receives a gradient from it; the discriminator's loss sees only detached
inputs, so the student never receives one from that.
"""
import math
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Union

import torch
from mmengine.model import is_model_wrapper
from mmengine.optim import OptimWrapper, OptimWrapperDict
from mmseg.registry import MODELS
from mmseg.utils import ConfigType, SampleList
from torch import Tensor

from ..diffusion import DiffusionDraw
from ..losses.iccld_losses import (domain_accuracy, loss_adv_discriminator,
                                   loss_adv_generator, loss_adv_generator_uniform_ce)
from .dacs import DACS
from .iteration import UDAIteration

# Domain indices of the discriminator's output (paper: o^s, o^{s+t}, o^t).
SOURCE, MIXED, TARGET = 0, 1, 2
DOMAIN_NAMES = ('src', 'mix', 'tgt')
ADV_INPUTS = ('sample', 'noise_pred', 'latent')
GENERATOR_LOSSES = dict(kl=loss_adv_generator, uniform_ce=loss_adv_generator_uniform_ce)


@dataclass
class ICCLDIteration(UDAIteration):
    """A phase-2 iteration's additions: the source pass's ``DiffusionDraw``, which the mixed
    and target passes share, and f_dis's detached input of each domain, in pass order."""

    draw: Optional[DiffusionDraw] = None
    adv_inputs: List[Tensor] = field(default_factory=list)


@MODELS.register_module()
class ICCLDUDA(DACS):
    """DACS around an ``ICCLD`` segmentor, plus the diffusion and adversarial terms of phase 2.

    The training phase (1 or 2) and the adversarial weight are set by ``ICCLDPhaseHook``
    through :meth:`set_phase`; the phase lives in the student's ``phase`` buffer, so
    checkpoints carry it. Phase 2 needs an ``OptimWrapperDict`` with ``'model'``
    and ``'discriminator'`` (``MultiOptimWrapperConstructor``).

    Args:
        model: Config of the ``ICCLD`` segmentor (the student).
        discriminator: Config of f_dis, e.g. ``DomainDiscriminator``.
        target_condition_grad: Whether the target domain's L_ldm and generator term reach
            E (backbone and projector). False trains eps_theta (and not E) on the target, and
            saves one backward pass of the backbone per iteration; E still learns the
            alignment through the source and mixed domains.
        adv_input: What f_dis reads: ``'sample'``, the x0-estimate of the sampler's chain
            divided by the mask scale (sample space, label-free, what D reads at test time),
            ``'noise_pred'``, eq. 2's eps_hat (eq. 3 read literally), or ``'latent'``, z0
            (E's output, eps_theta's condition; f_dis's ``in_channels`` is then C_z).
        adv_margins: ``(top, bottom, left, right)`` image pixels cut from f_dis's input in
            every domain (rounded up to latent cells), so that a fixed cue of one domain
            (an ego-vehicle band) cannot be what it learns.
        generator_loss: ``'kl'``: ``KL(f_dis || U)`` (eq. 3 as written; flat near uniform)
            or ``'uniform_ce'``: ``KL(U || f_dis)``, the non-saturating reading.
        teacher_num_inference_steps: K of the teacher's pseudo-labels in phase 2; None uses
            the teacher's test K.
        **kwargs: The arguments of :class:`DACS` (``mask_consistency`` included: MIC's
            masked pass follows the target pass and has no generator term).
    """

    iteration_type = ICCLDIteration

    def __init__(self,
                 model: ConfigType,
                 discriminator: ConfigType,
                 target_condition_grad: bool = True,
                 adv_input: str = 'sample',
                 adv_margins: Sequence[int] = (0, 0, 0, 0),
                 generator_loss: str = 'kl',
                 teacher_num_inference_steps: Optional[int] = None,
                 **kwargs) -> None:
        super().__init__(model=model, **kwargs)
        if not hasattr(self.student, 'set_phase'):
            raise TypeError(f'ICCLDUDA needs an ICCLD segmentor (with training phases), '
                            f'got {type(self.student).__name__}')
        if adv_input not in ADV_INPUTS:
            raise ValueError(f'adv_input must be one of {ADV_INPUTS}, got {adv_input!r}')
        if generator_loss not in GENERATOR_LOSSES:
            raise ValueError(f'generator_loss must be one of {tuple(GENERATOR_LOSSES)}, got '
                             f'{generator_loss!r}')
        if len(adv_margins) != 4 or min(adv_margins) < 0:
            raise ValueError(f'adv_margins is (top, bottom, left, right) >= 0, got '
                             f'{adv_margins!r}')
        self.discriminator = MODELS.build(discriminator)
        self.target_condition_grad = target_condition_grad
        self.adv_input = adv_input
        self.adv_margins = tuple(int(m) for m in adv_margins)
        self.generator_loss = generator_loss
        self.teacher_num_inference_steps = teacher_num_inference_steps
        self.lambda_adv = 0.0

    @property
    def runs_chain(self) -> bool:
        """Whether every phase-2 pass runs the sampler's chain, also where D does not read
        it (the target pass): when f_dis reads its estimate (``adv_input='sample'``) or the
        chain has a loss of its own (the student's ``chain_loss_weight`` > 0)."""
        return self.adv_input == 'sample' or self.student.chain_loss_weight > 0

    @property
    def phase(self) -> int:
        """The current training phase, 1 or 2 (the student's ``phase`` buffer)."""
        return self.student.current_phase

    def set_phase(self, phase: int, lambda_adv: float = 0.0) -> None:
        """Switch student and teacher to phase 1 or 2 and set the adversarial weight.

        Args:
            phase: 1 (DACS on E and D) or 2 (latent diffusion and adversarial alignment).
            lambda_adv: Weight of the generator's KL term (eq. 3).
        """
        self.student.set_phase(phase)
        self.teacher.module.set_phase(phase)
        self.lambda_adv = float(lambda_adv)

    # ------------------------------------------------------------ parts of an iteration

    def begin_iteration(self, data: Union[dict, tuple, list],
                        optim_wrapper: Union[OptimWrapper, OptimWrapperDict]) -> ICCLDIteration:
        """DACS's beginning; phase 2 first checks for the discriminator's optimizer wrapper.

        Args:
            data: A UDA batch.
            optim_wrapper: ``OptimWrapperDict`` with ``'model'`` (and, for phase 2,
                ``'discriminator'``), or the student's wrapper alone in phase 1.
        """
        if self.phase == 2 and not (isinstance(optim_wrapper, OptimWrapperDict)
                                    and 'discriminator' in optim_wrapper.keys()):
            raise KeyError('ICCLD phase 2 trains a discriminator: configure optim_wrapper '
                           "with constructor='MultiOptimWrapperConstructor' and the keys "
                           "'model' and 'discriminator'")
        return super().begin_iteration(data, optim_wrapper)

    def source_pass(self, it: ICCLDIteration) -> None:
        """Phase 2: eq. 1, eq. 2 with a fresh draw (kept for the other passes), the feature
        distance and the generator term on the source, one backward."""
        if self.phase == 1:
            return super().source_pass(it)

        def losses() -> dict:
            output = self.source_losses(it.data['inputs'], it.data['data_samples'],
                                        mode='uda', with_sample=self.runs_chain)
            it.draw = output.draw
            return self.with_generator_loss(output, it)

        self.student_pass(it, 'src', losses)

    def mixed_pass(self, it: ICCLDIteration) -> None:
        """Phase 2: eq. 1, eq. 2 and the generator term on the mixed batch, with the
        iteration's draw, one backward."""
        if self.phase == 1:
            return super().mixed_pass(it)
        self.student_pass(it, 'mix', lambda: self.with_generator_loss(
            self.mixed_losses(it.mixed_inputs, it.mixed_samples, mode='uda', draw=it.draw,
                              with_sample=self.runs_chain), it))

    def extra_passes(self, it: ICCLDIteration) -> None:
        """Phase 2: the target pass (:meth:`target_pass`), then DACS's extra passes."""
        if self.phase == 2:
            self.target_pass(it)
        super().extra_passes(it)

    def target_pass(self, it: ICCLDIteration) -> None:
        """Eq. 2 and the generator term on the pseudo-labelled target (:meth:`target_losses`),
        with the iteration's draw, one backward."""
        samples = self.build_data_samples(it.pseudo_labels.unsqueeze(1),
                                          it.pseudo_weights.unsqueeze(1),
                                          it.data['target_data_samples'])
        self.student_pass(it, 'tgt', lambda: self.with_generator_loss(
            self.target_losses(it.data['target_inputs'], samples, it.draw), it))

    def after_student_step(self, it: ICCLDIteration) -> None:
        """Phase 2: the discriminator's step (:meth:`discriminator_step`) on the domains'
        detached inputs, after the generator graphs were backpropagated."""
        if self.phase == 2:
            it.log_vars.update(self.discriminator_step(it.optim_wrappers['discriminator'],
                                                       it.adv_inputs))

    def finish_iteration(self, it: ICCLDIteration) -> Dict[str, Tensor]:
        """DACS's log variables; phase 2 adds ``tgt.*``, ``dis.*`` (loss and accuracy per
        domain, from the parts) and ``lambda_adv``."""
        log_vars = super().finish_iteration(it)
        if self.phase == 2:
            log_vars['lambda_adv'] = torch.tensor(self.lambda_adv)
        return log_vars

    # ------------------------------------------------- what the parts compute

    def teacher_logits(self, inputs: Tensor, data_samples: SampleList) -> Tensor:
        """The teacher's logits, decoded with ``teacher_num_inference_steps`` when set."""
        steps = self.teacher_num_inference_steps
        if steps is None or not self.teacher.module.in_phase2:
            return super().teacher_logits(inputs, data_samples)
        test_cfg = self.teacher.module.test_cfg
        configured = test_cfg.get('num_inference_steps', 3)
        test_cfg['num_inference_steps'] = steps
        try:
            return super().teacher_logits(inputs, data_samples)
        finally:
            test_cfg['num_inference_steps'] = configured

    def target_losses(self, inputs: Tensor, data_samples: SampleList, draw):
        """Eq. 2 on the target with its pseudo-labels and weights (no L_seg: DACS supervises
        the target only through the mix), and the chain (:attr:`runs_chain`) for eq. 3 and
        its own loss.

        Args:
            inputs: Target images ``(N, 3, H, W)``.
            data_samples: Samples with the pseudo-labels as ``gt_sem_seg`` and their pixel
                weights as ``seg_weight``.
            draw: The iteration's ``DiffusionDraw``.

        Returns:
            The student's ``ICCLDOutput`` with ``loss_ldm``.
        """
        return self.model(inputs, data_samples, mode='uda', draw=draw, with_seg=False,
                          with_ldm=True, with_sample=self.runs_chain,
                          condition_grad=self.target_condition_grad)

    def adversarial_input(self, output) -> Tensor:
        """What f_dis reads of one domain's pass, with graph, margins cut.

        Args:
            output: The student's ``ICCLDOutput`` of that domain.

        Returns:
            The chain's x0-estimate / mask scale (``adv_input='sample'``) or eps_hat,
            (N, C_m, h', w'), or z0 (``'latent'``), (N, C_z, h', w').
        """
        if self.adv_input == 'sample':
            return self.cut_adv_margins(output.sample / self.student.diffusion.mask_scale)
        if self.adv_input == 'latent':
            return self.cut_adv_margins(output.image_latent)
        return self.cut_adv_margins(output.noise_pred)

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
        """One domain's losses with the generator's term (:meth:`add_generator_loss`)."""
        self.add_generator_loss(output, it.adv_inputs)
        return output.losses

    def add_generator_loss(self, output, adv_inputs: List[Tensor]) -> None:
        """Add the generator's term of eq. 3 to one domain's losses.

        Args:
            output: One domain's ``ICCLDOutput``; ``loss_adv_gen`` joins its losses.
            adv_inputs: Receives f_dis's input, detached, for the discriminator's step.
        """
        adv_input = self.adversarial_input(output)
        adv_inputs.append(adv_input.detach())
        if self.lambda_adv > 0:
            loss = GENERATOR_LOSSES[self.generator_loss]
            output.losses['loss_adv_gen'] = self.lambda_adv * loss(
                self.discriminate_without_grad(adv_input))

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
