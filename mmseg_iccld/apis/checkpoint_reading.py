"""Reading checkpoints in the tools: the file (an mmengine checkpoint or a bare state dict),
the weights of one network in it (DDP wrappers matched away), and a clear error when they do
not fit the model of the config."""
import os
from typing import Dict, Tuple


class CheckpointMismatchError(ValueError):
    """A checkpoint cannot be read, or its weights do not fit the model of the config."""


def load_checkpoint_file(path: str) -> object:
    """Load a checkpoint file as it is stored (an mmengine checkpoint or a bare state dict).

    Raises:
        FileNotFoundError: When the file does not exist.
        CheckpointMismatchError: When it cannot be read.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f'checkpoint {path} does not exist')
    from mmengine.runner.checkpoint import _load_checkpoint

    import mmseg_iccld  # noqa: F401  (the torch >= 2.6 loader of mmengine checkpoints)
    try:
        return _load_checkpoint(path, map_location='cpu')
    except Exception as error:  # torch raises several types for files that are no checkpoint
        reason = str(error).strip().splitlines()[0] if str(error).strip() else ''
        raise CheckpointMismatchError(f'checkpoint {path} cannot be read '
                                      f'({type(error).__name__}: {reason})') from error


def read_checkpoint(path: str) -> Tuple[dict, Dict[str, object]]:
    """Load a checkpoint file and its state dict (a leading ``module.`` of DDP removed, as
    mmengine's ``revise_keys`` does; DDP levels further in are matched by
    :func:`sub_state_dict`).

    Args:
        path: Checkpoint file (an mmengine checkpoint or a bare state dict).

    Returns:
        tuple: the checkpoint's ``meta`` dict (empty when absent) and its state dict.

    Raises:
        FileNotFoundError: When the file does not exist.
        CheckpointMismatchError: When it is not a readable checkpoint.
    """
    checkpoint = load_checkpoint_file(path)
    state = checkpoint.get('state_dict', checkpoint) if isinstance(checkpoint, dict) else None
    if not isinstance(state, dict) or not state:
        raise CheckpointMismatchError(f'checkpoint {path} holds no state dict')
    state = {(k[len('module.'):] if k.startswith('module.') else k): v
             for k, v in state.items()}
    meta = checkpoint.get('meta', {}) if isinstance(checkpoint, dict) else {}
    return meta if isinstance(meta, dict) else {}, state


def sub_state_dict(state: Dict[str, object], prefix: str,
                   expected: Dict[str, object]) -> Dict[str, object]:
    """The weights under ``prefix`` of ``state`` for the network whose state dict is
    ``expected``, keyed as in it.

    A checkpoint of a distributed run names its weights after the DDP wrappers it had
    (``module.model.x``, ``model.module.x``, ``teacher.module.module.x``); those levels are
    matched away (``mmseg_iccld.engine.wrapped_keys``), so that every tool loads it as the
    checkpoint of an undistributed run. Entries that match nothing keep their names, for
    :func:`check_state_dict` to report.

    Args:
        state: The checkpoint's state dict (:func:`read_checkpoint`).
        prefix: Where the network lies in an undistributed checkpoint (``'model.'``,
            ``TEACHER_PREFIX``, or ``''`` for the whole model).
        expected: The network's state dict.
    """
    from mmseg_iccld.engine.wrapped_keys import weights_for
    return weights_for(state, expected, prefix)


def check_state_dict(expected: Dict[str, object], state: Dict[str, object], checkpoint: str,
                     model: str, limit: int = 3) -> None:
    """Raise unless ``state`` has exactly the keys and shapes of ``expected``.

    mmengine only warns about missing and unexpected keys, and then evaluates a partly
    random network; a checkpoint of another model must stop the tool instead.

    Args:
        expected: The model's state dict.
        state: The checkpoint's weights for that model.
        checkpoint: The checkpoint file, for the message.
        model: What the weights are for (e.g. the config and the model type), for the message.
        limit: How many offending keys to name per kind.

    Raises:
        CheckpointMismatchError: Naming the checkpoint, the counts and a few keys.
    """
    from mmseg_iccld.engine.state_dicts import state_dict_differences
    problems = state_dict_differences(expected, state, limit)
    if problems:
        raise CheckpointMismatchError(f'checkpoint {checkpoint} does not fit {model}: '
                                      + '; '.join(problems))


# a UDA checkpoint holds the student under 'model.', its EMA teacher (mmengine's averaged
# model: the network under 'module.', and its 'steps') under 'teacher.'
TEACHER_PREFIX = 'teacher.module.'


def student_prefix(model) -> str:
    """The state-dict prefix of a UDA wrapper's student (``'model.'``), or '' for a segmentor.

    Args:
        model: The model the config builds, unwrapped from DDP.
    """
    return 'model.' if hasattr(model, 'student') and hasattr(model, 'teacher') else ''


def evaluated_network(model):
    """The network that runs the test: a UDA wrapper's student, or the model.

    Args:
        model: The runner's model (possibly in a DDP or TTA wrapper).

    Returns:
        tuple: the state-dict prefix of the student's weights in checkpoints ('' for a
        segmentor), and the network.
    """
    from mmengine.model import BaseTTAModel, is_model_wrapper

    # mmengine loads checkpoints through DDP and TTA wrappers into the model inside
    while is_model_wrapper(model) or isinstance(model, BaseTTAModel):
        model = model.module
    prefix = student_prefix(model)
    return prefix, (model.student if prefix else model)


def tested_weights(runner, checkpoint: str, config: str, weights: str = 'student') -> dict:
    """The checkpoint's weights (``'student'`` or a UDA run's ``'teacher'``) for the evaluated
    network, checked to fit it exactly; ``config`` names the model in messages.

    Raises:
        ValueError: For ``'teacher'`` with a model that is no UDA wrapper.
        CheckpointMismatchError: Naming the checkpoint and a few offending keys.
    """
    _, state = read_checkpoint(checkpoint)
    prefix, network = evaluated_network(runner.model)
    if weights == 'teacher':
        if not prefix:
            raise ValueError(f'--weights teacher needs a UDA config (a student and its EMA '
                             f'teacher); the model of {config}, {type(network).__name__}, '
                             'has no teacher')
        prefix = TEACHER_PREFIX
    what = f'the {type(network).__name__} of {config}' + (
        f" (the UDA {weights}, '{prefix}*' in checkpoints)" if prefix else '')
    tested = sub_state_dict(state, prefix, network.state_dict())
    check_state_dict(network.state_dict(), tested, checkpoint, what)
    return tested
