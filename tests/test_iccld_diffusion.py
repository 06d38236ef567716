"""``MaskDiffusion.loss``, the diffusion's whole training pass, against eq. 2, the chain's
loss and the DDIM step written out by hand, with the cosine schedule computed from its
formula (not read from diffusers)."""
import math

import pytest
import torch
import torch.nn.functional as F

from mmseg.registry import MODELS
from mmseg_iccld.models.diffusion import DiffusionDraw

T = 1000
NUM_CLASSES = 3


def cosine_alpha_bar(num_steps: int = T) -> torch.Tensor:
    """Nichol & Dhariwal's cosine schedule (``squaredcos_cap_v2``): betas from
    ``f(t) = cos((t / T + 0.008) / 1.008 * pi / 2) ** 2``, capped at 0.999, then their
    cumulative product of ``1 - beta``."""
    def f(t):
        return math.cos((t / num_steps + 0.008) / 1.008 * math.pi / 2)**2

    betas = [min(1 - f(i + 1) / f(i), 0.999) for i in range(num_steps)]
    return torch.cumprod(1 - torch.tensor(betas, dtype=torch.float64), 0).float()


def build(prediction_type: str, mask_scale: float = 2.0):
    return MODELS.build(dict(type='MaskDiffusion', num_classes=NUM_CLASSES, latent_channels=4,
                             cond_channels=4, mask_scale=mask_scale,
                             block_out_channels=(8, 16), norm_num_groups=4,
                             prediction_type=prediction_type))


def test_the_noise_schedule_is_the_cosine_formula():
    torch.testing.assert_close(build('epsilon').noise_scheduler.alphas_cumprod,
                               cosine_alpha_bar(), atol=1e-6, rtol=1e-5)


def labels_and_weights():
    """16x16 labels on a 4x4 latent (stride 4): nearest sampling reads every 4th pixel. One
    ignored cell, and pixel weights 0.5 on the top half."""
    torch.manual_seed(0)
    labels = torch.randint(0, NUM_CLASSES, (2, 1, 16, 16))
    labels[0, 0, 4, 8] = 255
    weights = torch.ones(2, 16, 16)
    weights[:, :8] = 0.5
    return labels, weights


@pytest.mark.parametrize('prediction_type', ['epsilon', 'v_prediction'])
def test_loss_is_eq2_and_the_chain_loss_by_hand(prediction_type, monkeypatch):
    diffusion = build(prediction_type)
    # a stand-in eps_theta whose output is known: 0.3 m_t - 0.2 + t / 2000
    monkeypatch.setattr(diffusion, 'predict_output',
                        lambda m, z, t: 0.3 * m - 0.2 + t.view(-1, 1, 1, 1) / 2000)
    labels, weights = labels_and_weights()
    torch.manual_seed(1)
    draw = DiffusionDraw(torch.randn(2, NUM_CLASSES, 4, 4), torch.tensor([37, 812]),
                         torch.randn(2, NUM_CLASSES, 4, 4))
    loss = diffusion.loss(torch.zeros(2, 4, 4, 4), labels, weights, draw, num_steps=1)

    alpha_bar = cosine_alpha_bar()
    latent_labels = labels[:, 0, ::4, ::4]
    valid = latent_labels != 255
    onehot = F.one_hot(torch.where(valid, latent_labels, 0), NUM_CLASSES).permute(0, 3, 1, 2)
    m0 = 2.0 * (2 * onehot.float() - 1) * valid.unsqueeze(1)  # mask scale 2, 0 if ignored
    weight = valid.float() * weights[:, ::4, ::4]

    def weighted_mean(error):  # the channel mean per cell, weighted, over N * h * w
        return (error.pow(2).mean(dim=1) * weight).sum() / weight.numel()

    # eq. 2: eps_theta on the forward-noised code, read as the noise
    a = alpha_bar[draw.timesteps].view(-1, 1, 1, 1)
    m_t = a.sqrt() * m0 + (1 - a).sqrt() * draw.noise
    out = 0.3 * m_t - 0.2 + draw.timesteps.view(-1, 1, 1, 1) / 2000
    eps_hat = out if prediction_type == 'epsilon' else a.sqrt() * out + (1 - a).sqrt() * m_t
    assert loss.loss_ldm.item() == pytest.approx(weighted_mean(eps_hat - draw.noise).item(),
                                                 rel=1e-5)

    # the chain, K = 1: one DDIM step at t = 999 (trailing spacing) from m_T, x0 clamped
    a = alpha_bar[999]
    m_T = draw.chain_noise
    out = 0.3 * m_T - 0.2 + 999 / 2000
    if prediction_type == 'epsilon':
        x0 = (m_T - (1 - a).sqrt() * out) / a.sqrt()
    else:
        x0 = a.sqrt() * m_T - (1 - a).sqrt() * out
    x0 = x0.clamp(-2, 2)
    torch.testing.assert_close(loss.estimate, x0, atol=1e-5, rtol=1e-5)
    assert loss.loss_chain.item() == pytest.approx(weighted_mean(x0 - m0).item(), rel=1e-5)


def test_loss_reaches_eps_theta_and_the_condition_through_both_terms():
    diffusion = build('v_prediction')
    labels, weights = labels_and_weights()
    z0 = torch.randn(2, 4, 4, 4, requires_grad=True)
    draw = diffusion.draw(z0)
    loss = diffusion.loss(z0, labels, None, draw, num_steps=2)
    assert loss.estimate.requires_grad
    for term in (loss.loss_ldm, loss.loss_chain):
        grads = torch.autograd.grad(term, [z0, diffusion.unet.conv_in.weight],
                                    retain_graph=True)
        assert all(g.abs().sum() > 0 for g in grads)
    # the chain's last step alone keeps its graph with grad_steps=1, and gives the same values
    last = diffusion.loss(z0, labels, None, draw, num_steps=2, grad_steps=1)
    torch.testing.assert_close(last.loss_chain, loss.loss_chain)
    full = torch.autograd.grad(loss.loss_chain, diffusion.unet.conv_in.weight)[0]
    cheap = torch.autograd.grad(last.loss_chain, diffusion.unet.conv_in.weight)[0]
    assert not torch.allclose(full, cheap)
