"""Train a segmentor (plain mmseg or UDA: DACS/DAFormer, ICCLD, ...) with mmengine's Runner.

    python tools/train.py CONFIG [--work-dir DIR] [--amp] [--resume [CKPT]]
                                 [--cfg-options key=value ...] [--launcher pytorch]

Differences from mmseg's own tools/train.py:
- ``--amp`` works for UDA configs too, including those with several optimizers (mmseg's
  asserts a single ``OptimWrapper``); the dtype is bfloat16 where the GPU supports it.
- Without a GPU, distributed runs use the gloo backend (CPU).
- Pretrained files named by the config are checked before anything is built.
- A config naming an unregistered module type gets one line naming the type and the config.
"""
import argparse
import os
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from mmengine.config import DictAction  # noqa: E402

from tools._common import (apply_amp, exit_on_user_error,  # noqa: E402
                           explain_unknown_modules, load_config, set_cpu_distributed_backend)


def parse_args():
    parser = argparse.ArgumentParser(description='Train a segmentor')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument(
        '--resume', nargs='?', const='auto', default=None,
        help='resume from CKPT, or from the latest checkpoint in the work dir when no '
        'path is given')
    parser.add_argument('--amp', action='store_true', help='automatic mixed precision')
    parser.add_argument(
        '--amp-dtype', default=None, choices=['float16', 'bfloat16'],
        help='AMP dtype (default: bfloat16 where supported, else float16)')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction, metavar='KEY=VALUE',
        help='override settings of the config, e.g. train_cfg.max_iters=100')
    parser.add_argument(
        '--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


@exit_on_user_error
def main():
    args = parse_args()
    cfg = load_config(args.config, args.cfg_options)
    cfg.launcher = args.launcher

    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(args.config))[0])

    if args.amp:
        apply_amp(cfg, args.amp_dtype)
    if args.resume == 'auto':
        cfg.resume = True
        cfg.load_from = None
    elif args.resume is not None:
        cfg.resume = True
        cfg.load_from = args.resume
    set_cpu_distributed_backend(cfg)

    from mmseg_iccld.models.pretrained import check_pretrained_files
    check_pretrained_files(cfg)

    from mmengine.registry import RUNNERS
    from mmengine.runner import Runner
    with explain_unknown_modules(args.config):
        runner = RUNNERS.build(cfg) if 'runner_type' in cfg else Runner.from_cfg(cfg)
        runner.train()


if __name__ == '__main__':
    main()
