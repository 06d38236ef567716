"""Train and evaluate several methods over several seeds on the generated benchmark, and write
one results table.

    python tools/analysis_tools/uda_results.py [--methods source_only daformer iccld hrda:0] [--seeds 0 1 2]
        [--iters 2000] [--out docs/results/synthetic_uda] [--work-root work_dirs/results]
        [--cfg-options key=value ...]

A method may name its own seeds (``hrda:0`` or ``mic:0,1``); the others use ``--seeds``.
``iccld_step1`` is the control of every ICCLD claim: the ICCLD config trained all its
iterations in phase 1 (no diffusion, no discriminator); ``iccld_hr_step1`` is ICCLD-HR's.
ICCLD checkpoints are also evaluated at every ``--iccld-k`` number of DDIM steps (0 is the
phase-1 decode). ``--tag NAME`` keeps a variant's runs apart
(``work_dirs/results/iccld_NAME_seed0``), e.g. with ``--cfg-options`` for an ablation.

Each (method, seed) pair is one ``tools/train.py`` run of the method's config with
``randomness.seed=SEED`` and ``--iters`` total iterations (ICCLD switches to phase 2 halfway,
as its config does at the default length), followed by ``tools/test.py`` on the target
validation set with the configuration the run trained with (the config the runner dumped
into the work dir), so a variant that changes an inference setting is tested with it.

Runs with ICCLD's two phases (``iccld``, ``iccld_hr``, ``iccld_hr_mic``, and the controls) also
keep the checkpoint of the switch iteration. With ``--share-phase1``, such a run resumes from
the switch checkpoint of a finished run of the same seed with the same phase 1 (the untagged
``iccld`` or ``iccld_step1`` run for those two, ``iccld_hr`` or ``iccld_hr_step1`` for those
two, ``iccld_hr_mic``'s own) under ``--work-root`` instead of training phase 1 again: the
runner's resume restores weights, optimizer and scheduler states and the random generators,
so the result equals a run from scratch exactly, *provided* the variant's options change
nothing before the switch (phase-2 settings such as ``lambda_adv`` or ``chain_loss_weight``;
not the UNet's size, whose initialisation draws from the generator, nor learning rates).

Runs whose metrics already exist are reused, so an interrupted table can be completed by
running the same command again (``--fresh`` retrains everything); a run whose config, as its
work dir holds it, trained with other settings than its config and options give now is refused
with the settings that differ (``mmseg_iccld.apis.run_settings``), never reported under the
new ones. ``--reuse-report`` also takes runs from earlier reports (the first that holds the
run) made with the same settings (``settings`` in the report: a digest of each method's config
with ``--cfg-options`` merged, so the runs of an option that has since become the config's
default are reused), iterations, and the same packages, kernels and generated benchmark
(``environment`` in the report, ``mmseg_iccld.apis.run_environment``: runs are deterministic
for one install and CPU, not across them).

Writes ``OUT.json`` (every run's mIoU and per-class IoU, the commands' settings) and
``OUT.md`` (mean and spread per method, every seed, and the per-class means).
"""
import argparse
import json
import os
import os.path as osp
import sys
import time
from datetime import datetime, timezone

from mmseg_iccld.apis import tool_runs
from mmseg_iccld.apis.cli_errors import exit_on_user_error
from mmseg_iccld.apis.result_files import write_report
from mmseg_iccld.apis.run_settings import (
    check_trained_as_now, settings_digest, settings_now)
from mmseg_iccld.apis.run_environment import run_environment, same_environment
from mmseg_iccld.apis.uda_report import (
    DIFFUSION_METHODS, METHODS, per_class_iou, summarise, to_markdown)

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))

# methods with ICCLD's two phases -> the methods whose runs have the same phase 1 (a seed's
# switch checkpoint of one serves them all)
PHASE1_DONORS = {
    'iccld': ('iccld', 'iccld_step1'),
    'iccld_step1': ('iccld', 'iccld_step1'),
    'iccld_hr': ('iccld_hr', 'iccld_hr_step1'),
    'iccld_hr_step1': ('iccld_hr', 'iccld_hr_step1'),
    'iccld_hr_mic': ('iccld_hr_mic', ),
    'adverse_iccld': ('adverse_iccld', 'adverse_iccld_step1'),
    'adverse_iccld_step1': ('adverse_iccld', 'adverse_iccld_step1'),
}
# the controls of ICCLD's claims: the config trained all its iterations in phase 1
PHASE1_CONTROLS = ('iccld_step1', 'iccld_hr_step1', 'adverse_iccld_step1')
ADVERSE_DATA = 'data/synthetic_adverse/acdc'


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--methods', nargs='+', default=['source_only', 'daformer', 'iccld'],
                        help=f'methods ({", ".join(METHODS)}), each optionally with its own '
                        'seeds, e.g. hrda:0,1')
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    parser.add_argument('--iters', type=int, default=2000,
                        help='total training iterations of every method')
    parser.add_argument('--out', default='docs/results/synthetic_uda',
                        help='output path without extension')
    parser.add_argument('--work-root', default='work_dirs/results')
    parser.add_argument('--fresh', action='store_true', help='retrain runs that exist')
    parser.add_argument('--tag', default='', help='variant name in the runs\' work dirs')
    parser.add_argument('--iccld-k', type=int, nargs='*', default=[0, 1, 3, 10],
                        help='DDIM steps K at which ICCLD checkpoints are also evaluated')
    parser.add_argument('--share-phase1', action='store_true',
                        help='ICCLD runs resume from the switch checkpoint of a finished run '
                        'of the same seed (only for options that change phase 2 alone)')
    parser.add_argument('--reuse-report', metavar='JSON', nargs='+', default=[],
                        help='earlier reports of this tool: a (method, seed) run with no '
                        'metrics under --work-root is taken from the first that holds it '
                        'trained with the same settings (its config with --cfg-options) and '
                        '--iters (marked reused_from)')
    parser.add_argument('--uncertainty-samples', type=int, default=4,
                        help='ICCLD checkpoints are also tested with this many noise draws '
                        '(error-detection AUROC and ECE of the uncertainty, next to one '
                        "pass's softmax entropy); 0 skips it")
    parser.add_argument('--cfg-options', nargs='+', default=[],
                        help='overrides passed to every training run')
    args = parser.parse_args(argv)
    args.plan = method_plan(args.methods, args.seeds)
    return args


def method_plan(specs: list, default_seeds: list) -> dict:
    """``['daformer', 'hrda:0']`` -> ``{'daformer': default_seeds, 'hrda': [0]}``."""
    plan = {}
    for spec in specs:
        name, _, seeds = spec.partition(':')
        if name not in METHODS:
            raise ValueError(f'unknown method {name!r}; known: {", ".join(METHODS)}')
        try:
            plan[name] = [int(s) for s in seeds.split(',')] if seeds else list(default_seeds)
        except ValueError:
            raise ValueError(f'{spec!r}: seeds must be integers, e.g. {name}:0,1') from None
    return plan


def train_options(method: str, iters: int, seed: int) -> list:
    """``--cfg-options`` of one run: seed, length, and for ICCLD the phase switch (halfway;
    never for the phase-1 control)."""
    # ICCLD runs also keep the switch checkpoint, from which --share-phase1 runs resume
    interval = iters // 2 if method in PHASE1_DONORS else iters
    options = [f'randomness.seed={seed}', f'train_cfg.max_iters={iters}',
               f'train_cfg.val_interval={iters}', f'default_hooks.checkpoint.interval={interval}']
    if method in DIFFUSION_METHODS:
        options.append(f'custom_hooks.0.switch_iter={iters // 2}')
    elif method in PHASE1_CONTROLS:
        options.append(f'custom_hooks.0.switch_iter={iters}')
    return options


def phase1_checkpoint(method: str, seed: int, args) -> str:
    """The switch checkpoint of a finished untagged run of ``seed`` with ``method``'s phase 1,
    or ''."""
    for donor in PHASE1_DONORS[method]:
        path = osp.join(args.work_root, f'{donor}_seed{seed}', f'iter_{args.iters // 2}.pth')
        if osp.isfile(osp.join(ROOT, path)):
            return path
    return ''


def final_checkpoint(work_dir: str, iters: int) -> str:
    """The checkpoint of the last iteration when a run's training finished, or ''."""
    path = osp.join(work_dir, f'iter_{iters}.pth')
    return path if osp.isfile(osp.join(ROOT, path)) else ''


def run_dir(method: str, seed: int, args) -> str:
    tag = f'_{args.tag}' if args.tag else ''
    return osp.join(args.work_root, f'{method}{tag}_seed{seed}')


def trained_config(method: str, work_dir: str) -> str:
    """The config a run trained with: the runner's dump in its work dir (with every
    ``--cfg-options`` applied), or the method's config for runs that predate the dump."""
    dumped = osp.join(work_dir, osp.basename(METHODS[method]))
    return dumped if osp.isfile(osp.join(ROOT, dumped)) else METHODS[method]


def test_at_k(method: str, seed: int, k: int, checkpoint: str, args) -> float:
    """Target mIoU of an ICCLD checkpoint decoded with K DDIM steps (reused if it exists)."""
    work_dir = run_dir(method, seed, args)
    metrics = tool_runs.tested_metrics(
        ROOT, trained_config(method, work_dir), checkpoint, osp.join(work_dir, f'test_k{k}'),
        ['--cfg-options', f'model.model.test_cfg.num_inference_steps={k}'], args.fresh)
    return float(metrics['metrics']['mIoU'])


def current_environment() -> dict:
    """The packages, CPU, kernels and generated benchmark of runs made here
    (``run_environment``)."""
    return run_environment(osp.join(ROOT, 'data', 'synthetic'))


def method_digest(method: str, args) -> str:
    """Digest of ``method``'s config with ``--cfg-options`` (``run_settings.settings_digest``)."""
    return settings_digest(settings_now(osp.join(ROOT, METHODS[method]), args.cfg_options))


def reusable_run(method: str, seed: int, args):
    """The run of a ``--reuse-report`` for (method, seed), when nothing under --work-root
    holds it: from the first report that holds it and was made with the same settings
    (the config with its options merged: an option that became the config's default reuses
    the runs made with the option), iterations, packages, kernels and benchmark (a report
    without settings is not comparable)."""
    if not args.reuse_report or (
            osp.isfile(osp.join(ROOT, run_dir(method, seed, args), 'test', 'metrics.json'))
            and not args.fresh):
        return None
    environment = current_environment()
    for path in args.reuse_report:
        with open(osp.join(ROOT, path)) as f:
            report = json.load(f)
        same = (report.get('configs', {}).get(method) == METHODS[method]
                and report.get('iters') == args.iters
                and same_environment(report.get('environment'), environment)
                and (report.get('settings') or {}).get(method) == method_digest(method, args))
        run = report.get('runs', {}).get(method, {}).get(str(seed))
        if same and run is not None:
            return dict(run, reused_from=f"{path} ({report.get('date')})")
    return None


def test_uncertainty(method: str, seed: int, checkpoint: str, args) -> dict:
    """Uncertainty quality of an ICCLD checkpoint with S draws and with one pass (reused)."""
    samples = args.uncertainty_samples
    work_dir = run_dir(method, seed, args)
    return tool_runs.tested_metrics(
        ROOT, trained_config(method, work_dir), checkpoint,
        osp.join(work_dir, f'test_s{samples}'),
        ['--uncertainty-samples', str(samples)], args.fresh)['uncertainty']


def train_and_test(method: str, seed: int, args) -> dict:
    """One (method, seed) run; returns its metrics (reused when they exist)."""
    config = METHODS[method]
    if not osp.isfile(osp.join(ROOT, config)):
        raise FileNotFoundError(f'config {config} of method {method!r} does not exist')
    work_dir = run_dir(method, seed, args)
    metrics_path = osp.join(work_dir, 'test', 'metrics.json')
    options = train_options(method, args.iters, seed) + list(args.cfg_options)
    if not args.fresh:
        check_trained_as_now(osp.join(ROOT, work_dir, osp.basename(config)),
                             osp.join(ROOT, config), options)
    if osp.isfile(osp.join(ROOT, metrics_path)) and not args.fresh:
        with open(osp.join(ROOT, metrics_path)) as f:
            return json.load(f)
    os.makedirs(osp.join(ROOT, work_dir), exist_ok=True)
    start = time.time()
    resume = []
    if args.share_phase1 and method in PHASE1_DONORS:
        donor = phase1_checkpoint(method, seed, args)
        if donor and osp.abspath(osp.dirname(donor)) != osp.abspath(work_dir):
            resume = ['--resume', donor]
    checkpoint = final_checkpoint(work_dir, args.iters)
    train_s = None
    if checkpoint and not args.fresh:  # trained before, its test did not finish
        print(f'[results] {method}, seed {seed}: trained already, testing {checkpoint}',
              flush=True)
    else:
        if resume:
            print(f'[results] {method}, seed {seed}: phase 1 from {resume[1]}', flush=True)
        tool_runs.run([sys.executable, 'tools/train.py', config, '--work-dir', work_dir]
                      + resume + ['--cfg-options'] + options,
                      osp.join(ROOT, work_dir, 'train.out'))
        train_s = round(time.time() - start, 1)
        with open(osp.join(ROOT, work_dir, 'last_checkpoint')) as f:
            checkpoint = f.read().strip()
    tool_runs.run([sys.executable, 'tools/test.py', trained_config(method, work_dir), checkpoint,
                   '--work-dir', osp.join(work_dir, 'test')],
                  osp.join(ROOT, work_dir, 'test.out'))
    with open(osp.join(ROOT, metrics_path)) as f:
        metrics = json.load(f)
    metrics['train_seconds'] = train_s
    metrics['resumed_from'] = resume[1] if resume else None
    metrics['seed'] = seed
    metrics['iters'] = args.iters
    with open(osp.join(ROOT, metrics_path), 'w') as f:
        json.dump(metrics, f, indent=2)
    return metrics


@exit_on_user_error
def main(argv=None):
    args = parse_args(argv)
    data = osp.join(ROOT, 'data/synthetic/gta/sample_class_stats.json')
    if not osp.isfile(data):
        print('[results] generating the synthetic benchmark into data/synthetic')
        tool_runs.run([sys.executable, 'tools/make_synthetic_uda.py', '--out', 'data/synthetic'],
                      osp.join(ROOT, 'work_dirs', 'make_synthetic_uda.out'))
    if any(m.startswith('adverse_') for m in args.plan) and \
            not osp.isdir(osp.join(ROOT, ADVERSE_DATA)):
        print(f'[results] generating the adverse target into {ADVERSE_DATA}')
        tool_runs.run([sys.executable, 'tools/make_synthetic_uda.py', '--out', 'data/synthetic',
                       '--adverse', ADVERSE_DATA],
                      osp.join(ROOT, 'work_dirs', 'make_synthetic_uda.out'))
    runs = {m: {} for m in args.plan}
    for seed in sorted({s for seeds in args.plan.values() for s in seeds}):
        for method in (m for m, seeds in args.plan.items() if seed in seeds):
            recorded = reusable_run(method, seed, args)
            if recorded is not None:
                print(f"[results] {method}, seed {seed}: reused from {recorded['reused_from']}",
                      flush=True)
                runs[method][str(seed)] = recorded
                continue
            print(f'[results] {method}, seed {seed}', flush=True)
            metrics = train_and_test(method, seed, args)
            m = metrics['metrics']
            runs[method][str(seed)] = dict(
                mIoU=float(m['mIoU']), per_class=per_class_iou(metrics),
                train_seconds=metrics.get('train_seconds'), checkpoint=metrics['checkpoint'],
                resumed_from=metrics.get('resumed_from'))
            if method in DIFFUSION_METHODS and args.iccld_k:
                runs[method][str(seed)]['mIoU_by_k'] = {
                    str(k): test_at_k(method, seed, k, metrics['checkpoint'], args)
                    for k in args.iccld_k}
            if method in DIFFUSION_METHODS and args.uncertainty_samples > 1:
                runs[method][str(seed)]['uncertainty'] = test_uncertainty(
                    method, seed, metrics['checkpoint'], args)
            print(f"[results] {method}, seed {seed}: mIoU {m['mIoU']:.2f}", flush=True)
    report = dict(
        date=datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC'),
        command='python tools/analysis_tools/uda_results.py ' + ' '.join(sys.argv[1:] if argv is None
                                                          else argv),
        tag=args.tag, iters=args.iters,
        seeds=sorted({s for seeds in args.plan.values() for s in seeds}),
        configs={m: METHODS[m] for m in args.plan}, cfg_options=args.cfg_options,
        settings={m: method_digest(m, args) for m in args.plan},
        environment=current_environment(), summary=summarise(runs), runs=runs)
    write_report(osp.join(ROOT, args.out), report, to_markdown(report), shown=args.out)


if __name__ == '__main__':
    main()
