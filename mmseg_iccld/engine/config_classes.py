"""The number of classes the model predicts against the number its datasets label.

A decode head of 10 classes trained on 19-class labels fails at the first iteration with
``IndexError: Target 10 is out of bounds`` from inside the loss, after the model, the
datasets and the workers were built; one with more classes than the data trains and evaluates
classes that never occur. :func:`class_count_problems` compares, before anything is built,

- every ``num_classes`` of the model config (decode and auxiliary heads, the heads inside
  HRDA's and ICCLD's, lists of heads, ICCLD's diffusion), and
- the classes of every dataset of the train, val and test dataloaders (each of a UDA
  dataset's ``source`` and ``target``, each of a dataset wrapper's ``dataset`` or
  ``datasets``): ``metainfo=dict(classes=...)`` of the config, else the dataset class's
  ``METAINFO``.
"""
import inspect
from typing import Callable, List, Optional, Tuple

_LOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')
# keys under which a dataset config holds the datasets it is made of
_INNER_DATASETS = ('source', 'target', 'dataset', 'datasets')


def model_class_counts(cfg, where: str = 'model') -> List[Tuple[str, int]]:
    """Every ``(dotted key, value)`` of a ``num_classes`` in the model config ``cfg``."""
    found = []
    items = cfg.items() if isinstance(cfg, dict) else \
        enumerate(cfg) if isinstance(cfg, (list, tuple)) else ()
    for key, value in items:
        if key == 'num_classes' and isinstance(value, int) and not isinstance(value, bool):
            found.append((f'{where}.{key}', value))
        else:
            found += model_class_counts(value, f'{where}.{key}')
    return found


def _declared_classes(cfg, resolve: Callable) -> Optional[Tuple[int, str]]:
    """``(number of classes, where they come from)`` of one dataset config, or None."""
    metainfo = cfg.get('metainfo')
    classes = metainfo.get('classes') if isinstance(metainfo, dict) else None
    if isinstance(classes, (list, tuple)):
        return len(classes), 'metainfo.classes'
    dataset_class = resolve('DATASETS', cfg.get('type'))
    metainfo = getattr(dataset_class, 'METAINFO', None) if inspect.isclass(dataset_class) \
        else None
    classes = metainfo.get('classes') if isinstance(metainfo, dict) else None
    if isinstance(classes, (list, tuple)):
        return len(classes), dataset_class.__name__
    return None


def dataset_class_counts(cfg, where: str, resolve: Callable) -> List[Tuple[str, int, str]]:
    """``(dotted key, number of classes, source)`` of every dataset inside ``cfg``.

    A dataset made of others (``UDADataset``, ``ConcatDataset``, ...) counts by its parts.
    """
    if isinstance(cfg, (list, tuple)):
        return [found for i, item in enumerate(cfg)
                for found in dataset_class_counts(item, f'{where}.{i}', resolve)]
    if not isinstance(cfg, dict):
        return []
    inner = [key for key in _INNER_DATASETS if isinstance(cfg.get(key), (dict, list, tuple))]
    if inner:
        return [found for key in inner
                for found in dataset_class_counts(cfg[key], f'{where}.{key}', resolve)]
    declared = _declared_classes(cfg, resolve)
    return [] if declared is None else [(where, *declared)]


def class_count_problems(cfg, resolve: Callable) -> List[str]:
    """Where the model's ``num_classes`` and the datasets' classes disagree.

    The first dataset found (the training source) is the reference; without datasets of
    known classes, the model's first ``num_classes``.

    Args:
        cfg: The merged config.
        resolve: ``resolve(registry_name, type)``: the class a config ``type`` stands for,
            or None.

    Returns:
        Phrases such as ``'model.model.decode_head.num_classes is 10 but
        train_dataloader.dataset.source has 19 classes (GTA5Dataset)'``.
    """
    loaders = [(name, cfg.get(name)) for name in _LOADERS]
    datasets = [found for name, loader in loaders if isinstance(loader, dict)
                for found in dataset_class_counts(loader.get('dataset'), f'{name}.dataset',
                                                  resolve)]
    model = model_class_counts(cfg.get('model'))
    if datasets:
        reference, count, source = datasets[0]
        reference = f'{reference} has {count} classes ({source})'
    elif model:
        reference, count = model[0]
        reference = f'{reference} is {count}'
        model = model[1:]
    else:
        return []
    problems = [f'{key} is {value} but {reference}' for key, value in model if value != count]
    problems += [f'{key} has {value} classes ({source}) but {reference}'
                 for key, value, source in datasets[1:] if value != count]
    return problems
