"""Convert Synthia (RAND-CITYSCAPES) labels to Cityscapes train ids and write the rare-class
statistics.

Usage:
    python tools/convert_datasets/synthia.py data/synthia --nproc 8

Reads ``<root>/GT/LABELS/<name>.png`` (16-bit PNGs, class id in the first channel), checks
every pair with ``<root>/RGB/<name>.png``, writes ``<name>_labelTrainIds.png`` beside it and
``sample_class_stats.json``, ``sample_class_stats_dict.json``, ``samples_with_class.json``
into ``<root>``. Exits with status 1 and lists every problem when a check fails;
``--skip-invalid`` converts the other samples instead and ``--unknown-ids-to-ignore`` maps
unknown label ids to 255, both writing ``<root>/conversion_report.json``. Safe to re-run:
converted labels are never read as raw labels.
"""
import argparse
import sys

from mmseg_iccld.datasets.conversion import convert_synthia
from mmseg_iccld.datasets.conversion_cli import add_conversion_arguments, run_conversion


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Convert Synthia labels to Cityscapes train ids (+ class statistics)')
    parser.add_argument('synthia_path', help='Synthia root, holding RGB/ and GT/LABELS/')
    add_conversion_arguments(parser)
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    return run_conversion(convert_synthia, args.synthia_path, args)


if __name__ == '__main__':
    sys.exit(main())
