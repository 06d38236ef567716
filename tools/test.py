"""Evaluate a checkpoint on the config's test set.

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--show-dir DIR] [--out DIR]
                                           [--table-out PREFIX]
                                           [--cfg-options key=value ...] [--launcher pytorch]

UDA checkpoints (DACS, ICCLD) are evaluated with the student, as during training.

Writes ``metrics.json`` and the per-class IoU table of UDA papers (mIoU, Road, S.Walk, ...,
Bike; mIoU16 and mIoU13 for Synthia) as ``per_class.csv`` and ``per_class.md`` into the work
dir, or ``PREFIX.csv`` / ``PREFIX.md``. The config's ``IoUMetric`` / ``SynthiaIoUMetric`` is
swapped for its per-class variant, so configs need no change.

A checkpoint whose weights do not fit the evaluated network (missing or unexpected keys,
other shapes) is an error, where mmengine would only warn and evaluate a partly random model.
"""
import argparse
import json
import math
import os
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from mmengine.config import DictAction  # noqa: E402

from tools._common import (check_state_dict, exit_on_user_error,  # noqa: E402
                           explain_unknown_modules, load_config, read_checkpoint,
                           set_cpu_distributed_backend, student_prefix, sub_state_dict)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Evaluate a segmentor checkpoint')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--work-dir', help='directory for the evaluation log and metrics')
    parser.add_argument('--out', help='directory to save the predicted label maps')
    parser.add_argument('--show-dir', help='directory to save pictures of the predictions')
    parser.add_argument(
        '--table-out', metavar='PREFIX',
        help='write the per-class table to PREFIX.csv and PREFIX.md (default: '
        '<work dir>/per_class)')
    parser.add_argument('--show', action='store_true', help='show predictions in a window')
    parser.add_argument(
        '--show-interval', type=int, default=1,
        help='draw every N-th test image for --show/--show-dir (default: every image)')
    parser.add_argument('--wait-time', type=float, default=2, help='seconds per shown image')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction, metavar='KEY=VALUE',
        help='override settings of the config')
    parser.add_argument(
        '--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none')
    parser.add_argument('--tta', action='store_true', help='test-time augmentation')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def register_test_visualization_hook() -> str:
    """Register mmseg's ``SegVisualizationHook`` drawing test images without ``runner.iter``.

    mmseg 1.2.2's hook passes ``step=runner.iter``, which builds the training loop, and so the
    training dataset: ``--show-dir`` then fails wherever the source data is absent (and is
    slow where it is present).

    Returns:
        The registered name (a name, not the class: the runner dumps the config as text).
    """
    import mmcv
    import mmengine.fileio as fileio
    from mmseg.engine.hooks import SegVisualizationHook
    from mmseg.registry import HOOKS

    class TestVisualizationHook(SegVisualizationHook):

        def _after_iter(self, runner, batch_idx, data_batch, outputs, mode='val'):
            if mode != 'test':
                return super()._after_iter(runner, batch_idx, data_batch, outputs, mode)
            if not self.draw or not self.every_n_inner_iters(batch_idx, self.interval):
                return
            for output in outputs:
                data = fileio.get(output.img_path, backend_args=self.backend_args)
                img = mmcv.imfrombytes(data, channel_order='rgb')
                self._visualizer.add_datasample(
                    f'test_{osp.basename(output.img_path)}', img, data_sample=output,
                    show=self.show, wait_time=self.wait_time, step=batch_idx)

    HOOKS.register_module(name='TestSegVisualizationHook', module=TestVisualizationHook,
                          force=True)
    return 'TestSegVisualizationHook'


def enable_visualization(cfg, args) -> None:
    """Switch on mmseg's SegVisualizationHook for --show / --show-dir.

    Pictures go to ``SHOW_DIR/vis_data/vis_image/test_<image name>_<index>.png``.
    """
    hooks = cfg.default_hooks
    if 'visualization' not in hooks:
        raise ValueError('--show/--show-dir need default_hooks.visualization '
                         "(dict(type='SegVisualizationHook')) in the config")
    if hooks.visualization.get('type') in ('SegVisualizationHook',
                                           'mmseg.SegVisualizationHook'):
        hooks.visualization['type'] = register_test_visualization_hook()
    hooks.visualization.draw = True
    # mmseg's hook draws every 50th image by default: none at all on a small test set
    hooks.visualization.interval = args.show_interval
    if args.show:
        hooks.visualization.show = True
        hooks.visualization.wait_time = args.wait_time
    if args.show_dir:
        visualizer = cfg.visualizer
        visualizer['save_dir'] = args.show_dir


def evaluated_network(model):
    """The network whose weights decide the test: a UDA wrapper's student, or the model.

    Args:
        model: The runner's model (possibly in a DDP or TTA wrapper).

    Returns:
        tuple: the state-dict prefix under which the runner loads it, and the network.
    """
    from mmengine.model import BaseTTAModel, is_model_wrapper

    # mmengine loads checkpoints through DDP and TTA wrappers into the model inside
    while is_model_wrapper(model) or isinstance(model, BaseTTAModel):
        model = model.module
    prefix = student_prefix(model)
    return prefix, (model.student if prefix else model)


def check_checkpoint(runner, checkpoint: str, config: str) -> None:
    """Raise unless the checkpoint holds exactly the weights of the evaluated network.

    Args:
        runner: The runner, its model built.
        checkpoint: The checkpoint file.
        config: The config file, for the message.

    Raises:
        CheckpointMismatchError: Naming the checkpoint and a few offending keys.
    """
    _, state = read_checkpoint(checkpoint)
    prefix, network = evaluated_network(runner.model)
    what = f'the {type(network).__name__} of {config}' + (
        f" (the UDA student, '{prefix}*' in checkpoints)" if prefix else '')
    check_state_dict(network.state_dict(), sub_state_dict(state, prefix), checkpoint, what)


def write_tables(metrics: dict, config: str, prefix: str) -> None:
    """Print the per-class table and write it as CSV and markdown.

    Args:
        metrics: The per-class metric's output (``IoU.<class>`` entries in class order).
        config: The config file; its folder and name label the table's row.
        prefix: Output path without extension.
    """
    from mmseg_iccld.evaluation.per_class_metric import (PER_CLASS_PREFIX, per_class_table,
                                                         table_to_csv, table_to_markdown)
    class_names = [k[len(PER_CLASS_PREFIX):] for k in metrics if k.startswith(PER_CLASS_PREFIX)]
    header, values = per_class_table(metrics, class_names)
    method = osp.join(osp.basename(osp.dirname(osp.abspath(config))),
                      osp.splitext(osp.basename(config))[0])
    markdown = table_to_markdown(method, header, values)
    os.makedirs(osp.dirname(osp.abspath(prefix)), exist_ok=True)
    with open(prefix + '.csv', 'w') as f:
        f.write(table_to_csv(method, header, values))
    with open(prefix + '.md', 'w') as f:
        f.write(markdown)
    print(markdown + f'per-class table written to {prefix}.csv and {prefix}.md')


def _finite_or_none(value: float):
    return None if math.isnan(value) else value


@exit_on_user_error
def main(argv=None):
    args = parse_args(argv)
    cfg = load_config(args.config, args.cfg_options)
    cfg.launcher = args.launcher

    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(args.config))[0])
    if not osp.isfile(args.checkpoint):
        raise FileNotFoundError(f'checkpoint {args.checkpoint} does not exist')
    cfg.load_from = args.checkpoint
    cfg.resume = False

    if args.show or args.show_dir:
        enable_visualization(cfg, args)
    if args.tta:
        cfg.test_dataloader.dataset.pipeline = cfg.tta_pipeline
        cfg.tta_model.module = cfg.model
        cfg.model = cfg.tta_model
    if args.out is not None:
        cfg.test_evaluator['output_dir'] = args.out
        cfg.test_evaluator['keep_results'] = True
    set_cpu_distributed_backend(cfg)
    from mmseg_iccld.evaluation.per_class_metric import (PER_CLASS_PREFIX,
                                                         use_per_class_metrics)
    with_table = use_per_class_metrics(cfg.test_evaluator)

    from mmengine.registry import RUNNERS
    from mmengine.runner import Runner
    with explain_unknown_modules(args.config):
        runner = RUNNERS.build(cfg) if 'runner_type' in cfg else Runner.from_cfg(cfg)
        check_checkpoint(runner, args.checkpoint, args.config)
        metrics = runner.test()
    if runner.rank != 0:
        return
    per_class = {k[len(PER_CLASS_PREFIX):]: _finite_or_none(float(v))
                 for k, v in metrics.items() if k.startswith(PER_CLASS_PREFIX)}
    summary = {k: float(v) for k, v in metrics.items() if not k.startswith(PER_CLASS_PREFIX)}
    path = osp.join(cfg.work_dir, 'metrics.json')
    with open(path, 'w') as f:
        json.dump(dict(config=args.config, checkpoint=args.checkpoint, metrics=summary,
                       per_class_iou=per_class), f, indent=2)
    print(f'metrics written to {path}')
    if with_table and per_class:
        write_tables(metrics, args.config,
                     args.table_out or osp.join(cfg.work_dir, 'per_class'))
    else:
        print('no per-class table: the test evaluator is neither IoUMetric nor '
              'SynthiaIoUMetric')


if __name__ == '__main__':
    main()
