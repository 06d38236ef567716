"""Training curves of a run: losses, pseudo-label weight, discriminator, lambda_adv, val mIoU.

    python tools/analysis_tools/plot_curves.py WORK_DIR [--run TIMESTAMP] [--out curves.png] [--smooth 1]

Reads what mmengine's ``LocalVisBackend`` writes, ``WORK_DIR/<timestamp>/vis_data/
scalars.json`` (one JSON object per line, with its ``step``). A resumed run writes a new
timestamp folder; all of them are read in order, and a later run's value of a key at a step
replaces the earlier one. WORK_DIR may also be one timestamp folder or a scalars.json file.
Prints which keys it found and where each went, and writes one PNG (default
``WORK_DIR/curves.png``) with one panel per group:

- ``loss`` (the total), ``src.*``, ``mix.*``, ``tgt.*``, ``masked.*`` losses;
- ``pseudo_weight``; ``dis.acc_src/mix/tgt`` and ``dis.loss``; ``lambda_adv``;
  ``nonfinite_skipped``; validation ``mIoU`` (and ``mIoU16``, ``mIoU13``).
"""
import argparse
import glob
import json
import math
import os.path as osp
from collections import OrderedDict
from typing import Dict, List, Sequence, Tuple

from mmseg_iccld.apis.cli_errors import exit_on_user_error

Series = Dict[str, Dict[int, float]]  # key -> {step: value}

LOSS_GROUPS = (('src.', 'source losses (src.*)'), ('mix.', 'mixed losses (mix.*)'),
               ('tgt.', 'target losses (tgt.*)'), ('masked.', 'masked losses (masked.*)'))
SINGLE_PANELS = (
    ('total loss', ('loss', )),
    ('pseudo-label weight', ('pseudo_weight', )),
    ('discriminator accuracy', ('dis.acc_src', 'dis.acc_mix', 'dis.acc_tgt')),
    ('discriminator loss', ('dis.loss', )),
    ('lambda_adv', ('lambda_adv', )),
    ('skipped non-finite steps', ('nonfinite_skipped', )),
    ('validation mIoU', ('mIoU', 'mIoU16', 'mIoU13')),
)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('work_dir', help='work dir of a run, a timestamp folder or a '
                        'scalars.json file')
    parser.add_argument('--run', help='only this timestamp folder of the work dir')
    parser.add_argument('--out', help='PNG to write (default: <work dir>/curves.png)')
    parser.add_argument('--smooth', type=int, default=1,
                        help='moving-average window over logged points (training curves)')
    return parser.parse_args(argv)


def find_scalar_files(path: str, run: str = None) -> List[str]:
    """The scalars.json files of a work dir, oldest run first.

    Args:
        path: A work dir, one of its timestamp folders, or a scalars.json file.
        run: Restrict to this timestamp folder.

    Returns:
        Paths, sorted by timestamp.

    Raises:
        FileNotFoundError: When the path or the files do not exist.
    """
    if osp.isfile(path):
        return [path]
    if not osp.isdir(path):
        raise FileNotFoundError(f'work dir {path} does not exist')
    pattern = osp.join(path, run or '*', 'vis_data', 'scalars.json')
    files = sorted(glob.glob(pattern))
    if not files and osp.isfile(osp.join(path, 'vis_data', 'scalars.json')):
        files = [osp.join(path, 'vis_data', 'scalars.json')]
    if not files:
        raise FileNotFoundError(
            f'no {pattern}: was the run logged with LocalVisBackend '
            "(visualizer.vis_backends=[dict(type='LocalVisBackend'), ...])?")
    return files


def read_scalars(files: Sequence[str]) -> Series:
    """Every numeric key of the files, by step; later files replace earlier values.

    Args:
        files: scalars.json files, oldest first.

    Returns:
        ``{key: {step: value}}``; ``step`` itself is not a key.

    Raises:
        ValueError: On a line that is not a JSON object with a step, naming file and line.
    """
    series: Series = OrderedDict()
    for path in files:
        with open(path) as f:
            for number, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    entry = json.loads(line)
                    step = int(entry['step'])
                except (ValueError, KeyError, TypeError) as error:
                    raise ValueError(f'{path}:{number}: not a scalar record with a step '
                                     f'({type(error).__name__}: {error})') from None
                for key, value in entry.items():
                    if key != 'step' and isinstance(value, (int, float)):
                        series.setdefault(key, {})[step] = float(value)
    return series


def group_panels(keys: Sequence[str]) -> List[Tuple[str, List[str]]]:
    """Panels (title, keys) for the keys that exist; groups without a key are left out.

    Args:
        keys: The keys found.

    Returns:
        Panels in a fixed order: total loss, src/mix/tgt/masked losses, the rest.
    """
    panels = []
    found = set(keys)
    panels += [(title, [k]) for title, (k, ) in SINGLE_PANELS[:1] if k in found]
    for prefix, title in LOSS_GROUPS:
        members = [k for k in keys if k.startswith(prefix) and 'loss' in k]
        if members:
            panels.append((title, members))
    for title, members in SINGLE_PANELS[1:]:
        present = [k for k in members if k in found]
        if present:
            panels.append((title, present))
    return panels


def moving_average(values: List[float], window: int) -> List[float]:
    """Trailing mean over ``window`` points (NaNs left out of each mean)."""
    if window <= 1:
        return values
    out = []
    for i in range(len(values)):
        part = [v for v in values[max(0, i - window + 1):i + 1] if not math.isnan(v)]
        out.append(sum(part) / len(part) if part else math.nan)
    return out


def plot(series: Series, panels: List[Tuple[str, List[str]]], out: str, smooth: int) -> None:
    """Draw the panels into one PNG (matplotlib, Agg)."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    columns = min(3, len(panels))
    rows = math.ceil(len(panels) / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(5.2 * columns, 3.4 * rows), squeeze=False)
    for ax, (title, keys) in zip(axes.flat, panels):
        for key in keys:
            steps = sorted(series[key])
            values = [series[key][s] for s in steps]
            is_val = title == 'validation mIoU'
            ax.plot(steps, values if is_val else moving_average(values, smooth), label=key,
                    marker='o' if is_val else None, markersize=3, linewidth=1.2)
        ax.set_title(title)
        ax.set_xlabel('iteration')
        ax.grid(alpha=0.3)
        if len(keys) > 1:
            ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis('off')
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)


@exit_on_user_error
def main(argv=None):
    args = parse_args(argv)
    files = find_scalar_files(args.work_dir, args.run)
    series = read_scalars(files)
    panels = group_panels(list(series))
    print('read: ' + ', '.join(files))
    if not panels:
        raise ValueError(f'none of the plotted keys in {", ".join(files)}; found: '
                         f'{", ".join(series) or "nothing"}')
    plotted = set()
    for title, keys in panels:
        print(f'{title}: {", ".join(keys)}')
        plotted.update(keys)
    others = [k for k in series if k not in plotted]
    if others:
        print(f'not plotted: {", ".join(others)}')
    if args.out:
        out = args.out
    elif osp.isdir(args.work_dir):
        out = osp.join(args.work_dir, 'curves.png')
    else:
        out = osp.join(osp.dirname(osp.abspath(args.work_dir)), 'curves.png')
    plot(series, panels, out, args.smooth)
    print(f'written: {out}')


if __name__ == '__main__':
    main()
