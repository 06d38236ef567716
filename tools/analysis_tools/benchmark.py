"""Training-iteration time, peak memory and inference latency of several configs, measured in
one process so that ratios between them are not at the mercy of a shared machine's load.

    python tools/analysis_tools/benchmark.py CONFIG [CONFIG ...] [--iters 20] [--rounds 4] [--amp bfloat16]
        [--iccld-phases 1 2] [--latency-k 0 1 3 10] [--out benchmarks/results/NAME]
        [--crop H W] [--test-size H W]

Each entry is a config (and, for ICCLD, a training phase or an inference K). A config may carry
its own overrides, ``CONFIG@KEY=VALUE[@KEY=VALUE...]``, so that variants of one config (say,
two attention kernels) are compared in the same process; ``--cfg-options`` apply to every
entry. Training is timed
on generated batches of the config's own batch size and crop size (the data loader is not
part of the figure); entries are timed in interleaved rounds and the median iteration is
reported. Peak memory is CUDA's ``max_memory_allocated`` on a GPU; on the CPU it is the peak
resident set size of a fresh child process that builds the entry and trains it for a few
iterations. Inference latency is one ``test_step`` (preprocessing, prediction, resizing to the
original size) on an image of the config's test resolution. Each training entry also gets the
wall-clock time its part of the config's schedule would take at that speed (training
iterations only: no data loading, validation or checkpoints); for ICCLD, phase 1 covers the
iterations before ``ICCLDPhaseHook``'s ``switch_iter`` and phase 2 the rest.

Writes ``NAME.json`` and ``NAME.md`` (a markdown table, with ratios to the first config).
"""
import argparse
import json
import os
import os.path as osp
import statistics
import subprocess
import sys
import threading
from datetime import datetime, timezone
from typing import Tuple

import torch

from mmseg_iccld.apis.cli_errors import exit_on_user_error
from mmseg_iccld.apis.measure import Entry, device_name, entry_label, schedule_iters
from mmseg_iccld.apis.result_files import write_report
from mmseg_iccld.engine.cfg_options import CfgOptionsAction


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('configs', nargs='*',
                        help='config files (CONFIG@KEY=VALUE...); the first is the baseline')
    parser.add_argument('--iters', type=int, default=20, help='timed iterations per entry')
    parser.add_argument('--rounds', type=int, default=4,
                        help='interleaved rounds the timed iterations are split into')
    parser.add_argument('--warmup', type=int, default=3, help='untimed iterations first')
    parser.add_argument('--amp', choices=['float16', 'bfloat16'], default=None,
                        help='train with AMP (GPU only)')
    # --iccld-steps: the option's earlier name, in recorded commands
    parser.add_argument('--iccld-phases', '--iccld-steps', type=int, nargs='+', default=[1, 2],
                        help='ICCLD training phases to time')
    parser.add_argument('--latency-k', type=int, nargs='+', default=[0, 1, 3, 10],
                        help='ICCLD inference steps K to time')
    parser.add_argument('--latency-iters', type=int, default=10)
    parser.add_argument('--no-train', action='store_true', help='only inference latency')
    parser.add_argument('--no-latency', action='store_true', help='only training')
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--out', default=None,
                        help='output path without extension (default: benchmarks/results/'
                        '<date>-<device>)')
    parser.add_argument('--crop', type=int, nargs=2, metavar=('H', 'W'), default=None,
                        help='training crop instead of the config\'s (e.g. a smaller one for '
                        'real-size models on a CPU)')
    parser.add_argument('--test-size', type=int, nargs=2, metavar=('H', 'W'), default=None,
                        help='inference image size instead of the config\'s test resize')
    parser.add_argument('--cfg-options', nargs='+', action=CfgOptionsAction, default={},
                        help='overrides applied to every config')
    parser.add_argument('--render', metavar='JSON', default=None,
                        help='only rewrite the markdown table of an earlier JSON report')
    parser.add_argument('--child-memory', default=None, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def _child_peak_rss_mb(config: str, phase, args) -> Tuple[float, float]:
    """Peak RSS while a fresh process trains the entry, and its growth over the RSS the
    process had just before training (MB)."""
    command = [sys.executable, osp.abspath(__file__), config, '--child-memory',
               str(phase), '--device', args.device]
    if args.crop:
        command += ['--crop'] + [str(v) for v in args.crop]
    if args.cfg_options:
        command += ['--cfg-options'] + [f'{k}={v}' for k, v in args.cfg_options.items()]
    out = subprocess.run(command, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(f'memory measurement of {config} failed:\n{out.stderr[-2000:]}')
    peak, growth = out.stdout.strip().splitlines()[-1].split()
    return float(peak), float(growth)


def _current_rss_mb() -> float:
    with open('/proc/self/statm') as f:
        return int(f.read().split()[1]) * os.sysconf('SC_PAGE_SIZE') / 2**20


def _run_child_memory(args) -> None:
    """Train a few iterations while a thread samples the RSS (the high-water mark of the
    process is useless here: importing the libraries already sets it)."""
    phase = None if args.child_memory == 'None' else int(args.child_memory)
    entry = Entry(args.configs[0], args, phase)
    entry.train_iters(1)
    before = _current_rss_mb()
    peak = [before]
    done = threading.Event()

    def sample():
        while not done.wait(0.002):
            peak[0] = max(peak[0], _current_rss_mb())

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    entry.train_iters(3)
    done.set()
    sampler.join()
    print(f'{peak[0]:.1f} {peak[0] - before:.1f}')


def measure(args) -> dict:
    entries = []
    for config in args.configs:
        probe = Entry(config, args)
        phases = args.iccld_phases if probe.is_iccld else [None]
        entries += [probe if phase is None else Entry(config, args, phase) for phase in phases]
    results = {e.name: dict(config=e.config, phase=e.phase, batch_size=e.batch_size,
                            uda=e.is_uda, crop=list(e.crop)) for e in entries}

    if not args.no_train:
        for entry in entries:  # the warm-up holds torch.compile's compilation, if any
            results[entry.name]['warmup_iter_s'] = entry.train_iters(args.warmup)
        per_round = max(1, args.iters // args.rounds)
        times = {e.name: [] for e in entries}
        peaks = {e.name: 0 for e in entries}
        for _ in range(args.rounds):
            for entry in entries:
                if entry.device.type == 'cuda':
                    torch.cuda.reset_peak_memory_stats()
                times[entry.name] += entry.train_iters(per_round)
                if entry.device.type == 'cuda':
                    peaks[entry.name] = max(peaks[entry.name],
                                            torch.cuda.max_memory_allocated() / 2**20)
        for entry in entries:
            r = results[entry.name]
            r['train_iter_s'] = statistics.median(times[entry.name])
            r['train_iter_s_mean'] = statistics.fmean(times[entry.name])
            r['train_iters_timed'] = len(times[entry.name])
            r['schedule_iters'] = schedule_iters(entry.cfg, entry.phase)
            r['schedule_hours'] = r['schedule_iters'] * r['train_iter_s'] / 3600
            if entry.device.type == 'cuda':
                r['peak_memory_mb'] = peaks[entry.name]
                r['peak_memory_kind'] = 'cuda max_memory_allocated'
            else:
                peak, growth = _child_peak_rss_mb(entry.config, entry.phase, args)
                r['peak_memory_mb'] = peak
                r['train_memory_growth_mb'] = growth
                r['peak_memory_kind'] = ('sampled RSS of a child process while it trains '
                                         '(CPU); growth: over its RSS before training')

    if not args.no_latency:
        seen = set()
        for entry in entries:
            if entry.config in seen:
                continue
            seen.add(entry.config)
            ks = args.latency_k if entry.is_iccld else [None]
            if entry.is_iccld:
                entry.model.set_phase(2, lambda_adv=0.0)
            for k in ks:
                entry.latency(2, k)  # warm-up
                lat = entry.latency(args.latency_iters, k)
                name = entry_label(entry.config) + (
                    f' (K={k})' if k is not None else '')
                results.setdefault(name, dict(config=entry.config, k=k))
                results[name]['latency_s'] = statistics.median(lat)
                results[name]['test_size'] = list(entry.test_size)
    return results


def to_markdown(report: dict) -> str:
    rows = report['entries']
    first = report['configs'][0]
    # the baseline of each column: the first config's first row that has it
    base = {key: next((r[key] for r in rows.values()
                       if r.get('config') == first and key in r), None)
            for key in ('train_iter_s', 'latency_s')}
    lines = [f"Device: {report['device']}; torch {report['torch']}; "
             f"AMP: {report['amp'] or 'off'}; {report['date']}; "
             f"`{report.get('command', '')}`", '',
             '| entry | batch | crop | train iter (s) | x baseline | peak memory (MB) | '
             'training growth (MB) | schedule iters | schedule (h) | latency (s) | '
             'x baseline | test size |',
             '|---|---|---|---|---|---|---|---|---|---|---|---|']
    for name, r in rows.items():
        def ratio(key):
            return f'{r[key] / base[key]:.2f}' if key in r and base[key] else ''

        def fmt(key, spec):
            return format(r[key], spec) if key in r else ''

        batch = ''
        if 'batch_size' in r:  # source + target for UDA, source alone otherwise
            batch = (f"{r['batch_size']}+{r['batch_size']}" if r.get('uda', True) else
                     str(r['batch_size']))
        crop = 'x'.join(map(str, r['crop'])) if 'crop' in r else ''
        size = 'x'.join(map(str, r['test_size'][::-1])) if 'test_size' in r else ''
        lines.append(f"| {name} | {batch} | {crop} | {fmt('train_iter_s', '.3f')} | "
                     f"{ratio('train_iter_s')} | {fmt('peak_memory_mb', '.0f')} | "
                     f"{fmt('train_memory_growth_mb', '.0f')} | {fmt('schedule_iters', 'd')} | "
                     f"{fmt('schedule_hours', '.2f')} | {fmt('latency_s', '.3f')} | "
                     f"{ratio('latency_s')} | {size} |")
    totals, phases = {}, {}  # config -> its schedule hours, the ICCLD phases timed
    for name, r in rows.items():
        if 'schedule_hours' in r:
            label = entry_label(r['config'])
            totals.setdefault(label, []).append(r['schedule_hours'])
            # files written before ICCLD's steps were called phases say 'step'
            phases.setdefault(label, []).append(r.get('phase', r.get('step')))

    def part(label):  # an ICCLD config timed in some of its phases only says so
        timed = sorted(p for p in phases[label] if p is not None)
        return f" (phase {', '.join(map(str, timed))} only)" if timed not in ([], [1, 2]) else ''

    if totals:
        lines += ['', 'Whole schedule at these speeds (training iterations only): ' + '; '.join(
            f'{name}: {sum(hours):.2f} h{part(name)}' for name, hours in totals.items()) + '.']
    return '\n'.join(lines) + '\n'


@exit_on_user_error
def main(argv=None):
    args = parse_args(argv)
    if args.child_memory is not None:
        return _run_child_memory(args)
    if args.render:
        with open(args.render) as f:
            report = json.load(f)
        with open(osp.splitext(args.render)[0] + '.md', 'w') as f:
            f.write(to_markdown(report))
        return print(to_markdown(report))
    if not args.configs:
        raise ValueError('benchmark: give at least one config')
    results = measure(args)
    report = dict(
        command='python tools/analysis_tools/benchmark.py ' + ' '.join(sys.argv[1:] if argv is None else argv),
        date=datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC'),
        device=device_name(args.device), torch=torch.__version__, amp=args.amp,
        configs=args.configs, iters=args.iters, rounds=args.rounds,
        crop=args.crop, test_size=args.test_size,
        cfg_options={k: str(v) for k, v in args.cfg_options.items()}, entries=results)
    out = args.out or osp.join(
        'benchmarks', 'results',
        datetime.now().strftime('%Y%m%d-%H%M') + ('-gpu' if args.device != 'cpu' else '-cpu'))
    write_report(out, report, to_markdown(report))


if __name__ == '__main__':
    main()
