"""Convert Synthia (RAND-CITYSCAPES) labels to Cityscapes train ids and write the rare-class
statistics.

Usage:
    python tools/convert_datasets/synthia.py data/synthia --nproc 8

Reads ``<root>/GT/LABELS/<name>.png`` (16-bit PNGs, class id in the first channel), checks
every pair with ``<root>/RGB/<name>.png``, writes ``<name>_labelTrainIds.png`` beside it and
``sample_class_stats.json``, ``sample_class_stats_dict.json``, ``samples_with_class.json``
into ``<root>``. Exits with status 1 and lists every problem when a check fails. Safe to
re-run: converted labels are never read as raw labels.
"""
import argparse
import sys

from mmseg_iccld.datasets.conversion import ConversionError, convert_synthia


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Convert Synthia labels to Cityscapes train ids (+ class statistics)')
    parser.add_argument('synthia_path', help='Synthia root, holding RGB/ and GT/LABELS/')
    parser.add_argument('--nproc', default=4, type=int, help='number of processes')
    parser.add_argument('--decode-images', action='store_true',
                        help='fully decode every image (slow) instead of checking its '
                        'header and end')
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    try:
        stats = convert_synthia(args.synthia_path, nproc=args.nproc,
                                decode_images=args.decode_images)
    except (ConversionError, FileNotFoundError) as e:
        print(f'\nerror: {e}', file=sys.stderr)
        for problem in getattr(e, 'problems', [])[20:]:
            print(f'  - {problem}', file=sys.stderr)
        return 1
    print(f'\nconverted {len(stats)} labels; class statistics written to {args.synthia_path}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
