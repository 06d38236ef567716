"""Loading a config as the command-line tools do: the plugin registered, ``_base_`` loops
refused, ``--cfg-options`` merged, the launcher and work dir of the command line, AMP, the
CPU distributed backend and unknown module types named in one line."""
import contextlib
import os
import re


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
