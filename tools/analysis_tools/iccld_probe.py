"""Probe ICCLD's phase 2 on a trained UDA checkpoint: what carries the domain, and how good
the sampler chain's own segmentation is.

    python tools/analysis_tools/iccld_probe.py CONFIG CHECKPOINT [--batches 60] [--steps 400] [--seed 0]
                                [--out PREFIX]

Eq. 3's discriminator f_dis must read something of each domain's pass. Read literally, it
reads eq. 2's predicted noise eps_hat. For a uniform t, eps_hat is mostly the unit noise eps
that was added, shared by the three domains of an iteration, plus a small residual
eps_hat - eps of about sqrt(L_ldm). A discriminator on eps_hat sees unit-variance noise
around that residual. The sample-space estimate (the x0-estimate of the K-step DDIM chain
from m_T, divided by the mask scale) is what D reads, and what ``adv_input='sample'`` gives
f_dis. The tool measures how much domain information each candidate input carries, and
whether the chain's estimate is a segmentation at all.

1. For ``--batches`` training batches it forms the source, ClassMix and pseudo-labelled
   target batches as ``ICCLDUDA.train_step`` does, with one draw (the source pass's) shared
   by the three domains. Student and teacher run in eval mode (BN running statistics),
   without gradients, in phase 2. Per domain it caches, on the latent grid with the model's
   ``adv_margins`` cut: ``eps_hat``; ``sample`` (the chain's x0-estimate / mask scale);
   ``residual`` (eps_hat - eps); ``cond`` (cond_proj(z0), the UNet's view of the image
   latent); and ``eps_hat_redrawn``, eps_hat with eps drawn afresh per domain at the same t.
   The redrawn case is a control: it shows whether sharing eps across domains is what hides
   the domain. For each candidate a fresh patch ``DomainDiscriminator`` with the
   checkpoint discriminator's layers is trained on the first 80% of the batches (Adam,
   ``--steps`` steps of one cached batch of all three domains, the cross-entropy of
   ``loss_adv_discriminator``). Its accuracy on the other 20% is reported per patch
   (3-way, chance 1/3) and per image, by the majority of the patches (ties go to the lower
   domain index) and by the mean logits. The checkpoint's own discriminator is evaluated on
   ``sample``, its training input.
2. It compares the argmax over channels of the chain's x0-estimate with the labels: source
   ground truth, and the target pseudo-labels (also the target ground truth when the batch
   has it). Pixel accuracy is computed at label resolution, with the estimate upsampled
   (nearest), and on the latent grid, with the labels downsampled (nearest). Next to it
   stands D's prediction (the student's ``encode_decode`` at the config's K, seeded m_T) on
   the same pixels, and the fraction of x0-estimate entries clamped at +-mask_scale.

Writes ``PREFIX.json`` and ``PREFIX.md`` (default ``<checkpoint dir>/probe``) and prints the
markdown.
"""
import argparse
import copy
import datetime
import os.path as osp
import shlex
import sys
import time
from collections import defaultdict

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

from tools._common import (check_state_dict, exit_on_user_error,  # noqa: E402
                           explain_unknown_modules, load_config, read_checkpoint,
                           sub_state_dict, write_report)
from tools.analysis_tools.probe_core import (CANDIDATES, SEG_COUNTS,  # noqa: E402
                                     discriminator_results, probe_batch, split_batches)


# --------------------------------------------------------------------- command line

def parse_args(argv=None):
    parser = argparse.ArgumentParser(description="Probe ICCLD's phase 2 on a checkpoint")
    parser.add_argument('config', help='the ICCLD UDA config (e.g. a run\'s dumped config)')
    parser.add_argument('checkpoint', help='the checkpoint (a state dict of ICCLDUDA)')
    parser.add_argument('--batches', type=int, default=60, help='training batches to probe')
    parser.add_argument('--steps', type=int, default=400,
                        help='Adam steps of each fresh discriminator')
    parser.add_argument('--seed', type=int, default=0, help='seed of data, draws, training')
    parser.add_argument('--out', metavar='PREFIX',
                        help='write PREFIX.json and PREFIX.md (default <checkpoint dir>/probe)')
    return parser.parse_args(argv)


def build_model(config: str, checkpoint: str):
    """The config's ``ICCLDUDA`` with the checkpoint's weights (strict), in phase 2, eval."""
    cfg = load_config(config)
    from mmseg.registry import MODELS
    from mmseg.utils import register_all_modules
    register_all_modules(init_default_scope=True)
    with explain_unknown_modules(config):
        uda = MODELS.build(cfg.model)
    if not (hasattr(uda, 'adversarial_input') and hasattr(uda.student, 'diffusion')):
        raise ValueError(f'{config} does not build an ICCLD UDA model (ICCLDUDA), but '
                         f'{type(uda).__name__}')
    meta, state = read_checkpoint(checkpoint)
    state = sub_state_dict(state, '', uda.state_dict())  # also of a distributed run
    check_state_dict(uda.state_dict(), state, checkpoint, f'{config} ({type(uda).__name__})')
    uda.load_state_dict(state, strict=True)
    stage = uda.student.current_phase
    uda.set_phase(2)
    return cfg, uda.eval(), dict(meta, checkpoint_stage=stage)


def collect(uda, cfg, batches: int, seed: int, log=print):
    """Probe ``batches`` training batches; candidate cache and segmentation summary."""
    from mmengine.runner import Runner, set_random_seed
    set_random_seed(seed)
    loader_cfg = copy.deepcopy(cfg.train_dataloader)
    loader_cfg.update(num_workers=0, persistent_workers=False)
    loader = iter(Runner.build_dataloader(loader_cfg, seed=seed))
    cache = {name: [] for name in CANDIDATES}
    seg = defaultdict(lambda: dict.fromkeys(SEG_COUNTS, 0))
    saturated = defaultdict(lambda: defaultdict(float))
    start = time.time()
    for b in range(batches):
        values, counts, sat = probe_batch(uda, next(loader))
        for name, value in values.items():
            cache[name].append(value)
        for labels, part in counts.items():
            for key, n in part.items():
                seg[labels][key] += n
        for domain, fractions in sat.items():
            for key, fraction in fractions.items():
                saturated[domain][key] += fraction / batches
        if (b + 1) % 10 == 0 or b + 1 == batches:
            log(f'probed {b + 1}/{batches} batches ({time.time() - start:.0f} s)')
    summary = {labels: dict(c, chain_acc=c['chain'] / max(c['pixels'], 1),
                            d_acc=c['d'] / max(c['pixels'], 1),
                            latent_chain_acc=c['latent_chain'] / max(c['latent_pixels'], 1),
                            latent_d_acc=c['latent_d'] / max(c['latent_pixels'], 1))
               for labels, c in seg.items()}
    return cache, dict(labels=summary, saturated={d: dict(f) for d, f in saturated.items()})


def markdown(report: dict) -> str:
    """The report's two tables."""
    dis, seg = report['discriminators'], report['segmentation']
    lines = [f"`{report['config']}` / `{report['checkpoint']}` (iter "
             f"{report['checkpoint_meta'].get('iter', '?')}): {report['batches']} batches "
             f"({dis['train_batches']} train / {dis['held_out_batches']} held out), "
             f"{report['steps']} steps per fresh discriminator, seed {report['seed']}; "
             f"adv_margins {report['model']['adv_margins']}, f_dis input grid "
             f"{report['model']['adv_grid']}.", '',
             '| f_dis input | C | RMS src / mix / tgt | train patch acc | held-out patch acc '
             '| held-out src / mix / tgt | held-out image acc (majority / mean logits) |',
             '|---|---|---|---|---|---|---|']
    for name, r in dis['candidates'].items():
        held = r['held_out']
        rms = ' / '.join(f'{v:.3f}' for v in r['rms'].values()) if 'rms' in r else '-'
        train = f"{r['train']['patch']:.3f}" if 'train' in r else '-'
        lines.append(
            f"| {name}: {r['description']} | {r.get('channels', '-')} | {rms} | {train} | "
            f"{held['patch']:.3f} | "
            + ' / '.join(f'{v:.3f}' for v in held['patch_per_domain'].values())
            + f" | {held['image_majority']:.3f} / {held['image_mean_logits']:.3f} |")
    lines += ['', 'Chance is 1/3. Pixel accuracy of the argmax of the chain\'s x0-estimate '
              '(random m_T of the draw) and of D (`encode_decode`, K = '
              f"{report['model']['num_inference_steps']}, seeded m_T) on the same pixels:", '',
              '| labels | pixels | chain acc (label res., nearest up) | D acc | '
              'chain acc (latent grid, labels nearest down) | D acc (latent grid) |',
              '|---|---|---|---|---|---|']
    names = dict(src='source ground truth', tgt_pseudo='target pseudo-labels',
                 tgt_gt='target ground truth')
    for labels, s in seg['labels'].items():
        lines.append(f"| {names.get(labels, labels)} | {s['pixels']} | {s['chain_acc']:.3f} | "
                     f"{s['d_acc']:.3f} | {s['latent_chain_acc']:.3f} | "
                     f"{s['latent_d_acc']:.3f} |")
    sat = seg['saturated']
    lines += ['', 'x0-estimate entries saturated at +-mask_scale (at + / at -): '
              + ', '.join(f"{d} {v['any']:.3f} ({v['high']:.3f} / {v['low']:.3f})"
                          for d, v in sat.items())
              + '; latent pixels whose argmax is a tie: '
              + ', '.join(f"{d} {v['tied_argmax']:.3f}" for d, v in sat.items()), '']
    return '\n'.join(lines)


@exit_on_user_error
def main(argv=None):
    args = parse_args(argv)
    if args.steps < 1:
        raise ValueError(f'--steps must be at least 1, got {args.steps}')
    split_batches(args.batches)
    cfg, uda, meta = build_model(args.config, args.checkpoint)
    log = lambda message: print(message, file=sys.stderr, flush=True)  # noqa: E731
    cache, seg = collect(uda, cfg, args.batches, args.seed, log)
    log('training the discriminators')
    dis = discriminator_results(cache, uda.discriminator, args.steps, args.seed)
    grid = tuple(cache['sample'][0][0].shape[2:])
    report = dict(
        command=' '.join(shlex.quote(a) for a in [sys.argv[0]] + list(
            sys.argv[1:] if argv is None else argv)),
        date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds'),
        config=args.config, checkpoint=args.checkpoint, batches=args.batches,
        steps=args.steps, seed=args.seed, lr=1e-3,
        checkpoint_meta={k: meta[k] for k in ('iter', 'epoch', 'checkpoint_stage')
                         if k in meta},
        model=dict(adv_input=uda.adv_input, adv_margins=list(uda.adv_margins),
                   adv_grid=list(grid), mask_scale=uda.student.diffusion.mask_scale,
                   num_inference_steps=uda.student.num_inference_steps,
                   chain_steps=uda.student.chain_steps,
                   batch_size=cfg.train_dataloader.get('batch_size')),
        discriminators=dis, segmentation=seg)
    prefix = args.out or osp.join(osp.dirname(osp.abspath(args.checkpoint)), 'probe')
    write_report(prefix, report, markdown(report))
    return report


if __name__ == '__main__':
    main()
