"""Rebuild the results section of README.md and docs/results/README.md from the result files.

    python tools/analysis_tools/results_table.py [--check]

Reads what the measuring commands wrote, and nothing else:
- ``docs/results/*.json``, ``docs/results/ablations/*.json`` and ``docs/results/checks/*.json``
  (runs that check a path works end to end, not a method's standing) written by
  ``tools/analysis_tools/uda_results.py`` (target mIoU per method, seed);
- ``benchmarks/results/*.json`` written by ``tools/analysis_tools/benchmark.py`` (iteration time, memory,
  latency, schedule wall-clock) and by ``tools/analysis_tools/profile_step.py`` (profiles of one iteration).

The README section lies between ``<!-- results:begin -->`` and ``<!-- results:end -->`` and
holds the headline tables (``docs/results/*.json``, one per benchmark); docs/results/README.md
holds every table: the headline ones, the ablations and the benchmarks.
``--check`` exits with status 1 when the files are not up to date (nothing is written).
"""
import argparse
import glob
import json
import os
import os.path as osp
import sys

from mmseg_iccld.apis.uda_report import LABELS

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))

BEGIN, END = '<!-- results:begin -->', '<!-- results:end -->'


def uda_tables(paths: list) -> list:
    lines = []
    for path in paths:
        with open(path) as f:
            report = json.load(f)
        md = osp.splitext(path)[0] + '.md'
        rel = osp.relpath(md, ROOT)
        title = 'Target mIoU on the generated benchmark'
        if report.get('tag'):
            title += f", variant `{report['tag']}`"
        lines += [f'**{title}** ([{rel}]({rel}); '
                  f"{report['iters']} iterations per run; command: `{report['command']}`)", '',
                  '| method | config | runs | mIoU mean | std | min | max |',
                  '|---|---|---|---|---|---|---|']
        for method, s in report['summary'].items():
            lines.append(f"| {LABELS.get(method, method)} | `{report['configs'][method]}` | "
                         f"{s['n']} | "
                         f"{s['mean']:.2f} | {s['std']:.2f} | {s['min']:.2f} | "
                         f"{s['max']:.2f} |")
        lines.append('')
    return lines


def benchmark_tables(paths: list) -> list:
    lines = []
    for path in paths:
        with open(path) as f:
            report = json.load(f)
        rel = osp.relpath(osp.splitext(path)[0] + '.md', ROOT)
        if 'phases' in report:  # written by tools/analysis_tools/profile_step.py
            lines += profile_lines(report, rel)
            continue
        entries = report['entries']
        base_name = next(iter(entries))
        base = entries[base_name]
        lines += [f"**Speed and memory** ([{rel}]({rel}); {report['device']}; "
                  f"AMP {report['amp'] or 'off'}; command: `{report.get('command', '')}`)", '',
                  '| entry | train iter (s) | x first | peak memory (MB) | schedule (h) | '
                  'latency (s) | x first |', '|---|---|---|---|---|---|---|']
        kinds = {e['peak_memory_kind'] for e in entries.values() if 'peak_memory_kind' in e}
        if kinds:
            lines[-4] = lines[-4].replace('; command:', f"; memory: {', '.join(sorted(kinds))}"
                                          '; command:')
        base_latency = next((e['latency_s'] for e in entries.values() if 'latency_s' in e),
                            None)
        for name, e in entries.items():
            def cell(key, spec, ref=None):
                if key not in e:
                    return '', ''
                ratio = f'{e[key] / ref:.2f}' if ref else ''
                return format(e[key], spec), ratio
            t, tr = cell('train_iter_s', '.3f', base.get('train_iter_s'))
            m, _ = cell('peak_memory_mb', '.0f')
            h, _ = cell('schedule_hours', '.1f')
            lat, lr = cell('latency_s', '.3f', base_latency)
            lines.append(f'| {name} | {t} | {tr} | {m} | {h} | {lat} | {lr} |')
        lines.append('')
    return lines


def profile_lines(report: dict, rel: str) -> list:
    """One paragraph for a profile of one training iteration: its largest phases."""
    # 'step': the key of profiles written before ICCLD's phases had their own word
    phase = report.get('phase', report.get('step'))
    phase = f' phase {phase}' if phase else ''
    phases = ', '.join(f"{p['name']} {100 * p['share']:.0f}%" for p in report['phases'][:4])
    ours = sum(r['per_iter'] for r in report['host_reads']
               if r['site'].startswith('mmseg_iccld'))
    return [f"**Profile** of one iteration of `{report['config']}`{phase} "
            f"([{rel}]({rel}); {report['device']}; crop {'x'.join(map(str, report['crop']))}; "
            f"AMP {report['amp'] or 'off'}): {report['wall_s_per_iter']:.2f} s per iteration; "
            f"{phases}; host reads of tensor values per iteration: "
            f"{report['host_reads_per_iter']:g}, {ours:g} of them in mmseg_iccld's code.", '']


def build(headline_only: bool = False) -> str:
    """The tables as markdown: the headline ones, and unless ``headline_only`` the ablations',
    the checks' and the benchmarks'."""
    uda = sorted(glob.glob(osp.join(ROOT, 'docs', 'results', '*.json')))
    bench = []
    if not headline_only:
        for folder in ('ablations', 'checks'):
            uda += sorted(glob.glob(osp.join(ROOT, 'docs', 'results', folder, '*.json')))
        bench = sorted(glob.glob(osp.join(ROOT, 'benchmarks', 'results', '*.json')))
    lines = uda_tables(uda) + benchmark_tables(bench)
    if not lines:
        lines = ['No measured results yet.', '']
    return '\n'.join(lines)


def replace_section(text: str, body: str, path: str) -> str:
    if BEGIN not in text or END not in text:
        raise ValueError(f'{path}: no {BEGIN} ... {END} section to fill')
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    return f'{head}{BEGIN}\n{body}{END}{tail}'


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--check', action='store_true')
    args = parser.parse_args(argv)
    body = build()
    readme = osp.join(ROOT, 'README.md')
    docs = osp.join(ROOT, 'docs', 'results', 'README.md')
    with open(readme) as f:
        old_readme = f.read()
    new_readme = replace_section(old_readme, build(headline_only=True), readme)
    new_docs = ('# Results\n\nBuilt by `python tools/analysis_tools/results_table.py` from the result files '
                'in this folder and in `benchmarks/results/`.\n\n' + body)
    old_docs = open(docs).read() if osp.isfile(docs) else ''
    if args.check:
        stale = [p for p, old, new in ((readme, old_readme, new_readme),
                                        (docs, old_docs, new_docs)) if old != new]
        for path in stale:
            print(f'{osp.relpath(path, ROOT)} is not up to date: run python '
                  'tools/analysis_tools/results_table.py', file=sys.stderr)
        return 1 if stale else 0
    with open(readme, 'w') as f:
        f.write(new_readme)
    os.makedirs(osp.dirname(docs), exist_ok=True)
    with open(docs, "w") as f:
        f.write(new_docs)
    print(f'written: {osp.relpath(readme, ROOT)}, {osp.relpath(docs, ROOT)}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
