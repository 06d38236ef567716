"""Convert GTA5 labels to Cityscapes train ids and write the rare-class statistics.

Usage:
    python tools/convert_datasets/gta.py data/gta --nproc 8
    python tools/convert_datasets/gta.py data/gta --nproc 8 --skip-invalid

Reads ``<root>/labels/<name>.png`` (palette PNGs of Cityscapes label ids), checks every pair
with ``<root>/images/<name>.png``, writes ``<root>/labels/<name>_labelTrainIds.png`` and
``sample_class_stats.json``, ``sample_class_stats_dict.json``, ``samples_with_class.json``
into ``<root>``. Exits with status 1 and lists every problem when a check fails;
``--skip-invalid`` converts the other samples instead (the public GTA5 download lacks some
images or labels) and ``--unknown-ids-to-ignore`` maps unknown label ids to 255, both writing
``<root>/conversion_report.json``. Safe to re-run: converted labels are never read as raw
labels.
"""
import argparse
import sys

from mmseg_iccld.datasets.conversion import convert_gta
from mmseg_iccld.datasets.conversion_cli import add_conversion_arguments, run_conversion


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Convert GTA5 labels to Cityscapes train ids (+ class statistics)')
    parser.add_argument('gta_path', help='GTA5 root, holding images/ and labels/')
    add_conversion_arguments(parser)
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    return run_conversion(convert_gta, args.gta_path, args)


if __name__ == '__main__':
    sys.exit(main())
