"""Where one training iteration of a UDA config spends its time, and where it reads tensor
values back to the host.

    python tools/analysis_tools/profile_step.py CONFIG [--phase 2] [--iters 3] [--warmup 2] [--crop H W]
        [--amp bfloat16] [--cfg-options ...] [--out benchmarks/results/NAME] [--trace]

The iteration runs on generated batches of the config's batch and crop size (as in
``tools/analysis_tools/benchmark.py``) under ``torch.profiler``. The report has three tables:

- phases of the iteration (preprocessing, teacher pseudo-labels, ClassMix, the forward passes
  of each domain, backward passes, optimizer steps, discriminator, EMA update) and the forward
  time of each network (student backbone, latent projector, UNet, decode head; teacher; frozen ImageNet
  backbone; discriminator), per iteration, from profiler ranges placed around them;
- the operators with the largest self time (device time on a GPU, CPU time otherwise);
- every place that reads a tensor value back to the host (``item``, ``tolist``, ``bool``,
  ``int``, ``float`` of a tensor), with its count per iteration. On a GPU each read of a
  device tensor waits for the device to finish all queued work; the device column says which
  reads were of device tensors. Operators that synchronise inside (``unique``, ``nonzero``,
  boolean indexing) appear in the operator table under their ``aten::`` names; on a GPU, CUDA's
  synchronisation debug mode also counts every synchronising operation by call site.

Writes ``NAME.json`` and ``NAME.md``; ``--trace`` also writes a Chrome trace ``NAME.trace.json``.
"""
import argparse
import collections
import contextlib
import os
import os.path as osp
import sys
import warnings
from datetime import datetime, timezone

import torch

from mmseg_iccld.apis.cli_errors import exit_on_user_error
from mmseg_iccld.apis.measure import Entry, device_name, make_train_batch, sync
from mmseg_iccld.apis.result_files import write_report
from mmseg_iccld.engine.cfg_options import CfgOptionsAction

# Methods of the UDA models that make up one iteration, as (attribute, phase name).
PHASES = (
    ('initialize_frozen_copies', 'copy student to teacher / ImageNet backbone'),
    ('source_losses', 'source forward (+ feature distance)'),
    ('backward_losses', 'loss check + backward'),
    ('pseudo_label', 'teacher pseudo-labels'),
    ('mix', 'ClassMix + color jitter + blur'),
    ('mixed_losses', 'mixed forward'),
    ('target_losses', 'target forward (ICCLD phase 2)'),
    ('masked_losses', 'masked target forward (MIC)'),
    ('student_step', 'student optimizer step'),
    ('discriminator_step', 'discriminator step (ICCLD phase 2)'),
    ('update_teacher', 'teacher EMA update'),
)
# Networks whose forward passes are timed, as (submodule of the UDA model, name);
# ``model`` is the student.
NETWORKS = (
    ('data_preprocessor', 'data preprocessor (normalise, stack)'),
    ('model.backbone', 'student backbone'),
    ('model.neck', 'student neck (ICCLD: z0 projector)'),
    ('model.diffusion.unet', 'student UNet eps_theta'),
    ('model.decode_head', 'student decode head'),
    ('teacher.module.backbone', 'teacher backbone'),
    ('teacher.module.diffusion.unet', 'teacher UNet eps_theta'),
    ('teacher.module.decode_head', 'teacher decode head'),
    ('imnet_backbone', 'frozen ImageNet backbone'),
    ('discriminator', 'discriminator'),
)
HOST_READS = ('item', 'tolist', '__bool__', '__int__', '__float__')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('config')
    # --step: the option's earlier name, in recorded commands
    parser.add_argument('--phase', '--step', type=int, default=2,
                        help='ICCLD training phase (1 or 2)')
    parser.add_argument('--iters', type=int, default=3, help='profiled iterations')
    parser.add_argument('--warmup', type=int, default=2, help='unprofiled iterations first')
    parser.add_argument('--amp', choices=['float16', 'bfloat16'], default=None)
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--crop', type=int, nargs=2, metavar=('H', 'W'), default=None)
    parser.add_argument('--test-size', type=int, nargs=2, default=None, help=argparse.SUPPRESS)
    parser.add_argument('--top', type=int, default=25, help='operators listed')
    parser.add_argument('--cfg-options', nargs='+', action=CfgOptionsAction, default={})
    parser.add_argument('--out', default=None, help='output path without extension')
    parser.add_argument('--trace', action='store_true', help='also write a Chrome trace')
    return parser.parse_args(argv)


@contextlib.contextmanager
def _phase_ranges(model):
    """Profiler ranges around the iteration's methods and the networks' forward passes."""
    originals = {}
    for attr, label in PHASES:
        method = getattr(model, attr, None)
        if method is None:
            continue

        def ranged(*args, _method=method, _label=label, **kwargs):
            with torch.profiler.record_function(f'phase: {_label}'):
                return _method(*args, **kwargs)

        originals[attr] = method
        setattr(model, attr, ranged)
    wrapped = []
    for path, label in NETWORKS:
        try:
            module = model.get_submodule(path)
        except AttributeError:  # a network this model does not have
            continue

        # the forward method itself: heads are also called as self.forward(...) inside
        def ranged_forward(*args, _forward=module.forward, _label=label, **kwargs):
            with torch.profiler.record_function(f'network: {_label}'):
                return _forward(*args, **kwargs)

        module.forward = ranged_forward
        wrapped.append(module)
    try:
        yield
    finally:
        for attr in originals:
            delattr(model, attr)  # the instance attribute hid the class method
        for module in wrapped:
            del module.forward


def _call_site() -> str:
    """``file:line (function)`` of the first caller outside torch itself."""
    frame = sys._getframe(2)
    while frame is not None:
        name = frame.f_code.co_filename
        if f'{os.sep}torch{os.sep}' not in name and not name.endswith('profile_step.py'):
            for marker in ('site-packages' + os.sep, osp.dirname(osp.dirname(osp.dirname(
                    osp.abspath(__file__)))) + os.sep):
                if marker in name:
                    name = name.split(marker, 1)[1]
            return f'{name}:{frame.f_lineno} ({frame.f_code.co_name})'
        frame = frame.f_back
    return '<unknown>'


@contextlib.contextmanager
def count_host_reads(counter: collections.Counter):
    """Count reads of tensor values by the host, by call site and device type."""
    originals = {name: getattr(torch.Tensor, name) for name in HOST_READS}

    def wrap(name, original):

        def read(self, *args, **kwargs):
            counter[(_call_site(), name, self.device.type)] += 1
            return original(self, *args, **kwargs)

        return read

    for name, original in originals.items():
        setattr(torch.Tensor, name, wrap(name, original))
    try:
        yield counter
    finally:
        for name, original in originals.items():
            setattr(torch.Tensor, name, original)


@contextlib.contextmanager
def count_device_syncs(counter: collections.Counter, on_device: bool):
    """Count CUDA's synchronising operations by call site (nothing off the GPU)."""
    if not on_device:
        yield counter
        return
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        torch.cuda.set_sync_debug_mode('warn')
        try:
            yield counter
        finally:
            torch.cuda.set_sync_debug_mode('default')
    for warning in caught:
        if 'synchroniz' in str(warning.message):
            counter[f'{warning.filename}:{warning.lineno}'] += 1


def _event_times(event, on_device: bool):
    """(total, self) time of a profiler event in microseconds."""
    if on_device:
        return (getattr(event, 'device_time_total', 0.0),
                getattr(event, 'self_device_time_total', 0.0))
    return event.cpu_time_total, event.self_cpu_time_total


def profile(args) -> dict:
    entry = Entry(args.config, args, args.phase)
    if entry.is_iccld:
        entry.model.set_phase(args.phase, lambda_adv=0.01)
    entry.train_iters(args.warmup)
    on_device = entry.device.type == 'cuda'
    activities = [torch.profiler.ProfilerActivity.CPU]
    if on_device:
        activities.append(torch.profiler.ProfilerActivity.CUDA)
    reads = collections.Counter()
    syncs = collections.Counter()
    wall = []
    with _phase_ranges(entry.model), torch.profiler.profile(activities=activities) as prof:
        for i in range(args.iters):
            batch = make_train_batch(entry.batch_size, entry.crop, entry.is_uda,
                                     seed=args.warmup + i)
            sync(entry.device)
            start = datetime.now()
            with count_host_reads(reads), count_device_syncs(syncs, on_device), \
                    torch.profiler.record_function('iteration'):
                entry.model.train_step(batch, entry.optim_wrapper)
            sync(entry.device)
            wall.append((datetime.now() - start).total_seconds())
    n = args.iters
    events = prof.key_averages()
    iteration = next(e for e in events if e.key == 'iteration')
    iteration_total = _event_times(iteration, on_device)[0] or iteration.cpu_time_total
    phases, networks, operators = [], [], []
    for event in events:
        total, self_time = _event_times(event, on_device)
        if on_device and event.key.startswith(('phase: ', 'network: ')):
            total = event.cpu_time_total if not total else total
        row = dict(name=event.key, calls_per_iter=event.count / n,
                   ms_per_iter=total / n / 1000, share=total / iteration_total)
        if event.key.startswith('phase: '):
            phases.append(dict(row, name=event.key[len('phase: '):]))
        elif event.key.startswith('network: '):
            networks.append(dict(row, name=event.key[len('network: '):]))
        elif event.key != 'iteration' and self_time > 0:
            operators.append(dict(row, ms_per_iter=self_time / n / 1000,
                                  share=self_time / iteration_total))
    operators.sort(key=lambda r: -r['ms_per_iter'])
    report = dict(
        command='python tools/analysis_tools/profile_step.py ' + ' '.join(args.argv),
        date=datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC'),
        device=device_name(args.device), torch=torch.__version__, amp=args.amp,
        config=args.config, phase=args.phase if entry.is_iccld else None,
        batch_size=entry.batch_size, crop=list(entry.crop), iters=n,
        wall_s_per_iter=sum(wall) / n,
        time_kind='device (CUDA) time' if on_device else 'CPU time',
        phases=sorted(phases, key=lambda r: -r['ms_per_iter']),
        networks=sorted(networks, key=lambda r: -r['ms_per_iter']),
        operators=operators[:args.top],
        host_reads=[dict(site=site, read=read, device=device, per_iter=count / n)
                    for (site, read, device), count in reads.most_common()],
        host_reads_per_iter=sum(reads.values()) / n,
        device_host_reads_per_iter=sum(c for (_, _, d), c in reads.items() if d != 'cpu') / n)
    if on_device:
        report['device_syncs'] = [dict(site=site, per_iter=count / n)
                                  for site, count in syncs.most_common()]
        report['device_syncs_per_iter'] = sum(syncs.values()) / n
    if args.trace:
        prof.export_chrome_trace(args.out + '.trace.json')
    return report


def to_markdown(report: dict) -> str:
    phase = f" (phase {report['phase']})" if report.get('phase') else ''
    lines = [
        f"`{report['config']}`{phase}, batch {report['batch_size']}+{report['batch_size']}, "
        f"crop {'x'.join(map(str, report['crop']))}; {report['device']}; torch "
        f"{report['torch']}; AMP: {report['amp'] or 'off'}; {report['date']}; "
        f"`{report['command']}`", '',
        f"Wall time per iteration: {report['wall_s_per_iter']:.3f} s (profiled, "
        f"{report['iters']} iterations). Times below: {report['time_kind']} per iteration; "
        'phases and networks include what runs inside them.', ''
    ]
    for title, key in (('Phase', 'phases'), ('Network forward', 'networks')):
        lines += [f'| {title} | calls | ms | share |', '|---|---|---|---|']
        lines += [f"| {r['name']} | {r['calls_per_iter']:g} | {r['ms_per_iter']:.1f} | "
                  f"{100 * r['share']:.1f}% |" for r in report[key]]
        lines.append('')
    lines += ['| Operator (self time) | calls | ms | share |', '|---|---|---|---|']
    lines += [f"| `{r['name']}` | {r['calls_per_iter']:g} | {r['ms_per_iter']:.1f} | "
              f"{100 * r['share']:.1f}% |" for r in report['operators']]
    lines += ['', f"Host reads of tensor values: {report['host_reads_per_iter']:g} per "
              f"iteration, {report['device_host_reads_per_iter']:g} of them of device "
              'tensors.', '']
    if report['host_reads']:
        lines += ['| Call site | read | tensor device | per iteration |', '|---|---|---|---|']
        lines += [f"| `{r['site']}` | `{r['read']}` | {r['device']} | {r['per_iter']:g} |"
                  for r in report['host_reads']]
    if 'device_syncs' in report:
        lines += ['', f"CUDA synchronisations (sync debug mode): "
                  f"{report['device_syncs_per_iter']:g} per iteration.", '']
        if report['device_syncs']:
            lines += ['| Call site | per iteration |', '|---|---|']
            lines += [f"| `{r['site']}` | {r['per_iter']:g} |" for r in report['device_syncs']]
    return '\n'.join(lines) + '\n'


@exit_on_user_error
def main(argv=None):
    args = parse_args(argv)
    args.argv = sys.argv[1:] if argv is None else list(argv)
    args.out = args.out or osp.join(
        'benchmarks', 'results', 'profile-' + osp.splitext(osp.basename(args.config))[0])
    report = profile(args)
    write_report(args.out, report, to_markdown(report))


if __name__ == '__main__':
    main()
