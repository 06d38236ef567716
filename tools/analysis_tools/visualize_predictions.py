"""A picture of image / ground truth / prediction (/ uncertainty) for a few test images.

    python tools/analysis_tools/visualize_predictions.py CONFIG CHECKPOINT [--num-images 4]
        [--num-samples 4] [--out predictions.png]

Images come from the config's test set, evenly spread over it. For ICCLD, ``--num-samples``
noise draws are averaged and the fourth column shows the per-pixel uncertainty (entropy of
the mean softmax, in nats); other models get three columns.
"""
import argparse
import os
import os.path as osp

import numpy as np
import torch

from mmseg_iccld.apis.checkpoint_reading import check_state_dict, read_checkpoint, sub_state_dict
from mmseg_iccld.apis.cli_errors import exit_on_user_error
from mmseg_iccld.apis.config_loading import load_config
from mmseg_iccld.engine.cfg_options import CfgOptionsAction


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('--num-images', type=int, default=4)
    parser.add_argument('--num-samples', type=int, default=4,
                        help='ICCLD noise draws (uncertainty needs at least 2)')
    parser.add_argument('--out', default='predictions.png')
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--cfg-options', nargs='+', action=CfgOptionsAction, default={})
    return parser.parse_args()


def colorize(label: np.ndarray, palette: np.ndarray, ignore_index: int = 255) -> np.ndarray:
    """(H, W) class ids -> (H, W, 3) uint8 colors; ignored pixels black."""
    out = np.zeros(label.shape + (3, ), dtype=np.uint8)
    valid = label != ignore_index
    out[valid] = palette[label[valid]]
    return out


def build(cfg, checkpoint: str, device: str):
    from mmengine.dataset import pseudo_collate
    from mmengine.registry import init_default_scope

    from mmseg.registry import DATASETS, MODELS
    if not osp.isfile(checkpoint):
        raise FileNotFoundError(f'checkpoint {checkpoint} does not exist')
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    dataset = DATASETS.build(cfg.test_dataloader.dataset)
    model = MODELS.build(cfg.model)
    _, state = read_checkpoint(checkpoint)
    weights = sub_state_dict(state, '', model.state_dict())  # also of a distributed run
    check_state_dict(model.state_dict(), weights, checkpoint,
                     f'the {type(model).__name__} of the config')
    model.load_state_dict(weights)
    return dataset, model.to(device).eval(), pseudo_collate


def student_of(model):
    """The segmentor that predicts: a UDA wrapper's student, or the model itself."""
    return getattr(model, 'student', model)


@exit_on_user_error
def main():
    args = parse_args()
    cfg = load_config(args.config, args.cfg_options)
    dataset, model, collate = build(cfg, args.checkpoint, args.device)
    student = student_of(model)
    with_uncertainty = 'num_samples' in student.test_cfg and args.num_samples > 1 and \
        getattr(student, 'num_inference_steps', 0) > 0
    if with_uncertainty:
        student.test_cfg['num_samples'] = args.num_samples
    palette = np.array(dataset.metainfo['palette'], dtype=np.uint8)

    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    indices = np.linspace(0, len(dataset) - 1, args.num_images).round().astype(int)
    columns = ['image', 'ground truth', 'prediction'] + (['uncertainty'] if with_uncertainty
                                                          else [])
    fig, axes = plt.subplots(len(indices), len(columns),
                             figsize=(3.2 * len(columns), 1.9 * len(indices)), squeeze=False)
    for row, index in enumerate(indices):
        batch = collate([dataset[int(index)]])
        with torch.no_grad():
            sample = model.test_step(batch)[0]
        image = sample.metainfo['img_path']
        import mmcv
        rgb = mmcv.imread(image, channel_order='rgb')
        gt = sample.gt_sem_seg.data[0].cpu().numpy()
        pred = sample.pred_sem_seg.data[0].cpu().numpy()
        panels = [rgb, colorize(gt, palette), colorize(pred, palette)]
        for col, panel in enumerate(panels):
            axes[row, col].imshow(panel)
        if with_uncertainty:
            unc = sample.uncertainty.data[0].cpu().numpy()
            shown = axes[row, 3].imshow(unc, cmap='magma', vmin=0)
            fig.colorbar(shown, ax=axes[row, 3], fraction=0.046, pad=0.02)
        for col, title in enumerate(columns):
            axes[row, col].set_xticks([])
            axes[row, col].set_yticks([])
            if row == 0:
                axes[row, col].set_title(title)
        axes[row, 0].set_ylabel(osp.basename(image)[:24], fontsize=7)
    fig.tight_layout()
    os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
    fig.savefig(args.out, dpi=110)
    print(f'written: {args.out}')


if __name__ == '__main__':
    main()
