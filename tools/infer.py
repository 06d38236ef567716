"""Segment images with a trained model: colour masks, overlays and (ICCLD) uncertainty maps.

    python tools/infer.py CONFIG CHECKPOINT INPUT [--out DIR] [--device cpu|cuda]
        [--batch-size 1] [--same-size] [--num-samples S] [--opacity 0.5]
        [--cfg-options key=value ...]

INPUT is an image, a folder of images (searched recursively) or a folder of video frames
(processed in natural order: frame_9 before frame_10). For each image ``<name>`` it writes

    DIR/masks/<name>.png          prediction in the Cityscapes palette
    DIR/overlays/<name>.png       the mask blended over the image (``--opacity``)
    DIR/labels/<name>.png         prediction as train ids (8-bit grayscale)
    DIR/uncertainty/<name>.png    ICCLD with --num-samples > 1: entropy of the mean softmax
    DIR/uncertainty/<name>.npy      over the noise draws, in nats (PNG scaled to [0, ln C])

keeping the folder structure below INPUT. ``<name>`` is the image's path below INPUT without
its extension; images of one folder that differ only in their extension (``frame.png`` and
``frame.jpg``) keep it instead, so that neither overwrites the other: ``masks/frame.png.png``
and ``masks/frame.jpg.png``. Inputs whose names would still clash are refused, naming both.
When DIR lies inside INPUT, the folders written here (DIR/masks, ...) are not read as input.
Unwritable output folders are reported before the model is built, and so is a file in DIR that
a result would replace and that no earlier run of this tool wrote there (the files written
are recorded in ``DIR/.written_by_infer.jsonl``): a rerun replaces its own results, never a
dataset's labels.

UDA configs (DACS, DAFormer, ICCLD) are run with the student, as tools/test.py evaluates them:
only the student is built (no teacher, no frozen ImageNet backbone), and the checkpoint's
``model.*`` weights are loaded into it. Images go through the config's test pipeline, without
its label loading.

Images of different sizes cannot share a batch: with ``--batch-size`` > 1, or with
``--same-size`` (for frames of one video), every image must have the same size.
"""
import argparse
import copy
import math
import os
import os.path as osp
import re
from typing import List, Sequence, Tuple

import numpy as np

from mmseg_iccld.apis.checkpoint_reading import check_state_dict, read_checkpoint, sub_state_dict
from mmseg_iccld.apis.cli_errors import exit_on_user_error
from mmseg_iccld.apis.config_loading import explain_unknown_modules, load_config
from mmseg_iccld.apis.result_files import check_output_folder, write_result_file
from mmseg_iccld.engine.cfg_options import CfgOptionsAction

IMAGE_SUFFIXES = ('.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff', '.webp')
# the subfolders of the output folder this tool writes
OUTPUT_KINDS = ('masks', 'overlays', 'labels', 'uncertainty')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('input', help='an image, a folder of images or of video frames')
    parser.add_argument('--out', default='work_dirs/infer',
                        help='output folder; images of one folder differing only in their '
                        'extension keep it in their output names (frame.png.png, '
                        'frame.jpg.png)')
    parser.add_argument('--device', choices=['cpu', 'cuda'], default='cpu')
    parser.add_argument('--batch-size', type=int, default=1,
                        help='images per forward pass (> 1 needs images of one size)')
    parser.add_argument('--same-size', action='store_true',
                        help='require every input image to have the same size (video frames)')
    parser.add_argument('--num-samples', type=int, default=None,
                        help='ICCLD noise draws (model.test_cfg.num_samples); > 1 writes '
                        'uncertainty maps')
    parser.add_argument('--opacity', type=float, default=0.5, help='mask opacity of overlays')
    parser.add_argument('--cfg-options', nargs='+', action=CfgOptionsAction, default={})
    return parser.parse_args(argv)


def _natural_key(path: str):
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r'(\d+)', path)]


def list_images(path: str, skip: Sequence[str] = ()) -> Tuple[List[str], str, List[str]]:
    """The images of INPUT in natural order, and the folder output names are relative to.

    Args:
        path: An image file or a folder.
        skip: Folders not to search (this tool's output folders).

    Returns:
        tuple: image paths; their root folder; the folders of ``skip`` found below INPUT.

    Raises:
        FileNotFoundError: When INPUT does not exist or holds no image.
    """
    if osp.isfile(path):
        return [path], osp.dirname(path), []
    if not osp.isdir(path):
        raise FileNotFoundError(f'input {path} does not exist')
    skip = {osp.realpath(folder) for folder in skip}
    images, skipped = [], []
    for folder, subfolders, files in os.walk(path):
        for name in list(subfolders):
            if osp.realpath(osp.join(folder, name)) in skip:
                subfolders.remove(name)
                skipped.append(osp.join(folder, name))
        images += [osp.join(folder, f) for f in files if f.lower().endswith(IMAGE_SUFFIXES)]
    if not images:
        raise FileNotFoundError(f'no images ({", ".join(IMAGE_SUFFIXES)}) in {path}')
    return sorted(images, key=lambda p: _natural_key(osp.relpath(p, path))), path, sorted(skipped)


def check_images(paths: Sequence[str], same_size: bool, reason: str) -> None:
    """Raise on an unreadable or truncated image, and on mixed sizes where one is needed.

    Only headers and trailers are read, so every image is checked before the model runs.

    Args:
        paths: Image files.
        same_size: Whether all images must have one size.
        reason: Why they must (for the message).

    Raises:
        DataFileError: Naming an unreadable or truncated image.
        ValueError: Naming two images of different sizes.
    """
    from mmseg_iccld.datasets.validation import check_file_complete, read_image_size
    first = None
    for path in paths:
        check_file_complete(path)
        size = read_image_size(path)
        if first is None:
            first = (path, size)
        elif same_size and size != first[1]:
            (h0, w0), (h, w) = first[1], size
            raise ValueError(f'images of different sizes: {first[0]} is {w0}x{h0}, {path} is '
                             f'{w}x{h} (width x height); {reason}')


def inference_config(cfg):
    """The config of the network that predicts, with the test pipeline minus its labels.

    A UDA config's model is a wrapper: its student (``model.model``) predicts, with the
    wrapper's data preprocessor (the wrapper normalises every batch).

    Args:
        cfg: The loaded config.

    Returns:
        The config for mmseg's ``init_model`` / ``inference_model``.
    """
    infer_cfg = copy.deepcopy(cfg)
    if isinstance(cfg.model.get('model'), dict):
        student = copy.deepcopy(cfg.model.model)
        student['data_preprocessor'] = copy.deepcopy(cfg.model.data_preprocessor)
        infer_cfg.model = student
    pipeline = copy.deepcopy(cfg.test_dataloader.dataset.get('pipeline')
                             or cfg.get('test_pipeline'))
    if not pipeline:
        raise ValueError('the config has no test pipeline (test_dataloader.dataset.pipeline)')
    pipeline = [t for t in pipeline if 'LoadAnnotations' not in str(t.get('type'))]
    if str(pipeline[0].get('type')).rpartition('.')[2] == 'LoadImageFromFile':
        pipeline[0]['type'] = 'LoadImageFromFileChecked'  # names a broken file, not just fails
    infer_cfg.test_pipeline = pipeline
    return infer_cfg


def build_model(cfg, config: str, checkpoint: str, device: str):
    """The predicting network, with the checkpoint's weights checked and loaded.

    Args:
        cfg: The loaded config.
        config: Its file, for messages.
        checkpoint: Checkpoint file: a UDA run's (``model.*`` is the student) or a plain one.
        device: 'cpu' or 'cuda'.

    Returns:
        tuple: the segmentor in eval mode (``cfg`` and ``dataset_meta`` set, as mmseg's
        ``init_model`` leaves them) and the palette ``(C, 3)`` uint8.
    """
    from mmseg.apis import init_model
    from mmseg.utils import get_classes, get_palette
    meta, state = read_checkpoint(checkpoint)
    infer_cfg = inference_config(cfg)
    with explain_unknown_modules(config):
        model = init_model(infer_cfg, checkpoint=None, device='cpu')
    # a UDA run's checkpoint also holds teacher.* and imnet_backbone.*; the student is model.*
    prefix = 'model.' if any(k.startswith('model.') for k in state) else ''
    weights = sub_state_dict(state, prefix, model.state_dict())
    where = f" (its '{prefix}*' weights)" if prefix else ''
    check_state_dict(model.state_dict(), weights, checkpoint + where,
                     f'the {type(model).__name__} of {config}')
    model.load_state_dict(weights, strict=True)

    num_classes = model.decode_head.num_classes
    dataset_meta = meta.get('dataset_meta') or {}
    classes = dataset_meta.get('classes') or get_classes('cityscapes')
    palette = dataset_meta.get('palette') or get_palette('cityscapes')
    if len(palette) < num_classes:
        raise ValueError(f'the model predicts {num_classes} classes; the palette has '
                         f'{len(palette)} colours (checkpoint meta dataset_meta.palette)')
    model.dataset_meta = dict(classes=classes, palette=palette)
    return model.to(device).eval(), np.array(palette, dtype=np.uint8)


def set_num_samples(model, num_samples: int) -> None:
    """Set ICCLD's noise draws; refuse the option for models without any.

    Args:
        model: The predicting segmentor.
        num_samples: S, the value of ``--num-samples``.

    Raises:
        ValueError: For a model that is not ICCLD, or S < 1.
    """
    from mmseg_iccld.models.segmentors import ICCLD
    if not isinstance(model, ICCLD):
        raise ValueError(f'--num-samples needs an ICCLD model; {type(model).__name__} draws '
                         'no noise')
    if num_samples < 1:
        raise ValueError(f'--num-samples must be >= 1, got {num_samples}')
    model.test_cfg['num_samples'] = num_samples
    if num_samples > 1 and model.num_inference_steps == 0:
        print('note: this ICCLD checkpoint is in training phase 1 (no diffusion at inference): '
              'all draws are equal, and the uncertainty map is the entropy of one prediction')


def output_files(out: str, names: Sequence[str]) -> List[str]:
    """Every file a run may write for images of these output names (the uncertainty maps
    too, which only ICCLD with several noise draws writes)."""
    return [osp.join(out, kind, name + ext) for name in names
            for kind, ext in (('masks', '.png'), ('overlays', '.png'), ('labels', '.png'),
                              ('uncertainty', '.png'), ('uncertainty', '.npy'))]


def save_outputs(path: str, name: str, out: str, result, palette: np.ndarray,
                 opacity: float, record) -> None:
    """Write mask, overlay, label map and (when present) uncertainty of one image.

    Args:
        path: The image file.
        name: Its output name, relative to the output folder's subfolders, no extension.
        out: The output folder.
        result: The prediction (``SegDataSample``).
        palette: ``(C, 3)`` uint8 colours.
        opacity: Weight of the mask in the overlay.
        record: The ``OutputRecord`` of ``out``, which each file written is added to.
    """

    def write(target: str, writer) -> None:
        write_result_file(target, writer)
        record.add(target)

    import mmcv
    from matplotlib import colormaps
    from PIL import Image
    pred = result.pred_sem_seg.data[0].cpu().numpy().astype(np.uint8)
    color = palette[pred]
    image = mmcv.imread(path, channel_order='rgb')
    overlay = (image * (1 - opacity) + color * opacity).round().astype(np.uint8)
    outputs = dict(masks=Image.fromarray(color), overlays=Image.fromarray(overlay),
                   labels=Image.fromarray(pred))
    if 'uncertainty' in result:
        entropy = result.uncertainty.data[0].float().cpu().numpy()
        scaled = np.clip(entropy / math.log(len(result.seg_logits.data)), 0, 1)
        outputs['uncertainty'] = Image.fromarray(
            (colormaps['magma'](scaled)[..., :3] * 255).round().astype(np.uint8))
        write(osp.join(out, 'uncertainty', name + '.npy'),
              lambda target: np.save(target, entropy.astype(np.float32)))
    for kind, picture in outputs.items():
        write(osp.join(out, kind, name + '.png'), picture.save)


@exit_on_user_error
def main(argv=None):
    args = parse_args(argv)
    if args.batch_size < 1:
        raise ValueError(f'--batch-size must be >= 1, got {args.batch_size}')
    if not 0 <= args.opacity <= 1:
        raise ValueError(f'--opacity must be in [0, 1], got {args.opacity}')
    if not osp.isfile(args.checkpoint):
        raise FileNotFoundError(f'checkpoint {args.checkpoint} does not exist')
    paths, root, skipped = list_images(args.input,
                                       [osp.join(args.out, kind) for kind in OUTPUT_KINDS])
    if skipped:
        print(f'note: not read as input (the output of --out {args.out}): '
              + ', '.join(skipped))
    from mmseg_iccld.engine.prediction_files import output_names
    names, kept = output_names(paths, root)
    if kept:
        shown = ', '.join(f'{name}.png' for name in kept[:4]) + (', ...' if len(kept) > 4 else '')
        print(f'note: {len(kept)} image(s) share their name with an image of another '
              f'extension; their outputs keep it: {shown}')
    if args.batch_size > 1:
        check_images(paths, True, f'--batch-size {args.batch_size} batches them together '
                     '(use --batch-size 1 for images of mixed sizes)')
    else:
        check_images(paths, args.same_size, '--same-size requires one size')
    check_output_folder(args.out, '--out folder')
    from mmseg_iccld.engine.output_record import OutputRecord
    record = OutputRecord(args.out, 'tools/infer.py')
    record.check(output_files(args.out, names))
    import torch
    if args.device == 'cuda' and not torch.cuda.is_available():
        raise ValueError('--device cuda: no CUDA GPU is available')

    cfg = load_config(args.config, args.cfg_options)
    model, palette = build_model(cfg, args.config, args.checkpoint, args.device)
    if args.num_samples is not None:
        set_num_samples(model, args.num_samples)

    from mmseg.apis import inference_model
    from tqdm import tqdm
    written_uncertainty = False
    with tqdm(total=len(paths), unit='img', desc='infer') as progress:
        for start in range(0, len(paths), args.batch_size):
            batch = paths[start:start + args.batch_size]
            batch_names = names[start:start + args.batch_size]
            for path, name, result in zip(batch, batch_names, inference_model(model, batch)):
                save_outputs(path, name, args.out, result, palette, args.opacity, record)
                written_uncertainty |= 'uncertainty' in result
            progress.update(len(batch))
    kinds = 'masks, overlays, labels' + (', uncertainty' if written_uncertainty else '')
    print(f'{len(paths)} image(s): {kinds} written to {args.out}')


if __name__ == '__main__':
    main()
