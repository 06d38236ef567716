"""Convert Cityscapes ``*_gtFine_labelIds.png`` to ``*_gtFine_labelTrainIds.png``.

Usage:
    python tools/convert_datasets/cityscapes.py data/cityscapes --nproc 8

Checks every pair ``leftImg8bit/<split>/<city>/<name>_leftImg8bit.png`` /
``gtFine/<split>/<city>/<name>_gtFine_labelIds.png`` of the chosen splits (default train and
val), writes ``<name>_gtFine_labelTrainIds.png`` beside each label with cityscapesscripts'
id -> trainId table, and the class statistics of the train split into ``<root>``
(``sample_class_stats.json``, ``sample_class_stats_dict.json``, ``samples_with_class.json``).
Exits with status 1 and lists every problem when a check fails.
"""
import argparse
import sys

from mmseg_iccld.datasets.conversion import ConversionError, convert_cityscapes


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Convert Cityscapes label ids to train ids (+ class statistics)')
    parser.add_argument('cityscapes_path',
                        help='Cityscapes root, holding leftImg8bit/ and gtFine/')
    parser.add_argument('--nproc', default=4, type=int, help='number of processes')
    parser.add_argument('--splits', nargs='+', default=['train', 'val'],
                        help='splits to convert')
    parser.add_argument('--stats-split', default='train',
                        help="split whose class statistics are written ('none': none)")
    parser.add_argument('--decode-images', action='store_true',
                        help='fully decode every image (slow) instead of checking its '
                        'header and end')
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    stats_split = None if args.stats_split.lower() == 'none' else args.stats_split
    try:
        stats = convert_cityscapes(args.cityscapes_path, nproc=args.nproc, splits=args.splits,
                                   stats_split=stats_split, decode_images=args.decode_images)
    except (ConversionError, FileNotFoundError, ValueError) as e:
        print(f'\nerror: {e}', file=sys.stderr)
        for problem in getattr(e, 'problems', [])[20:]:
            print(f'  - {problem}', file=sys.stderr)
        return 1
    counts = ', '.join(f'{split}: {len(s)}' for split, s in stats.items())
    print(f'\nconverted labels ({counts}) in {args.cityscapes_path}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
