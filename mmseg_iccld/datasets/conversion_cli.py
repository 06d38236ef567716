"""Command-line options and output shared by ``tools/convert_datasets/*.py``."""
import argparse
import sys
from typing import Callable

from .conversion_report import (REPORT_FILE, SKIP_OPTION, UNKNOWN_IDS_OPTION, ConversionError,
                                ConversionResult)


def add_conversion_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--nproc``, ``--decode-images``, ``--skip-invalid`` and
    ``--unknown-ids-to-ignore`` to a converter's parser."""
    parser.add_argument('--nproc', default=4, type=int, help='number of processes')
    parser.add_argument('--decode-images', action='store_true',
                        help='fully decode every image (slow) instead of checking its '
                        'header and end')
    parser.add_argument(SKIP_OPTION, dest='skip_invalid', action='store_true',
                        help='convert the samples that pass the checks and leave out the '
                        f'others, listing each with its reasons in <root>/{REPORT_FILE}; the '
                        'datasets then leave them out too')
    parser.add_argument(UNKNOWN_IDS_OPTION, dest='unknown_ids_to_ignore', action='store_true',
                        help='map raw label ids outside the dataset\'s table to 255 (ignored, '
                        f'as DAFormer does) and count them per label in <root>/{REPORT_FILE}')


def run_conversion(convert: Callable[..., ConversionResult], root: str,
                   args: argparse.Namespace, **kwargs) -> int:
    """Run a converter with the options of :func:`add_conversion_arguments` and print what it
    did, or every problem it found.

    Args:
        convert: ``convert_gta``, ``convert_synthia`` or ``convert_cityscapes``.
        root: Dataset root.
        args: Parsed arguments.
        **kwargs: Further arguments of ``convert``.

    Returns:
        The exit status: 0, or 1 when the conversion failed.
    """
    try:
        result = convert(root, nproc=args.nproc, decode_images=args.decode_images,
                         skip_invalid=args.skip_invalid,
                         unknown_ids_to_ignore=args.unknown_ids_to_ignore, **kwargs)
    except (ConversionError, FileNotFoundError, ValueError) as e:
        print(f'\nerror: {e}', file=sys.stderr)
        for problem in getattr(e, 'problems', [])[20:]:
            print(f'  - {problem}', file=sys.stderr)
        return 1
    if result.splits:
        counts = ', '.join(f'{split}: {len(s)}' for split, s in result.splits.items())
        print(f'\nconverted labels ({counts}) in {root}')
    else:
        print(f'\nconverted {len(result.stats)} labels; class statistics written to {root}')
    for line in result.notes():
        print(line)
    return 0
