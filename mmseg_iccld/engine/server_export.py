"""Predictions of an unlabelled test split in the format its evaluation server accepts
(``tools/test.py --server-out DIR``).

The anchors submit ACDC's and Dark Zurich's test predictions as Cityscapes *train ids*, one
8-bit PNG per image named after the image (``<image name>.png``, MIC's
``--format-only --eval-option imgfile_prefix=labelTrainIds to_label_id=False``); the
Cityscapes server takes *label ids*, named after the image likewise. The folder also gets
``server_export.json`` (config, checkpoint, format, count); a folder that holds predictions
of another run (another config or checkpoint, or PNG files this export did not write) is
refused before the model runs.
"""
import copy
import json
import os
import os.path as osp
from typing import Callable, Dict, List, Tuple

import numpy as np
from cityscapesscripts.helpers.labels import trainId2label
from mmengine.hooks import Hook

from .output_record import OverwriteError
from .prediction_files import refuse_shared_names

RECORD = 'server_export.json'
# dataset type -> (the test split's arguments, the ids the server reads)
SERVERS: Dict[str, Tuple[dict, str]] = {
    'ACDCDataset': (dict(split='test', with_labels=False), 'train ids'),
    'DarkZurichInPlaceDataset': (dict(split='test', with_labels=False), 'train ids'),
    'CityscapesDataset': (dict(data_prefix=dict(img_path='leftImg8bit/test',
                                                seg_map_path='gtFine/test')), 'label ids'),
}
# train id -> Cityscapes label id (255 stays 255)
LABEL_IDS = np.full(256, 255, np.uint8)
for _train_id, _label in trainId2label.items():
    if 0 <= _train_id < 255:
        LABEL_IDS[_train_id] = _label.id


def server_test_split(dataset_cfg: dict) -> Tuple[dict, str]:
    """The test split of a dataset config, without labels, and the ids its server reads.

    Args:
        dataset_cfg: The config's test dataset (``test_dataloader.dataset``).

    Returns:
        The dataset config of the test split (its pipeline without annotation loaders) and
        ``'train ids'`` or ``'label ids'``.

    Raises:
        ValueError: For a dataset without a known evaluation server.
    """
    kind = dataset_cfg.get('type')
    if kind not in SERVERS:
        raise ValueError(f'--server-out: no evaluation server format is known for {kind} '
                         f'(known: {", ".join(SERVERS)})')
    split, ids = SERVERS[kind]
    cfg = copy.deepcopy(dict(dataset_cfg))
    cfg.update(copy.deepcopy(split))
    cfg['pipeline'] = [t for t in cfg.get('pipeline', [])
                       if 'Annotations' not in str(t.get('type', ''))]
    return cfg, ids


def check_export_folder(folder: str, config: str, checkpoint: str) -> None:
    """Refuse a folder holding predictions of another run.

    Args:
        folder: The ``--server-out`` folder (it need not exist).
        config: The config file of this run.
        checkpoint: The checkpoint of this run.

    Raises:
        OverwriteError: When the folder's record names another config or checkpoint, or the
            folder holds PNG files without a record.
    """
    if not osp.isdir(folder):
        return
    record = osp.join(folder, RECORD)
    pngs = [n for n in os.listdir(folder) if n.endswith('.png')]
    if osp.isfile(record):
        with open(record) as f:
            earlier = json.load(f)
        this = dict(config=osp.abspath(config), checkpoint=osp.abspath(checkpoint))
        if {k: earlier.get(k) for k in this} != this:
            raise OverwriteError(
                f'--server-out folder {folder} holds the predictions of another run (config '
                f'{earlier.get("config")}, checkpoint {earlier.get("checkpoint")}): choose '
                f'another folder')
    elif pngs:
        raise OverwriteError(f'--server-out folder {folder} holds {len(pngs)} PNG file(s) this '
                             f'export did not write, e.g. {osp.join(folder, pngs[0])}: choose '
                             f'another folder')


def server_names(paths: List[str]) -> List[str]:
    """``<image name>.png`` for each image (``x_rgb_anon.png`` -> ``x_rgb_anon.png``,
    ``x_leftImg8bit.png`` -> ``x_leftImg8bit.png``), refusing two images of one name."""
    names = [osp.splitext(osp.basename(p))[0] + '.png' for p in paths]
    refuse_shared_names(paths, names, 'submitted as')
    return names


class ServerPredictionsHook(Hook):
    """Writes each test prediction into the export folder in the server's ids.

    Args:
        folder: The export folder.
        names: ``{absolute image path: file name}``.
        ids: ``'train ids'`` or ``'label ids'``.
        write_file: ``write_file(path, write)`` writes a file in full or not at all.
    """

    priority = 'LOW'

    def __init__(self, folder: str, names: Dict[str, str], ids: str,
                 write_file: Callable) -> None:
        self.folder, self.names, self.ids, self.write_file = folder, names, ids, write_file
        self.written = 0

    def after_test_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        from PIL import Image
        for sample in outputs or ():
            pred = sample.pred_sem_seg.data[0].cpu().numpy().astype(np.uint8)
            if self.ids == 'label ids':
                pred = LABEL_IDS[pred]
            path = osp.join(self.folder, self.names[osp.abspath(sample.img_path)])
            self.write_file(path, Image.fromarray(pred).save)
            self.written += 1


def add_server_export(runner, folder: str, ids: str, write_file: Callable,
                      config: str, checkpoint: str) -> ServerPredictionsHook:
    """Make the runner's test write the server's files into ``folder``, and record the run.

    Args:
        runner: The runner, its test dataloader built on the test split.
        folder: The export folder.
        ids: ``'train ids'`` or ``'label ids'``.
        write_file: ``write_file(path, write)`` writes a file in full or not at all.
        config: The config file, for the record.
        checkpoint: The checkpoint, for the record.

    Returns:
        The hook (its ``written`` counts the files).
    """
    dataset = runner.test_loop.dataloader.dataset
    paths = [osp.abspath(dataset.get_data_info(i)['img_path']) for i in range(len(dataset))]
    names = server_names(paths)
    os.makedirs(folder, exist_ok=True)
    write_file(osp.join(folder, RECORD), lambda target: _write_json(target, dict(
        config=osp.abspath(config), checkpoint=osp.abspath(checkpoint), ids=ids,
        images=len(paths))))
    hook = ServerPredictionsHook(folder, dict(zip(paths, names)), ids, write_file)
    runner.register_hook(hook)
    return hook


def _write_json(path: str, content: dict) -> None:
    with open(path, 'w') as f:
        json.dump(content, f, indent=2)
