"""Where the tools write a prediction of each image: its path below the input, one file each.

Naming a prediction by the image's file name alone puts images of different folders into one
file: Cityscapes names its val images by city folder, and two cities may hold the same name,
so the second prediction replaces the first and the folder holds fewer files than were
evaluated. Predictions here keep the image's path below the folder the images were listed
from (``frankfurt/<name>_leftImg8bit.png`` -> ``OUT/frankfurt/<name>_leftImg8bit.png``), as
``tools/infer.py`` does with its input folder, and names that would still be one file are
refused before anything runs, naming both images.

``tools/test.py`` writes them with :class:`PredictionFilesHook` (its ``--out``) rather than
through the metric's ``output_dir``, which names files by the image's base name.
"""
import os.path as osp
from collections import Counter
from typing import Callable, Dict, List, Sequence, Tuple

import numpy as np
from mmengine.hooks import Hook

from .output_record import OutputRecord


def output_names(paths: Sequence[str], root: str) -> Tuple[List[str], List[str]]:
    """The output name of each image: its path below ``root`` without the extension.

    Images of one folder that differ only in their extension keep it (``frame.png`` and
    ``frame.jpg`` are written as ``frame.png.png`` and ``frame.jpg.png``).

    Args:
        paths: Image files.
        root: The folder names are relative to ('' for a single image).

    Returns:
        tuple: one name per image, all different; those of them that keep the extension.

    Raises:
        ValueError: Naming two images whose outputs would still be one file.
    """
    relative = [osp.relpath(p, root) if root else osp.basename(p) for p in paths]
    stems = [osp.splitext(r)[0] for r in relative]
    shared = Counter(stems)
    names = [r if shared[s] > 1 else s for r, s in zip(relative, stems)]
    refuse_shared_names(paths, [name + '.png' for name in names], 'written as')
    return names, [r for r, s in zip(relative, stems) if shared[s] > 1]


def refuse_shared_names(paths: Sequence[str], names: Sequence[str], how: str) -> None:
    """Raise naming two images whose output files would be one.

    Args:
        paths: Image files.
        names: Their output file names, in the same order.
        how: How the files are made, for the message (``'written as'``).

    Raises:
        ValueError: ``images A and B would both be <how> <name>: rename one of them``.
    """
    owners = {}
    for path, name in zip(paths, names):
        if name in owners:
            raise ValueError(f'images {owners[name]} and {path} would both be {how} {name}: '
                             f'rename one of them')
        owners[name] = path


def dataset_images(dataset) -> Tuple[List[str], str]:
    """The image files of a built dataset, and the folder their output names start from.

    That folder is the dataset's image folder (``data_prefix['img_path']``, e.g.
    ``leftImg8bit/val``) when every image lies below it, else the images' common folder.

    Args:
        dataset: An mmengine dataset (``get_data_info`` with ``img_path``).

    Returns:
        tuple: absolute image paths in dataset order; their root folder.

    Raises:
        ValueError: For a dataset that does not list its images.
    """
    if not hasattr(dataset, 'get_data_info'):
        raise ValueError(f'--out needs a dataset that lists its images (get_data_info); '
                         f'{type(dataset).__name__} does not')
    paths = [osp.abspath(dataset.get_data_info(i)['img_path']) for i in range(len(dataset))]
    folder = (getattr(dataset, 'data_prefix', None) or {}).get('img_path')
    root = osp.abspath(folder) if folder else ''
    if not root or any(osp.commonpath([root, p]) != root for p in paths):
        root = osp.commonpath([osp.dirname(p) for p in paths])
    return paths, root


class PredictionFilesHook(Hook):
    """Writes each test prediction as an 8-bit label map ``OUT/<name>.png`` and records it.

    Args:
        names: The output name of each image (``{absolute image path: name}``).
        folder: The output folder.
        record: The record of the files the tool wrote there.
        write_file: ``write_file(path, write)`` writes a file in full or not at all.
    """

    priority = 'LOW'

    def __init__(self, names: Dict[str, str], folder: str, record: OutputRecord,
                 write_file: Callable) -> None:
        self.names, self.folder = names, folder
        self.record, self.write_file = record, write_file

    def after_test_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        from PIL import Image
        for sample in outputs or ():
            name = self.names[osp.abspath(sample.img_path)]
            pred = sample.pred_sem_seg.data[0].cpu().numpy()
            if sample.get('reduce_zero_label', False):
                pred = pred + 1  # mmseg's IoUMetric writes the dataset's own label ids
            path = osp.join(self.folder, name + '.png')
            self.write_file(path, Image.fromarray(pred.astype(np.uint8)).save)
            self.record.add(path)


def add_prediction_files(runner, folder: str, write_file: Callable) -> OutputRecord:
    """Make the runner's test write its predictions below ``folder`` (``--out``).

    Checks, before the model runs, that no two images share an output file and that no file
    would replace one that an earlier run of ``tools/test.py`` did not write there.

    Args:
        runner: The runner, its test dataloader built.
        folder: The output folder.
        write_file: ``write_file(path, write)`` writes a file in full or not at all.

    Returns:
        The record of the files written.

    Raises:
        ValueError: Two images with one output file.
        OverwriteError: An existing file that the tool did not write.
    """
    from mmengine.dist import get_world_size
    paths, root = dataset_images(runner.test_loop.dataloader.dataset)
    names, _ = output_names(paths, root)
    record = OutputRecord(folder, 'tools/test.py')
    # with several processes every rank appends to the record: none may rewrite it
    record.check([osp.join(folder, name + '.png') for name in names],
                 compact=get_world_size() == 1)
    runner.register_hook(PredictionFilesHook(dict(zip(paths, names)), folder, record,
                                             write_file))
    return record
