"""Generate the synthetic GTA5 -> Cityscapes benchmark the demo and end-to-end tests use.

Usage:
    python tools/make_synthetic_uda.py                       # data/synthetic, defaults
    python tools/make_synthetic_uda.py --out data/synthetic --seed 0 --gap 1.0 \\
        --num-source 200 --num-target-train 200 --num-target-val 50 \\
        --source-size 256 144 --target-size 256 128 --nproc 2

Writes ``<out>/gta/{images,labels}/<00000>.png`` (GTA5 layout, palette labels with Cityscapes
label ids) and ``<out>/cityscapes/{leftImg8bit,gtFine}/{train,val}/<city>/...`` (Cityscapes
layout, ``*_gtFine_labelIds.png``), then runs the GTA5 and Cityscapes converters on them
(``--no-convert`` skips that). The same arguments always give the same files. ``--gap 0``
renders both domains alike; larger values widen the domain gap (see docs/datasets.md).

``--adverse OUT`` also writes the clear-to-adverse benchmark's target: new scenes at night
and in fog in ACDC's layout under ``OUT`` (``rgb_anon/``, ``gt/``); its source is the
Cityscapes-like target above.
"""
import argparse
import sys

from mmseg_iccld.datasets.conversion import ConversionError
from mmseg_iccld.datasets.synthetic import generate_benchmark
from mmseg_iccld.datasets.synthetic_adverse import generate_adverse_benchmark


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Generate the synthetic UDA benchmark')
    parser.add_argument('--out', default='data/synthetic', help='output folder')
    parser.add_argument('--num-source', type=int, default=200, help='source images')
    parser.add_argument('--num-target-train', type=int, default=200,
                        help='target training images')
    parser.add_argument('--num-target-val', type=int, default=50,
                        help='target validation images')
    parser.add_argument('--source-size', type=int, nargs=2, default=[256, 144],
                        metavar=('W', 'H'), help='source image size')
    parser.add_argument('--target-size', type=int, nargs=2, default=[256, 128],
                        metavar=('W', 'H'), help='target image size')
    parser.add_argument('--seed', type=int, default=0, help='random seed')
    parser.add_argument('--gap', type=float, default=1.0,
                        help='domain gap strength (0: identical rendering)')
    parser.add_argument('--nproc', type=int, default=2, help='number of processes')
    parser.add_argument('--adverse', metavar='OUT',
                        help='also write the night and fog target in ACDC layout to OUT '
                        '(e.g. data/synthetic_adverse/acdc)')
    parser.add_argument('--no-convert', dest='convert', action='store_false',
                        help='do not run the converters afterwards')
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    try:
        paths = generate_benchmark(
            args.out, num_source=args.num_source, num_target_train=args.num_target_train,
            num_target_val=args.num_target_val, source_size=args.source_size,
            target_size=args.target_size, gap=args.gap, seed=args.seed, nproc=args.nproc,
            convert=args.convert)
        if args.adverse:
            generate_adverse_benchmark(args.adverse, num_train=args.num_target_train,
                                       num_val=args.num_target_val, size=args.target_size,
                                       gap=args.gap, seed=args.seed, nproc=args.nproc)
    except (ConversionError, FileNotFoundError, ValueError) as e:
        print(f'\nerror: {e}', file=sys.stderr)
        return 1
    print(f'\nsource (GTA5 layout): {paths.gta_root}\n'
          f'target (Cityscapes layout): {paths.cityscapes_root}')
    if args.adverse:
        print(f'adverse target (ACDC layout, night and fog): {args.adverse}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
