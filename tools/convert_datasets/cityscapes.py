"""Convert Cityscapes ``*_gtFine_labelIds.png`` to ``*_gtFine_labelTrainIds.png``.

Usage:
    python tools/convert_datasets/cityscapes.py data/cityscapes --nproc 8

Checks every pair ``leftImg8bit/<split>/<city>/<name>_leftImg8bit.png`` /
``gtFine/<split>/<city>/<name>_gtFine_labelIds.png`` of the chosen splits (default train and
val), writes ``<name>_gtFine_labelTrainIds.png`` beside each label with cityscapesscripts'
id -> trainId table, and the class statistics of the train split into ``<root>``
(``sample_class_stats.json``, ``sample_class_stats_dict.json``, ``samples_with_class.json``).
Exits with status 1 and lists every problem when a check fails. ``--skip-invalid`` leaves out
failing samples of the statistics split only (val is evaluated on and never loses a sample),
and is advised only for problems it skips; ``--unknown-ids-to-ignore`` maps unknown label ids
to 255; both write ``<root>/conversion_report.json``. Hidden files (the ``._*`` metadata files
macOS writes when copying) and symlink loops are ignored with a note, as the datasets ignore
them (see ``mmseg_iccld/datasets/folder_walk.py``).
"""
import argparse
import sys

from mmseg_iccld.datasets.conversion import convert_cityscapes
from mmseg_iccld.datasets.conversion_cli import add_conversion_arguments, run_conversion


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Convert Cityscapes label ids to train ids (+ class statistics)')
    parser.add_argument('cityscapes_path',
                        help='Cityscapes root, holding leftImg8bit/ and gtFine/')
    parser.add_argument('--splits', nargs='+', default=['train', 'val'],
                        help='splits to convert')
    parser.add_argument('--stats-split', default='train',
                        help="split whose class statistics are written ('none': none)")
    add_conversion_arguments(parser)
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    stats_split = None if args.stats_split.lower() == 'none' else args.stats_split
    return run_conversion(convert_cityscapes, args.cityscapes_path, args, splits=args.splits,
                          stats_split=stats_split)


if __name__ == '__main__':
    sys.exit(main())
