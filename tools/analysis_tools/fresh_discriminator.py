"""Give an ICCLD switch checkpoint the freshly initialised discriminator of another config.

``uda_results.py --share-phase1`` resumes a phase-2 variant from the switch checkpoint of a
finished run of the same seed. A variant whose f_dis has another shape (``adv_input='latent'``
reads z0, C_z channels, where the default reads the C_m-channel mask estimate) cannot resume
from it: the checkpoint's discriminator does not fit. In phase 1 the discriminator has never
been trained (its optimizer holds no state), so its weights are only an initialisation; this
tool writes a copy of the checkpoint in which they are the variant's own initialisation (the
config's UDA model with its overrides, built and initialised under ``--seed``). Everything
else (E, D, eps_theta, the teacher, optimizer and scheduler states, random generators) is the
checkpoint's.

    python tools/analysis_tools/fresh_discriminator.py configs/synthetic/iccld_hr_tiny.py \\
        work_dirs/results/iccld_hr_seed3/iter_1000.pth \\
        work_dirs/results_advlatent/iccld_hr_seed3/iter_1000.pth --seed 3 \\
        --cfg-options model.adv_input=latent model.discriminator.in_channels=32

then ``uda_results.py --share-phase1 --work-root work_dirs/results_advlatent ...`` with the
same overrides.
"""
import argparse
import os
import os.path as osp
import sys

sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '..', '..')))

from mmseg_iccld.engine.cfg_options import CfgOptionsAction  # noqa: E402

from tools._common import (CheckpointMismatchError, check_output_folder,  # noqa: E402
                           exit_on_user_error, load_checkpoint_file, load_config)

PREFIX = 'discriminator.'


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config', help='config of the variant (its discriminator is used)')
    parser.add_argument('checkpoint', help='switch checkpoint of a finished run (phase 1)')
    parser.add_argument('out', help='where the new checkpoint is written')
    parser.add_argument('--seed', type=int, default=0,
                        help='seed under which the discriminator is initialised')
    parser.add_argument('--cfg-options', nargs='+', action=CfgOptionsAction, default=None,
                        help='overrides of the config, as for tools/train.py')
    return parser.parse_args(argv)


def check_untrained_discriminator(checkpoint: dict, path: str) -> None:
    """Refuse a checkpoint whose discriminator may have been trained.

    Args:
        checkpoint: The loaded mmengine checkpoint.
        path: Its file, for the message.

    Raises:
        CheckpointMismatchError: When it is not in phase 1, or its discriminator's optimizer
            holds state (it has stepped).
    """
    state = checkpoint['state_dict']
    phase = state.get('model.phase')
    if phase is None or int(phase) != 1:
        raise CheckpointMismatchError(
            f'checkpoint {path} is not an ICCLD checkpoint in phase 1 (model.phase: '
            f'{None if phase is None else int(phase)}); its discriminator may be trained')
    optimizer = checkpoint.get('optimizer', {})
    if isinstance(optimizer, dict) and optimizer.get('discriminator', {}).get('state'):
        raise CheckpointMismatchError(f'checkpoint {path}: the discriminator\'s optimizer '
                                      'has state, so the discriminator has been trained')


def fresh_discriminator(cfg, seed: int):
    """The discriminator's state dict of ``cfg``'s UDA model, built and initialised as a
    whole under ``seed`` (as a fresh run builds it)."""
    from mmengine.runner import set_random_seed
    from mmseg.registry import MODELS
    from mmseg.utils import register_all_modules
    register_all_modules()
    set_random_seed(seed)
    model = MODELS.build(cfg.model)
    model.init_weights()
    return model.discriminator.state_dict()


@exit_on_user_error
def main(argv=None) -> None:
    args = parse_args(argv)
    cfg = load_config(args.config, args.cfg_options)
    if 'discriminator' not in cfg.model:
        raise ValueError(f'config {args.config} has no model.discriminator')
    check_output_folder(osp.dirname(osp.abspath(args.out)), 'output checkpoint folder')
    checkpoint = load_checkpoint_file(args.checkpoint)
    if not isinstance(checkpoint, dict) or 'state_dict' not in checkpoint:
        raise CheckpointMismatchError(f'checkpoint {args.checkpoint} holds no state dict')
    check_untrained_discriminator(checkpoint, args.checkpoint)
    state = checkpoint['state_dict']
    fresh = fresh_discriminator(cfg, args.seed)
    old = sorted(k for k in state if k.startswith(PREFIX))
    if len(old) != len(fresh):
        raise CheckpointMismatchError(
            f'checkpoint {args.checkpoint} has {len(old)} discriminator tensors, the config\'s '
            f'discriminator {len(fresh)}; only the shapes may differ')
    for key in old:
        if key[len(PREFIX):] not in fresh:
            raise CheckpointMismatchError(f'checkpoint {args.checkpoint}: {key} is not in the '
                                          'config\'s discriminator')
        state[key] = fresh[key[len(PREFIX):]].clone()
    import torch
    os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
    torch.save(checkpoint, args.out)
    print(f'{args.out}: {args.checkpoint} with the discriminator of {args.config} '
          f'(seed {args.seed}, {len(old)} tensors)')


if __name__ == '__main__':
    main()
