"""The methods of the generated benchmark (their configs and names) and the report of their
runs that ``tools/analysis_tools/uda_results.py`` writes (summary, markdown tables)."""
import statistics

from mmseg_iccld.apis.run_environment import environment_line

# method name -> config on the generated benchmark
METHODS = {
    'source_only': 'configs/synthetic/source_only_tiny.py',
    'daformer': 'configs/synthetic/daformer_tiny.py',
    'iccld': 'configs/synthetic/iccld_tiny.py',
    'iccld_step1': 'configs/synthetic/iccld_tiny.py',
    'hrda': 'configs/synthetic/hrda_tiny.py',
    'mic': 'configs/synthetic/mic_tiny.py',
    'iccld_hr': 'configs/synthetic/iccld_hr_tiny.py',
    'iccld_hr_step1': 'configs/synthetic/iccld_hr_tiny.py',
    'iccld_hr_mic': 'configs/synthetic/iccld_hr_mic_tiny.py',
    # the clear-to-adverse benchmark (tools/make_synthetic_uda.py --adverse)
    'adverse_source_only': 'configs/synthetic/source_only_adverse_tiny.py',
    'adverse_daformer': 'configs/synthetic/daformer_adverse_tiny.py',
    'adverse_iccld': 'configs/synthetic/iccld_adverse_tiny.py',
    'adverse_iccld_step1': 'configs/synthetic/iccld_adverse_tiny.py',
    # a tiny DINOv2-shaped ViT/14 in place of the tiny MiT, trained from scratch
    'vfm_source_only': 'configs/synthetic/source_only_dinov2_tiny.py',
    'vfm_daformer': 'configs/synthetic/daformer_dinov2_tiny.py',
}
LABELS = {
    'source_only': 'source only',
    'daformer': 'DACS (DAFormer)',
    'iccld': 'ICCLD',
    'iccld_step1': 'ICCLD, phase 1 only (control)',
    'hrda': 'HRDA',
    'mic': 'MIC (HRDA)',
    'iccld_hr': 'ICCLD-HR',
    'iccld_hr_step1': 'ICCLD-HR, phase 1 only (control)',
    'iccld_hr_mic': 'ICCLD-HR + MIC',
    'adverse_source_only': 'source only (clear -> adverse)',
    'adverse_daformer': 'DACS (DAFormer, clear -> adverse)',
    'adverse_iccld': 'ICCLD (clear -> adverse)',
    'adverse_iccld_step1': 'ICCLD, phase 1 only (control, clear -> adverse)',
    'vfm_source_only': 'source only, tiny ViT/14',
    'vfm_daformer': 'DACS (DAFormer), tiny ViT/14',
}
# methods that diffuse (evaluated at several K and with several draws)
DIFFUSION_METHODS = ('iccld', 'iccld_hr', 'iccld_hr_mic', 'adverse_iccld')

CLASSES = ('road', 'sidewalk', 'building', 'wall', 'fence', 'pole', 'traffic light',
           'traffic sign', 'vegetation', 'terrain', 'sky', 'person', 'rider', 'car', 'truck',
           'bus', 'train', 'motorcycle', 'bicycle')


def per_class_iou(metrics: dict) -> dict:
    """Per-class IoU (percent) from a metrics file, where the test tool wrote it."""
    table = metrics.get('per_class_iou') or {}
    # None: a class that neither occurs nor is predicted (no IoU)
    return {name: float(value) for name, value in table.items() if value is not None}


def summarise(runs: dict) -> dict:
    """Mean and spread (sample standard deviation, min, max) of mIoU per method."""
    summary = {}
    for method, by_seed in runs.items():
        values = [r['mIoU'] for r in by_seed.values()]
        summary[method] = dict(
            mean=statistics.fmean(values),
            std=statistics.stdev(values) if len(values) > 1 else 0.0,
            min=min(values), max=max(values), seeds=sorted(by_seed), n=len(values))
    return summary


def to_markdown(report: dict) -> str:
    summary = report['summary']
    runs = report['runs']
    seeds = report['seeds']
    if all(method.startswith('adverse_') for method in runs):
        benchmark = ("Generated clear -> adverse benchmark (the Cityscapes-like target of "
                     "`tools/make_synthetic_uda.py` as the source; its `--adverse` night and fog "
                     "scenes in ACDC's layout as the target), adverse val split; ")
    else:
        benchmark = ("Generated synthetic GTA5-like -> Cityscapes-like benchmark "
                     "(`tools/make_synthetic_uda.py`, default arguments), target val split; ")
    lines = [
        benchmark +
        f"{report['iters']} iterations per run, the tiny networks of the configs below; seeds "
        f"{', '.join(map(str, seeds))}. Written by `{report['command']}` on {report['date']}."
        + (f" Variant `{report['tag']}`: `--cfg-options {' '.join(report['cfg_options'])}`."
           if report.get('tag') else ''),
        '',
    ]
    if report.get('environment'):
        lines += [environment_line(report['environment']), '']
    lines += [
        '| method | config | mIoU mean | std | min | max | ' +
        ' | '.join(f'seed {s}' for s in seeds) + ' |',
        '|---|---|---|---|---|---|' + '---|' * len(seeds),
    ]
    reused = sorted({f"{LABELS[m]}: {r['reused_from']}" for m, by_seed in runs.items()
                     for r in by_seed.values() if r.get('reused_from')})
    for method, s in summary.items():
        per_seed = ' | '.join(
            f"{runs[method][str(seed)]['mIoU']:.2f}" if str(seed) in runs[method] else ''
            for seed in seeds)
        lines.append(f"| {LABELS[method]} | `{METHODS[method]}` | {s['mean']:.2f} | "
                     f"{s['std']:.2f} | {s['min']:.2f} | {s['max']:.2f} | {per_seed} |")
    if reused:
        lines += ['', 'Runs taken from an earlier report made with the same config, iterations '
                  'and options (`--reuse-report`): ' + '; '.join(reused) + '.']
    for method in (m for m in DIFFUSION_METHODS if m in runs):
        lines += diffusion_lines(method, runs[method])
    present = [c for c in CLASSES
               if any(c in r.get('per_class', {}) for m in runs.values() for r in m.values())]
    if present:
        lines += ['', 'Per-class IoU, mean over seeds (classes that occur in the benchmark):',
                  '', '| method | ' + ' | '.join(present) + ' |',
                  '|---|' + '---|' * len(present)]
        for method, by_seed in runs.items():
            cells = []
            for name in present:
                values = [r['per_class'][name] for r in by_seed.values()
                          if name in r.get('per_class', {})]
                cells.append(f'{statistics.fmean(values):.1f}' if values else '')
            lines.append(f'| {LABELS[method]} | ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines) + '\n'


def diffusion_lines(method: str, by_seed: dict) -> list:
    """Markdown tables of a diffusing method's runs: mIoU by K, and the uncertainty."""
    lines = []
    by_k = {seed: r['mIoU_by_k'] for seed, r in by_seed.items() if 'mIoU_by_k' in r}
    if by_k:
        ks = list(next(iter(by_k.values())))
        lines += ['', f'{LABELS[method]} decoded with K DDIM steps (K = 0: the phase-1 decode, '
                  'm_hat0 = 0; the config tests at K = 3):', '',
                  '| K | mean | ' + ' | '.join(f'seed {s}' for s in by_k) + ' |',
                  '|---|---|' + '---|' * len(by_k)]
        for k in ks:
            values = [by_k[s][k] for s in by_k]
            lines.append(f'| {k} | {statistics.fmean(values):.2f} | ' +
                         ' | '.join(f'{v:.2f}' for v in values) + ' |')
    unc = {seed: r['uncertainty'] for seed, r in by_seed.items() if 'uncertainty' in r}
    if unc:
        lines += uncertainty_lines(unc, LABELS[method])
    return lines


def uncertainty_lines(unc: dict, label: str = 'ICCLD') -> list:
    """Markdown rows: AUROC and ECE of S-draw uncertainty and of one pass, per seed."""
    samples = next(iter(unc.values()))['samples']
    lines = ['', f'{label} uncertainty on the target val (S = {samples} draws: entropy of the mean '
             "softmax; one pass: its softmax entropy): error-detection AUROC (higher is "
             'better) and expected calibration error (15 bins, lower is better):', '',
             '| measure | mean | ' + ' | '.join(f'seed {s}' for s in unc) + ' |',
             '|---|---|' + '---|' * len(unc)]
    rows = (('AUROC, S draws', lambda u: u['auroc']),
            ('AUROC, one pass', lambda u: u['single_pass']['auroc']),
            ('ECE, S draws', lambda u: u['ece']),
            ('ECE, one pass', lambda u: u['single_pass']['ece']))
    for name, get in rows:
        values = [get(u) for u in unc.values()]
        if any(v is None for v in values):
            continue
        lines.append(f'| {name} | {statistics.fmean(values):.4f} | ' +
                     ' | '.join(f'{v:.4f}' for v in values) + ' |')
    return lines
