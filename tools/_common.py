"""Pieces shared by the command-line tools: config loading, AMP, CPU distribution, errors."""
import functools
import os
import sys

# Errors caused by what the user gave (a missing file, a bad dataset, a config naming an
# unknown module). The tools print their message without a traceback; set
# MMSEG_ICCLD_TRACEBACK=1 to see it anyway.
USER_ERRORS = (FileNotFoundError, NotADirectoryError, KeyError, ValueError)


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
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f'config file {path} does not exist')
    from mmengine.config import Config

    import mmseg_iccld  # noqa: F401  (registers the plugin, as custom_imports would)

    cfg = Config.fromfile(path)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
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
