"""What a dataset converter skipped or changed, and how the datasets leave skipped samples out.

A conversion with ``--skip-invalid`` or ``--unknown-ids-to-ignore`` writes
``conversion_report.json`` into the dataset root (paths relative to it)::

    {"dataset": "GTA5",
     "options": {"skip_invalid": true, "unknown_ids_to_ignore": false},
     "converted": 24941,
     "skipped": [{"image": "images/02154.png", "label": null,
                  "reasons": ["<root>/images/02154.png: image has no label (...)"]}, ...],
     "unknown_ids_to_ignore": [{"label": "labels/00007.png", "pixels": {"34": 12}}, ...],
     "images_not_rgb": [{"image": "images/00009.png", "mode": "RGBA"}, ...]}

A conversion without those options removes an earlier report. ``GTA5Dataset``,
``SynthiaDataset`` and ``UDADataset`` (for both of its datasets) leave out the images the report
lists as skipped, so the datasets hold exactly the samples the class statistics count.
"""
import json
import logging
import os
import os.path as osp
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Set

from mmengine.logging import print_log

from .validation import format_problems, rgb_conversion

REPORT_FILE = 'conversion_report.json'
SKIP_OPTION = '--skip-invalid'
UNKNOWN_IDS_OPTION = '--unknown-ids-to-ignore'


class ConversionError(ValueError):
    """One or more samples of a dataset failed the checks; ``problems`` lists them all.

    Args:
        dataset: Dataset name.
        problems: One line per problem, each starting with the file it is about.
        advice: What the user can do, for the first line of the message.
    """

    def __init__(self, dataset: str, problems: Sequence[str], advice: str) -> None:
        self.problems = list(problems)
        super().__init__(f'{dataset}: {len(self.problems)} problem(s) found; {advice}:\n'
                         f'{format_problems(self.problems)}')


@dataclass
class Rejected:
    """A file, or an image/label pair, that failed a check.

    Args:
        image: Image path (None for a label without image).
        label: Raw label path (None for an image without label).
        reasons: Every problem found, each starting with the file it is about.
    """

    image: Optional[str]
    label: Optional[str]
    reasons: List[str]


@dataclass
class ConversionResult:
    """What a conversion wrote, skipped and noticed.

    Args:
        dataset: Dataset name.
        root: Dataset root, where the statistics and the report go.
        stats: Class statistics of every converted label, in order.
        skipped: Samples and files left out (``--skip-invalid``).
        unknown_pixels: Label path -> ``{unknown id: pixels}`` mapped to 255
            (``--unknown-ids-to-ignore``).
        not_rgb: Image path -> PIL mode, for the images that are not 8-bit RGB.
        splits: Split -> class statistics of its converted labels (Cityscapes).
        report: Path of the report written, or None.
    """

    dataset: str
    root: str
    stats: List[dict]
    skipped: List[Rejected] = field(default_factory=list)
    unknown_pixels: Dict[str, Dict[int, int]] = field(default_factory=dict)
    not_rgb: Dict[str, str] = field(default_factory=dict)
    splits: Dict[str, List[dict]] = field(default_factory=dict)
    report: Optional[str] = None

    def notes(self) -> List[str]:
        """One line for each thing the user should know beyond the number converted."""
        lines = []
        if self.skipped:
            lines.append(f'skipped {len(self.skipped)} sample(s) or file(s) that failed a '
                         f'check, each listed with its reasons in {self.report}')
        if self.unknown_pixels:
            pixels = sum(sum(p.values()) for p in self.unknown_pixels.values())
            lines.append(f'mapped {pixels} pixel(s) of unknown label ids in '
                         f'{len(self.unknown_pixels)} label(s) to 255 (ignored), counted per '
                         f'label in {self.report}')
        if self.not_rgb:
            image, mode = next(iter(self.not_rgb.items()))
            lines.append(f'note: {len(self.not_rgb)} image(s) are not RGB, e.g. {image} '
                         f'({mode}); training loads them as RGB ({rgb_conversion(mode)})')
        return lines

    def write_report(self, skip_invalid: bool, unknown_ids_to_ignore: bool) -> str:
        """Write ``conversion_report.json`` into the root; sets and returns ``report``."""

        def rel(path: Optional[str]) -> Optional[str]:
            return None if path is None else osp.relpath(path, self.root)

        content = dict(
            dataset=self.dataset,
            options=dict(skip_invalid=skip_invalid, unknown_ids_to_ignore=unknown_ids_to_ignore),
            converted=len(self.stats),
            skipped=[dict(image=rel(r.image), label=rel(r.label), reasons=r.reasons)
                     for r in self.skipped],
            unknown_ids_to_ignore=[
                dict(label=rel(label), pixels={str(k): v for k, v in pixels.items()})
                for label, pixels in self.unknown_pixels.items()],
            images_not_rgb=[dict(image=rel(image), mode=mode)
                            for image, mode in self.not_rgb.items()])
        self.report = osp.join(self.root, REPORT_FILE)
        with open(self.report, 'w') as f:
            json.dump(content, f, indent=2)
        return self.report


def remove_report(root: str) -> None:
    """Remove the report an earlier conversion of ``root`` left, if any."""
    path = osp.join(root, REPORT_FILE)
    if osp.isfile(path):
        os.remove(path)


def reported_skipped_images(data_root: str) -> Set[str]:
    """Images (relative to ``data_root``) that the report in ``data_root`` lists as skipped.

    Args:
        data_root: Dataset root.

    Returns:
        Normalised relative image paths; empty when there is no report.

    Raises:
        ValueError: Naming the report when it cannot be read.
    """
    path = osp.join(data_root, REPORT_FILE)
    if not osp.isfile(path):
        return set()
    try:
        with open(path) as f:
            content = json.load(f)
        return {osp.normpath(entry['image']) for entry in content['skipped'] if entry['image']}
    except (ValueError, KeyError, TypeError) as e:
        raise ValueError(f'{path}: not a conversion report as the dataset converters write it '
                         f'({type(e).__name__}: {e}); re-run the converter to rewrite it') from e


def skipped_indices(img_paths: Sequence[str], data_root: Optional[str], who: str) -> Set[int]:
    """Indices of ``img_paths`` that the conversion report of ``data_root`` lists as skipped.

    Logs one line saying how many are left out and where the reasons are.

    Args:
        img_paths: The dataset's image paths (under ``data_root``).
        data_root: Dataset root (None: nothing is left out).
        who: The dataset, for the log line.

    Returns:
        The indices to leave out.
    """
    if not data_root:
        return set()
    skipped = reported_skipped_images(data_root)
    if not skipped:
        return set()
    indices = {i for i, path in enumerate(img_paths)
               if osp.normpath(osp.relpath(path, data_root)) in skipped}
    if indices:
        print_log(f'{who}: left out {len(indices)} sample(s) that the dataset converter '
                  f'skipped, listed with their reasons in {osp.join(data_root, REPORT_FILE)}',
                  logger='current', level=logging.WARNING)
    return indices
