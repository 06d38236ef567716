"""What a segmentor predicts on target images masked as MIC masks them, scored apart on the
pixels that stay visible and on those blanked out.

    python tools/analysis_tools/masked_probe.py CONFIG CHECKPOINT [CONFIG CHECKPOINT ...]
        [--mask-ratio 0.7] [--block-size 16] [--seed 0] [--limit N] --out PREFIX

MIC trains the student to predict the teacher's pseudo-label of a target image most of
whose patches are blanked (``models/uda/masking.py``). This tool shows what that training
bought and what it cost, on the config's test set with its ground truth. Each image is
predicted twice, as it is and masked (``block_mask`` on the normalised image, as the masked
pass does, without its color augmentation); the mask of image ``i`` is drawn from a
generator seeded with ``(seed, i)``, so every checkpoint sees the same masks. Per checkpoint
the report gives per-class IoU and mIoU (over the classes in the ground truth) of
- ``clean``: the unmasked image, every pixel (the test set's score);
- ``visible``: the masked image, on the pixels whose patch was kept;
- ``blanked``: the masked image, on the pixels whose patch was dropped (what the model
  fills in from the context that survives).
The mask is drawn at the model's input size and brought to the label's size by nearest
resizing. Writes ``PREFIX.json`` (with the confusion matrices) and ``PREFIX.md``.
"""
import argparse
import copy
import os.path as osp
import shlex
import sys
from typing import Dict, List

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

from mmseg_iccld.datasets.label_tables import NUM_TRAIN_CLASSES  # noqa: E402
from mmseg_iccld.models.uda.masking import block_mask  # noqa: E402
from tools._common import exit_on_user_error, load_config, write_report  # noqa: E402
from tools.analysis_tools.confusion import accumulate, class_names, iou  # noqa: E402
from tools.analysis_tools.visualize_predictions import build  # noqa: E402

CONDITIONS = ('clean', 'visible', 'blanked')


def probe(model, dataset, collate, mask_ratio: float, block_size: int, seed: int,
          limit: int = None) -> Dict[str, np.ndarray]:
    """Confusion matrices (row ground truth, column prediction) of every condition."""
    matrices = {c: np.zeros((NUM_TRAIN_CLASSES, NUM_TRAIN_CLASSES), np.int64)
                for c in CONDITIONS}
    count = len(dataset) if limit is None else min(limit, len(dataset))
    for i in range(count):
        data = model.data_preprocessor(collate([dataset[i]]), False)
        inputs, samples = data['inputs'], data['data_samples']
        n, _, h, w = inputs.shape
        generator = torch.Generator().manual_seed(seed * 1_000_003 + i)
        keep = block_mask(n, h, w, block_size, mask_ratio, generator=generator)
        with torch.no_grad():
            # predict writes into the samples it is given: one copy each
            clean = model(inputs, copy.deepcopy(samples), mode='predict')[0]
            masked = model(inputs * keep.to(inputs), copy.deepcopy(samples), mode='predict')[0]
        gt = clean.gt_sem_seg.data[0].cpu().numpy().astype(np.int64)
        kept = F.interpolate(keep, size=gt.shape, mode='nearest')[0, 0].numpy() > 0.5
        everywhere = np.ones_like(kept)
        for name, sample, where in (('clean', clean, everywhere), ('visible', masked, kept),
                                    ('blanked', masked, ~kept)):
            pred = sample.pred_sem_seg.data[0].cpu().numpy().astype(np.int64)
            accumulate(matrices[name], gt[where], pred[where], f'image {i}')
    return matrices


def summary(matrices: Dict[str, np.ndarray], names: List[str]) -> dict:
    """Per condition: mIoU over the classes in the ground truth, and each class's IoU."""
    out = {}
    for condition, matrix in matrices.items():
        present = matrix.sum(1) > 0
        per_class = iou(matrix)
        out[condition] = dict(
            pixels=int(matrix.sum()),
            miou=float(np.mean(per_class[present])) if present.any() else float('nan'),
            iou={names[c]: float(per_class[c]) for c in np.flatnonzero(present)})
    return out


def to_markdown(report: dict) -> str:
    classes = [c for c in report['class_names']
               if any(c in r['clean']['iou'] for r in report['runs'].values())]
    lines = [f"Masked with ratio {report['mask_ratio']}, {report['block_size']}-pixel patches, "
             f"seed {report['seed']}; command: `{report['command']}`", '',
             '| checkpoint | pixels | mIoU | ' + ' | '.join(classes) + ' |',
             '|---|---|---|' + '---|' * len(classes)]
    for checkpoint, result in report['runs'].items():
        for condition in CONDITIONS:
            r = result[condition]
            cells = [f"{100 * r['iou'][c]:.1f}" if c in r['iou'] else '' for c in classes]
            lines.append(f"| {checkpoint} ({condition}) | {r['pixels']} | "
                         f"{100 * r['miou']:.2f} | " + ' | '.join(cells) + ' |')
    return '\n'.join(lines) + '\n'


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('pairs', nargs='+', metavar='CONFIG CHECKPOINT',
                        help='config and checkpoint, one pair per model')
    parser.add_argument('--mask-ratio', type=float, default=0.7)
    parser.add_argument('--block-size', type=int, default=16,
                        help='patch side in input pixels (mic_tiny.py: 16)')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--limit', type=int, default=None, help='first N test images only')
    parser.add_argument('--out', required=True, help='output path without extension')
    args = parser.parse_args(argv)
    if len(args.pairs) % 2:
        parser.error('give a CONFIG and a CHECKPOINT for every model')
    return args


@exit_on_user_error
def main(argv=None):
    args = parse_args(argv)
    names = class_names()
    runs = {}
    for config, checkpoint in zip(args.pairs[::2], args.pairs[1::2]):
        dataset, model, collate = build(load_config(config), checkpoint, 'cpu')
        matrices = probe(model, dataset, collate, args.mask_ratio, args.block_size, args.seed,
                         args.limit)
        runs[checkpoint] = dict(summary(matrices, names), config=config,
                                matrices={k: v.tolist() for k, v in matrices.items()})
    command = ' '.join(shlex.quote(a) for a in ['python', 'tools/analysis_tools/masked_probe.py']
                       + list(sys.argv[1:] if argv is None else argv))
    report = dict(command=command, mask_ratio=args.mask_ratio, block_size=args.block_size,
                  seed=args.seed, class_names=names, runs=runs)
    write_report(args.out, report, to_markdown(report))
    return report


if __name__ == '__main__':
    main()
