"""Pieces shared by the command-line tools: config loading, AMP, CPU distribution, errors,
checkpoints."""
import contextlib
import functools
import os
import re
import sys
from typing import Dict, Tuple

# Errors caused by what the user gave (a missing file, a bad dataset, a config naming an
# unknown module, an optional package a config needs, such as tensorboard or wandb for a
# visualization backend). The tools print their message without a traceback; set
# MMSEG_ICCLD_TRACEBACK=1 to see it anyway.
USER_ERRORS = (FileNotFoundError, NotADirectoryError, KeyError, ValueError, ImportError)


def _short_message(error: BaseException) -> str:
    """The useful line of an error, also when it was re-raised from a dataloader worker."""
    message = str(error).strip().strip('"')
    if 'Original Traceback' in message:
        # torch re-raises worker errors with the worker's traceback in the message
        message = message.rstrip().splitlines()[-1]
    return f'{type(error).__name__}: {message}'


def exit_on_user_error(main):
    """Run ``main``; on a user error print its message and exit with status 1."""

    @functools.wraps(main)
    def wrapper(*args, **kwargs):
        try:
            return main(*args, **kwargs)
        except USER_ERRORS as error:
            if os.environ.get('MMSEG_ICCLD_TRACEBACK'):
                raise
            print(f'error: {_short_message(error)}\n'
                  '(set MMSEG_ICCLD_TRACEBACK=1 for the full traceback)', file=sys.stderr)
            sys.exit(1)

    return wrapper


def load_config(path: str, cfg_options=None):
    """Load a config, apply ``--cfg-options`` and make the plugin's modules available.

    Args:
        path: Config file.
        cfg_options: Overrides as parsed by mmengine's ``DictAction`` (a dict), or None.

    Returns:
        mmengine.Config: The merged config.

    Raises:
        ConfigBaseCycleError: When the ``_base_`` files name one another (mmengine would
            recurse until ``RecursionError``).
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f'config file {path} does not exist')
    from mmengine.config import Config

    import mmseg_iccld  # noqa: F401  (registers the plugin, as custom_imports would)
    from mmseg_iccld.engine.config_files import check_base_chain

    check_base_chain(path)
    cfg = Config.fromfile(path)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    return cfg


def load_run_config(args):
    """``tools/train.py``'s and ``tools/test.py``'s config: :func:`load_config` with the
    launcher and work dir of the command line (mmseg's rule: ``--work-dir``, else the config's
    ``work_dir``, else ``./work_dirs/<config name>``).

    Args:
        args: Parsed arguments with ``config``, ``cfg_options``, ``launcher``, ``work_dir``.

    Returns:
        mmengine.Config: The merged config.
    """
    from mmseg_iccld.engine.launcher import check_launcher
    check_launcher(args.launcher)
    cfg = load_config(args.config, args.cfg_options)
    cfg.launcher = args.launcher
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        name = os.path.splitext(os.path.basename(args.config))[0]
        cfg.work_dir = os.path.join('./work_dirs', name)
    return cfg


def apply_amp(cfg, dtype=None) -> None:
    """Turn every optimizer wrapper of ``cfg`` into an ``AmpOptimWrapper``.

    Handles a single wrapper and the per-child wrappers of ``MultiOptimWrapperConstructor``.
    bfloat16 needs no loss scaling, so it gets a constant scale of 1.

    Args:
        cfg: The config, changed in place.
        dtype: 'float16' or 'bfloat16'; None picks bfloat16 where the GPU supports it.
    """
    import torch
    if not torch.cuda.is_available():
        raise ValueError('--amp needs a CUDA GPU (mmengine autocasts with torch.cuda.amp); '
                         'run without --amp on CPU')
    if dtype is None:
        dtype = 'bfloat16' if torch.cuda.is_bf16_supported() else 'float16'

    def to_amp(wrapper_cfg, where):
        kind = wrapper_cfg.get('type', 'OptimWrapper')
        if kind == 'AmpOptimWrapper':
            wrapper_cfg['dtype'] = dtype
        elif kind == 'OptimWrapper':
            wrapper_cfg['type'] = 'AmpOptimWrapper'
            wrapper_cfg['dtype'] = dtype
        else:
            raise ValueError(f'--amp: do not know how to make {where} (type {kind}) use AMP')
        wrapper_cfg['loss_scale'] = 1.0 if dtype == 'bfloat16' else 'dynamic'

    optim_wrapper = cfg.optim_wrapper
    if optim_wrapper.get('constructor') == 'MultiOptimWrapperConstructor':
        for name, child_cfg in optim_wrapper.items():
            if name != 'constructor':
                to_amp(child_cfg, f'optim_wrapper.{name}')
    else:
        to_amp(optim_wrapper, 'optim_wrapper')


def set_cpu_distributed_backend(cfg) -> None:
    """Use gloo for distributed runs when no GPU is present (nccl needs CUDA)."""
    import torch
    if not torch.cuda.is_available():
        cfg.setdefault('env_cfg', {}).setdefault('dist_cfg', {})['backend'] = 'gloo'


# mmengine's message for a config ``type`` that no registry knows (registry/build_functions.py)
_UNREGISTERED = re.compile(r'(\S+) is not in the (\S+) registry')


class UnknownModuleError(ValueError):
    """A config names a module type that is not registered."""


class CheckpointMismatchError(ValueError):
    """A checkpoint cannot be read, or its weights do not fit the model of the config."""


@contextlib.contextmanager
def explain_unknown_modules(config: str):
    """Turn mmengine's registry ``KeyError`` into one line naming the type and the config.

    mmengine raises it deep inside nested builds (a head inside a segmentor inside a UDA
    wrapper), with a message about registries and a link; the user needs the misspelt name.

    Args:
        config: The config file, for the message.

    Raises:
        UnknownModuleError: For an unregistered ``type``; other errors pass unchanged.
    """
    try:
        yield
    except KeyError as error:
        match = _UNREGISTERED.search(str(error))
        if match is None:
            raise
        name, registry = match.group(1).strip('`\'"'), match.group(2).split('::')[-1]
        raise UnknownModuleError(
            f"config {config} names an unknown {registry} type '{name}' (not registered: a "
            f"typo, or a module missing from custom_imports)") from error


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
    mmengine's ``revise_keys`` does, and earlier key names of ICCLD renamed; DDP levels
    further in are matched by :func:`sub_state_dict`).

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
    from mmseg_iccld.models.segmentors.iccld_legacy import rename_legacy_keys
    rename_legacy_keys(state)  # ICCLD's phase buffer under its earlier name
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


class OutputPathError(ValueError):
    """An output folder or file of a tool cannot be written."""


def check_output_folder(path: str, what: str) -> None:
    """Raise unless ``path`` is a folder that can be written to, or created.

    Run before a model is built, so that a typo or a read-only place stops a tool at once
    instead of after the whole inference. Nothing is created here.

    Args:
        path: The output folder (it need not exist yet).
        what: What the folder is, for the message (e.g. ``'--out folder'``).

    Raises:
        OutputPathError: Naming the folder and what is wrong.
    """
    target = os.path.abspath(path)
    existing = target
    while not os.path.lexists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        if existing == target:
            raise OutputPathError(f'{what} {path} exists and is not a folder')
        raise OutputPathError(f'{what} {path} cannot be created: {existing} is not a folder')
    if not os.access(existing, os.W_OK | os.X_OK):
        if existing == target:
            raise OutputPathError(f'{what} {path} is not writable')
        raise OutputPathError(f'{what} {path} cannot be created: {existing} is not writable')


def write_result_file(path: str, write) -> None:
    """Write a result file in full or not at all; an ``OSError`` becomes one line naming it.

    ``write`` writes a hidden file next to ``path`` (same extension, so that writers which
    pick the format by the name still work), which then replaces ``path``: a full disk or a
    killed process leaves no truncated result, and an earlier result stays intact.

    Args:
        path: The result file; its folder is created when missing.
        write: Called with the path to write to, e.g. ``picture.save``.

    Raises:
        OutputPathError: ``cannot write <path>: <reason>``.
    """
    folder, name = os.path.split(os.path.abspath(path))
    stem, ext = os.path.splitext(name)
    partial = os.path.join(folder, f'.{stem}.{os.getpid()}.partial{ext}')
    try:
        os.makedirs(folder, exist_ok=True)
        write(partial)
        os.replace(partial, path)
    except OSError as error:
        with contextlib.suppress(OSError):
            os.remove(partial)
        raise OutputPathError(f'cannot write {path}: {error.strerror or error}') from error


def write_result_text(path: str, text: str) -> None:
    """Write ``text`` to the result file ``path`` (see ``write_result_file``)."""

    def write(target: str) -> None:
        with open(target, 'w') as f:
            f.write(text)

    write_result_file(path, write)


def write_report(prefix: str, report: dict, markdown: str, shown: str = None) -> None:
    """Write a tool's report as ``PREFIX.json`` and ``PREFIX.md`` (each in full or not at all,
    ``write_result_text``), print the markdown and the two paths.

    Args:
        prefix: Output path without extension; its folder is created when missing.
        report: The JSON-serialisable report.
        markdown: Its markdown rendering.
        shown: How to name the prefix in the printed line (default: ``prefix``).
    """
    import json
    write_result_text(prefix + '.json', json.dumps(report, indent=2))
    write_result_text(prefix + '.md', markdown)
    print(markdown)
    shown = prefix if shown is None else shown
    print(f'written: {shown}.json, {shown}.md')
