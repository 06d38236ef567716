"""The measurements of ``tools/analysis_tools/iccld_probe.py``: the candidate inputs of f_dis of one
training batch, fresh domain discriminators trained and evaluated on them, and the pixel
accuracy of the sampler chain's x0-estimate next to D's prediction."""
import math
from collections import defaultdict

import torch
import torch.nn as nn
import torch.nn.functional as F

DOMAINS = ('src', 'mix', 'tgt')
CANDIDATES = {
    'eps_hat': "eq. 2's predicted noise eps_hat (eps shared by the domains)",
    'sample': "chain's x0-estimate / mask scale (what D reads)",
    'residual': 'eps_hat - eps',
    'cond': "cond_proj(z0), the UNet's view of the image latent",
    'eps_hat_redrawn': 'eps_hat, eps redrawn per domain at the same t (control)',
}
SEG_COUNTS = ('pixels', 'chain', 'd', 'latent_pixels', 'latent_chain', 'latent_d')


# --------------------------------------------------------------------- candidate inputs

def domain_pass(uda, inputs, data_samples, draw=None):
    """One domain's phase-2 pass and its five candidate inputs of f_dis.

    Args:
        uda: The ``ICCLDUDA`` model (student in phase 2).
        inputs: Images (N, 3, H, W).
        data_samples: Samples with labels (or pseudo-labels) as ``gt_sem_seg``.
        draw: The iteration's draw; None draws one (the source pass).

    Returns:
        The student's ``ICCLDOutput`` and a dict candidate -> (N, C, h', w').
    """
    student = uda.student
    diffusion = student.diffusion
    seen = {}

    def first_call(module, args, output):
        seen.setdefault('z0', args[0])
        seen.setdefault('cond', output)

    handle = diffusion.cond_proj.register_forward_hook(first_call)
    try:
        output = student.uda_loss(inputs, data_samples, draw=draw, with_seg=False,
                                  with_sample=True)
    finally:
        handle.remove()
    eps, timesteps = output.draw.noise, output.draw.timesteps
    mask_latent, _ = diffusion.training_targets(data_samples, seen['z0'].shape[2:])
    redrawn, _ = diffusion.denoise(
        diffusion.add_noise(mask_latent, torch.randn_like(eps), timesteps), seen['z0'],
        timesteps)
    cut = uda.cut_adv_margins
    sample = cut(output.sample / diffusion.mask_scale)
    values = dict(eps_hat=cut(output.noise_pred), sample=sample,
                  residual=cut(output.noise_pred - eps), cond=cut(seen['cond']),
                  eps_hat_redrawn=cut(redrawn))
    return output, values


def saturated_fraction(estimate: torch.Tensor, scale: float, rtol: float = 1e-6) -> float:
    """Fraction of the entries of ``estimate`` at the clamp bound, ``|x| >= scale``."""
    return (estimate.abs() >= scale * (1 - rtol)).float().mean().item()


def saturation(estimate: torch.Tensor, scale: float, rtol: float = 1e-6) -> dict:
    """How the x0-estimate (N, C, h, w) sits at its clamp: the fraction of entries at
    +-scale (``any``), at +scale (``high``), at -scale (``low``), and the fraction of
    latent pixels whose channel maximum is shared by several channels (``tied_argmax``, an
    argmax decided by channel order)."""
    bound = scale * (1 - rtol)
    top = estimate.max(dim=1, keepdim=True).values
    return dict(any=saturated_fraction(estimate, scale, rtol),
                high=(estimate >= bound).float().mean().item(),
                low=(estimate <= -bound).float().mean().item(),
                tied_argmax=((estimate == top).sum(dim=1) > 1).float().mean().item())


def d_prediction(student, inputs, data_samples) -> torch.Tensor:
    """Argmax of D's logits at the input size (``encode_decode``, the config's K), (N, H, W)."""
    size = tuple(inputs.shape[2:])
    metas = [dict(s.metainfo, img_shape=size, pad_shape=size) for s in data_samples]
    return student.encode_decode(inputs, metas).argmax(dim=1)


def _nearest(labels: torch.Tensor, size) -> torch.Tensor:
    return F.interpolate(labels[:, None].float(), size=size, mode='nearest')[:, 0].long()


def segmentation_counts(estimate, d_pred, labels, ignore_index: int = 255) -> dict:
    """Correct pixels of the chain's estimate and of D against ``labels`` (N, H, W).

    At label resolution the estimate's argmax is upsampled (nearest); on the latent grid
    labels and D's prediction are downsampled (nearest). Ignored labels do not count.
    """
    chain = estimate.argmax(dim=1)
    valid = labels != ignore_index
    chain_full = _nearest(chain, labels.shape[-2:])
    lat_labels, lat_d = _nearest(labels, chain.shape[-2:]), _nearest(d_pred, chain.shape[-2:])
    lat_valid = lat_labels != ignore_index
    return dict(pixels=int(valid.sum()),
                chain=int(((chain_full == labels) & valid).sum()),
                d=int(((d_pred == labels) & valid).sum()),
                latent_pixels=int(lat_valid.sum()),
                latent_chain=int(((chain == lat_labels) & lat_valid).sum()),
                latent_d=int(((lat_d == lat_labels) & lat_valid).sum()))


@torch.no_grad()
def probe_batch(uda, data: dict):
    """One training batch as ``ICCLDUDA.train_step`` forms it, without any update.

    Returns:
        ``values``: candidate -> (src, mix, tgt) tensors on the CPU; ``seg``: label set
        ('src', 'tgt_pseudo', 'tgt_gt' when the target has labels) -> counts of
        :func:`segmentation_counts`; ``saturated``: domain -> :func:`saturation`.
    """
    student = uda.student
    data = uda.preprocess(data)
    src_out, src_values = domain_pass(uda, data['inputs'], data['data_samples'])
    draw = src_out.draw
    pseudo_labels, pseudo_weights, _ = uda.pseudo_label(data['target_inputs'],
                                                        data['target_data_samples'])
    mixed_inputs, mixed_samples = uda.mix(data['inputs'], data['data_samples'],
                                          data['target_inputs'], pseudo_labels, pseudo_weights)
    mix_out, mix_values = domain_pass(uda, mixed_inputs, mixed_samples, draw)
    target_samples = uda.build_data_samples(pseudo_labels.unsqueeze(1),
                                            pseudo_weights.unsqueeze(1),
                                            data['target_data_samples'])
    tgt_out, tgt_values = domain_pass(uda, data['target_inputs'], target_samples, draw)
    per_domain = (src_values, mix_values, tgt_values)
    values = {name: tuple(v[name].float().cpu() for v in per_domain) for name in CANDIDATES}

    ignore = getattr(uda, 'ignore_index', 255)
    src_labels = torch.stack([s.gt_sem_seg.data[0] for s in data['data_samples']])
    seg = dict(src=segmentation_counts(
        src_out.sample, d_prediction(student, data['inputs'], data['data_samples']),
        src_labels, ignore))
    tgt_d = d_prediction(student, data['target_inputs'], data['target_data_samples'])
    seg['tgt_pseudo'] = segmentation_counts(tgt_out.sample, tgt_d, pseudo_labels, ignore)
    if all('gt_sem_seg' in s for s in data['target_data_samples']):
        tgt_labels = torch.stack([s.gt_sem_seg.data[0] for s in data['target_data_samples']])
        seg['tgt_gt'] = segmentation_counts(tgt_out.sample, tgt_d, tgt_labels, ignore)
    scale = student.diffusion.mask_scale
    saturated = {d: saturation(o.sample, scale)
                 for d, o in zip(DOMAINS, (src_out, mix_out, tgt_out))}
    return values, seg, saturated


# --------------------------------------------------------------------- discriminators

def probe_discriminator(reference: nn.Module, in_channels: int) -> nn.Module:
    """A fresh patch ``DomainDiscriminator`` with the layers of ``reference``."""
    from mmseg_iccld.models.discriminators.domain_discriminator import DomainDiscriminator
    convs = [m for m in reference.features if isinstance(m, nn.Conv2d)]
    slopes = [m.negative_slope for m in reference.features if isinstance(m, nn.LeakyReLU)]
    classifier = reference.classifier
    domains = getattr(classifier, 'out_channels', None) or classifier.out_features
    return DomainDiscriminator(in_channels, channels=[c.out_channels for c in convs],
                               num_domains=domains, negative_slope=slopes[0] if slopes else 0.2,
                               pool=False)


def train_discriminator(batches, train_idx, reference, steps: int, lr: float = 1e-3,
                        seed: int = 0):
    """Train a fresh discriminator on cached batches, as the training step trains f_dis.

    Args:
        batches: List of (src, mix, tgt) tensors (N, C, h, w).
        train_idx: Indices of the batches to train on.
        reference: The discriminator whose layers the fresh one copies.
        steps: Adam steps, each on one random training batch of all three domains.
        lr: Adam's learning rate.
        seed: Seed of the initialisation and of the batch order.

    Returns:
        The trained discriminator (eval mode) and its last loss.
    """
    from mmseg_iccld.models.losses.iccld_losses import loss_adv_discriminator
    torch.manual_seed(seed)
    disc = probe_discriminator(reference, batches[0][0].shape[1])
    optimizer = torch.optim.Adam(disc.parameters(), lr=lr)
    order = torch.Generator().manual_seed(seed)
    loss = torch.tensor(float('nan'))
    disc.train()
    with torch.enable_grad():
        for _ in range(steps):
            inputs = batches[train_idx[int(torch.randint(len(train_idx), (1, ),
                                                         generator=order))]]
            logits = disc(torch.cat(inputs)).split([len(x) for x in inputs])
            loss = sum(loss_adv_discriminator(lg, d) for d, lg in enumerate(logits)) / 3
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return disc.eval(), float(loss.detach())


@torch.no_grad()
def evaluate_discriminator(disc, batches, idx) -> dict:
    """Domain accuracy of ``disc`` on ``batches[idx]``: per patch (all and per domain) and
    per image, by the majority of its patches and by its mean logits."""
    counts = defaultdict(int)
    for i in idx:
        for domain, x in enumerate(batches[i]):
            logits = disc(x)
            if logits.dim() == 2:  # an image discriminator: one patch per image
                logits = logits[:, :, None, None]
            pred = logits.argmax(dim=1)
            votes = F.one_hot(pred.flatten(1), logits.shape[1]).sum(dim=1)
            counts[f'patch_{domain}'] += int((pred == domain).sum())
            counts[f'patches_{domain}'] += pred.numel()
            counts['majority'] += int((votes.argmax(dim=1) == domain).sum())
            counts['mean_logits'] += int((logits.mean(dim=(2, 3)).argmax(dim=1) == domain).sum())
            counts['images'] += len(x)
    patches = sum(counts[f'patches_{d}'] for d in range(3))
    return dict(
        patch=sum(counts[f'patch_{d}'] for d in range(3)) / patches,
        patch_per_domain={name: counts[f'patch_{d}'] / counts[f'patches_{d}']
                          for d, name in enumerate(DOMAINS)},
        image_majority=counts['majority'] / counts['images'],
        image_mean_logits=counts['mean_logits'] / counts['images'],
        patches=patches, images=counts['images'])


def split_batches(num: int):
    """The first 80% of ``num`` batch indices for training, the rest held out."""
    if num < 2:
        raise ValueError(f'--batches must be at least 2 (train and held-out), got {num}')
    num_train = min(num - 1, max(1, round(0.8 * num)))
    return list(range(num_train)), list(range(num_train, num))


def discriminator_results(cache, reference, steps: int, seed: int, lr: float = 1e-3) -> dict:
    """Fresh discriminators per candidate, and the reference on ``sample``, evaluated."""
    train_idx, test_idx = split_batches(len(cache['sample']))
    results = {}
    for name, batches in cache.items():
        disc, loss = train_discriminator(batches, train_idx, reference, steps, lr, seed)
        results[name] = dict(
            description=CANDIDATES.get(name, name), channels=batches[0][0].shape[1],
            rms={d: math.sqrt(sum(float(b[i].pow(2).mean()) for b in batches) / len(batches))
                 for i, d in enumerate(DOMAINS)},
            final_loss=loss, train=evaluate_discriminator(disc, batches, train_idx),
            held_out=evaluate_discriminator(disc, batches, test_idx))
    results['checkpoint_discriminator_on_sample'] = dict(
        description="the checkpoint's f_dis on 'sample'",
        held_out=evaluate_discriminator(reference.eval(), cache['sample'], test_idx))
    return dict(train_batches=len(train_idx), held_out_batches=len(test_idx),
                candidates=results)
