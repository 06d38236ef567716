"""Label conversion to Cityscapes train ids and rare-class statistics, for GTA5, Synthia and
Cityscapes (shared by ``tools/convert_datasets/{gta,synthia,cityscapes}.py``).

Each converter pairs images with raw labels, checks every pair (completeness, decoding, sizes,
unknown label ids), writes ``*_labelTrainIds.png`` next to each raw label and, for the
training sets, the three class-statistics files DAFormer's converters write (used by rare
class sampling, see :mod:`mmseg_iccld.datasets.class_stats`).

When any check fails, no statistics are written and :class:`ConversionError` lists every
problem. With ``skip_invalid`` the samples that fail are left out instead, and with
``unknown_ids_to_ignore`` label ids outside the dataset's table become 255; both write
``conversion_report.json`` (see :mod:`mmseg_iccld.datasets.conversion_report`).
"""
import os
import os.path as osp
from typing import List, Optional, Sequence

from .class_stats import write_class_stats
from .conversion_report import (REPORT_FILE, SKIP_OPTION, ConversionError, ConversionResult,
                                Rejected, remove_report)
from .sample_conversion import Sample, SampleResult, convert_sample, convert_samples, pair_files

__all__ = ['ConversionError', 'Sample', 'SampleResult', 'pair_files', 'convert_sample',
           'convert_samples', 'convert_gta', 'convert_synthia', 'convert_cityscapes']


def _require_folders(dataset: str, folders: Sequence[str], layout: str) -> None:
    missing = [folder for folder in folders if not osp.isdir(folder)]
    if missing:
        names = ', '.join(repr(folder) for folder in missing)
        raise FileNotFoundError(f'{dataset}: folder(s) {names} do not exist. Expected '
                                f'layout:\n{layout}')


def _convert(dataset: str, root: str, samples: List[Sample], unpaired: List[Rejected],
             reader: str, table: str, options: dict, fatal: Sequence[str] = (),
             protected: Sequence[str] = ()) -> ConversionResult:
    """Convert the pairs; fail on any problem, or skip the samples that have one.

    Args:
        dataset: Dataset name, for messages.
        root: Dataset root (report and messages).
        samples: The pairs.
        unpaired: The files without partner.
        reader: Key of ``READERS``.
        table: Key of ``TABLES``.
        options: ``nproc``, ``decode_images``, ``skip_invalid``, ``unknown_ids_to_ignore``.
        fatal: Problems no option skips (an empty split).
        protected: Folders whose samples are never skipped (evaluation splits).

    Returns:
        The result; the caller writes the statistics and the report.

    Raises:
        ConversionError: Listing every problem, when there is one that is not skipped.
    """
    if not samples and not unpaired and not fatal:
        raise FileNotFoundError(f'{dataset}: no image/label pairs found')
    results = convert_samples(samples, reader, table, options['nproc'],
                              options['decode_images'], options['unknown_ids_to_ignore'])
    rejected = unpaired + [Rejected(s.image, s.label, r.problems)
                           for s, r in zip(samples, results) if r.problems]
    problems = list(fatal) + [p for r in rejected for p in r.reasons]
    unskippable = list(fatal) + [
        p for r in rejected
        if any((r.image or r.label).startswith(folder + os.sep) for folder in protected)
        for p in r.reasons]
    if problems and not options['skip_invalid']:
        raise ConversionError(dataset, problems, _advice(problems, unskippable, root))
    if unskippable:
        raise ConversionError(dataset, unskippable, _advice(unskippable, unskippable, root))
    stats = [r.stats for r in results if r.stats is not None]
    if not stats:
        raise ConversionError(dataset, problems, 'no sample passed the checks')
    return ConversionResult(
        dataset, root, stats, skipped=rejected,
        unknown_pixels={s.label: r.unknown_pixels for s, r in zip(samples, results)
                        if r.stats is not None and r.unknown_pixels},
        not_rgb={s.image: r.image_mode for s, r in zip(samples, results)
                 if r.image_mode not in (None, 'RGB')})


def _advice(problems: Sequence[str], unskippable: Sequence[str], root: str) -> str:
    """What to do about ``problems``: ``--skip-invalid`` is advised only when it skips them all.

    Args:
        problems: The problems listed.
        unskippable: Those of them ``--skip-invalid`` does not skip (an empty split, a
            sample of a split that is evaluated on).
        root: Dataset root, where the report of skipped files goes.
    """
    why = 'an empty split, or a sample of a split that is evaluated on'
    if not unskippable:
        return (f'fix them, or convert the other samples with {SKIP_OPTION} (which lists each '
                f'skipped file and why in {osp.join(root, REPORT_FILE)})')
    if len(unskippable) == len(problems):
        return f'{SKIP_OPTION} does not skip these ({why}); fix them'
    return f'fix them; {SKIP_OPTION} does not skip {len(unskippable)} of them ({why})'


def _finish(result: ConversionResult, stats: Optional[List[dict]], options: dict) -> None:
    """Write the class statistics (when ``stats`` is given) and the report, or remove a stale
    report when no option that needs one was given."""
    if stats is not None:
        write_class_stats(result.root, stats)
    if options['skip_invalid'] or options['unknown_ids_to_ignore']:
        result.write_report(options['skip_invalid'], options['unknown_ids_to_ignore'])
    else:
        remove_report(result.root)


GTA5_RAW_LAYOUT = """\
  <root>/images/<name>.png    RGB images
  <root>/labels/<name>.png    palette PNGs whose indices are Cityscapes label ids"""
SYNTHIA_RAW_LAYOUT = """\
  <root>/RGB/<name>.png          RGB images
  <root>/GT/LABELS/<name>.png    16-bit PNGs, Synthia class id in the first channel"""
CITYSCAPES_RAW_LAYOUT = """\
  <root>/leftImg8bit/<split>/<city>/<name>_leftImg8bit.png
  <root>/gtFine/<split>/<city>/<name>_gtFine_labelIds.png"""


def convert_gta(root: str, nproc: int = 1, decode_images: bool = False,
                skip_invalid: bool = False,
                unknown_ids_to_ignore: bool = False) -> ConversionResult:
    """Convert GTA5 labels to train ids and write the class statistics into ``root``.

    Args:
        root: GTA5 root with ``images/`` and ``labels/``.
        nproc: Number of worker processes.
        decode_images: Fully decode every image instead of checking headers and ends.
        skip_invalid: Leave out the samples and files that fail a check (listed in
            ``conversion_report.json``) instead of failing.
        unknown_ids_to_ignore: Map label ids outside the table to 255 (counted in
            ``conversion_report.json``) instead of failing.

    Returns:
        The result; ``stats`` holds the per-label class statistics.

    Raises:
        FileNotFoundError: When a folder is missing or holds no pairs.
        ConversionError: Listing every problem found.
    """
    options = dict(nproc=nproc, decode_images=decode_images, skip_invalid=skip_invalid,
                   unknown_ids_to_ignore=unknown_ids_to_ignore)
    image_dir, label_dir = osp.join(root, 'images'), osp.join(root, 'labels')
    _require_folders('GTA5', (image_dir, label_dir), GTA5_RAW_LAYOUT)
    samples, unpaired = pair_files(image_dir, label_dir, '.png', '.png')
    result = _convert('GTA5', root, samples, unpaired, 'ids', 'gta', options)
    _finish(result, result.stats, options)
    return result


def convert_synthia(root: str, nproc: int = 1, decode_images: bool = False,
                    skip_invalid: bool = False,
                    unknown_ids_to_ignore: bool = False) -> ConversionResult:
    """Convert Synthia RAND-CITYSCAPES labels to train ids and write the class statistics.

    Args:
        root: Synthia root with ``RGB/`` and ``GT/LABELS/``.
        nproc, decode_images, skip_invalid, unknown_ids_to_ignore: As in
            :func:`convert_gta`.

    Returns:
        The result; ``stats`` holds the per-label class statistics.

    Raises:
        FileNotFoundError: When a folder is missing or holds no pairs.
        ConversionError: Listing every problem found.
    """
    options = dict(nproc=nproc, decode_images=decode_images, skip_invalid=skip_invalid,
                   unknown_ids_to_ignore=unknown_ids_to_ignore)
    image_dir, label_dir = osp.join(root, 'RGB'), osp.join(root, 'GT', 'LABELS')
    _require_folders('Synthia', (image_dir, label_dir), SYNTHIA_RAW_LAYOUT)
    samples, unpaired = pair_files(image_dir, label_dir, '.png', '.png')
    result = _convert('Synthia', root, samples, unpaired, 'synthia', 'synthia', options)
    _finish(result, result.stats, options)
    return result


def convert_cityscapes(root: str, nproc: int = 1, splits: Sequence[str] = ('train', 'val'),
                       stats_split: Optional[str] = 'train', decode_images: bool = False,
                       skip_invalid: bool = False,
                       unknown_ids_to_ignore: bool = False) -> ConversionResult:
    """Convert Cityscapes ``*_gtFine_labelIds.png`` to ``*_gtFine_labelTrainIds.png``.

    Args:
        root: Cityscapes root with ``leftImg8bit/`` and ``gtFine/``.
        nproc: Number of worker processes.
        splits: Splits to convert.
        stats_split: The split whose class statistics are written into ``root`` (None: none),
            and the only split whose samples ``skip_invalid`` may leave out (the others are
            evaluated on).
        decode_images, skip_invalid, unknown_ids_to_ignore: As in :func:`convert_gta`.

    Returns:
        The result; ``splits`` holds the per-label class statistics of each split.

    Raises:
        FileNotFoundError: When a folder is missing or holds no pairs.
        ConversionError: Listing every problem found (all splits are checked first).
    """
    options = dict(nproc=nproc, decode_images=decode_images, skip_invalid=skip_invalid,
                   unknown_ids_to_ignore=unknown_ids_to_ignore)
    folders = {s: (osp.join(root, 'leftImg8bit', s), osp.join(root, 'gtFine', s))
               for s in splits}
    _require_folders('Cityscapes', [f for pair in folders.values() for f in pair],
                     CITYSCAPES_RAW_LAYOUT)
    if stats_split is not None and stats_split not in splits:
        raise ValueError(f'stats_split {stats_split!r} is not one of the splits {splits}')
    paired = {s: pair_files(img, lbl, '_leftImg8bit.png', '_gtFine_labelIds.png',
                            '_gtFine_labelTrainIds.png')
              for s, (img, lbl) in folders.items()}
    empty = [f'{folders[split][1]}: no *_gtFine_labelIds.png labels'
             for split, (split_samples, _) in paired.items() if not split_samples]
    samples = [sample for split_samples, _ in paired.values() for sample in split_samples]
    unpaired = [r for _, split_unpaired in paired.values() for r in split_unpaired]
    protected = [f for s, pair in folders.items() if s != stats_split for f in pair]
    result = _convert('Cityscapes', root, samples, unpaired, 'ids', 'cityscapes', options,
                      fatal=empty, protected=protected)
    result.splits = {s: [st for st in result.stats
                         if st['file'].startswith(folders[s][1] + os.sep)] for s in splits}
    _finish(result, None if stats_split is None else result.splits[stats_split], options)
    return result
