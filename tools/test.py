"""Evaluate a checkpoint on the config's test set.

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--show-dir DIR] [--out DIR]
                                           [--table-out PREFIX] [--uncertainty-samples S]
                                           [--weights {student,teacher}]
                                           [--cfg-options key=value ...] [--launcher pytorch]

UDA checkpoints (DACS, ICCLD) are evaluated with the student, as during training and as
DAFormer, HRDA and MIC report them. ``--weights teacher`` tests the EMA teacher the checkpoint
also holds instead (``teacher.module.*``, loaded into the student's network; the teacher is a
copy of the student, so the network is the same and only the weights differ).

A config with ``test_sets`` (name -> dataset config; the domain-generalisation configs:
Cityscapes, BDD100K, Mapillary) is evaluated on each of them in turn, in this one call: each
gets what a single test set gets, in ``<work dir>/<name>/`` (``--out``, ``--show-dir`` and
``--table-out`` gain a ``/<name>`` folder or an ``_<name>`` suffix), and ``<work
dir>/metrics.json`` and ``test_sets.md`` sum them up (mIoU per set and their mean).

Writes ``metrics.json`` and the per-class IoU table of UDA papers (mIoU, Road, S.Walk, ...,
Bike; mIoU16 and mIoU13 for Synthia) as ``per_class.csv`` and ``per_class.md`` into the work
dir, or ``PREFIX.csv`` / ``PREFIX.md``. The config's ``IoUMetric`` / ``SynthiaIoUMetric`` is
swapped for its per-class variant, so configs need no change.

ICCLD predicting with S > 1 noise draws (``--uncertainty-samples S``, or
``--cfg-options model.model.test_cfg.num_samples=S``) also gets its uncertainty judged: the
error-detection AUROC of the entropy of the mean softmax (how well it ranks misclassified
pixels above correct ones) and the ECE of the mean softmax's confidence (15 bins), over all
valid pixels (``mmseg_iccld/evaluation/uncertainty_metric.py``). For comparison the test set
is predicted once more with a single draw (S = 1, the same checkpoint and K), whose softmax
entropy is its uncertainty. ``metrics.json`` gets a section

    "uncertainty": {"samples": S, "num_inference_steps": K, "pixels": n,
                    "auroc": ..., "ece": ..., "single_pass": {"auroc": ..., "ece": ...}}

(fractions in [0, 1], null where undefined); mIoU and the table stay those of the S draws.
``--uncertainty-samples`` is an error for models without ``test_cfg.num_samples`` and with
``--tta``.

``--out DIR`` writes each prediction (train ids) as ``DIR/<image path below the image folder>``
(``DIR/frankfurt/<name>_leftImg8bit.png``), never over a file an earlier run did not write.
Checkpoints of distributed runs (DDP's ``module.`` levels in their keys) load as any other.

A checkpoint whose weights do not fit the evaluated network (missing or unexpected keys,
other shapes) is an error, where mmengine would only warn and evaluate a partly random model.
So are, before the model runs, an output folder that cannot be written, an empty test split,
and a label of the test split without its image; ``metrics.json`` records the number of
images evaluated (``"images"``).
"""
import argparse
import json
import os
import os.path as osp
from typing import Optional

from mmseg_iccld.apis.checkpoint_reading import evaluated_network, tested_weights
from mmseg_iccld.apis.cli_errors import exit_on_user_error
from mmseg_iccld.apis.config_loading import (explain_unknown_modules, load_run_config,
                                             set_cpu_distributed_backend)
from mmseg_iccld.apis.result_files import check_output_folder, write_result_file, write_result_text
from mmseg_iccld.apis.split_check import check_test_split, count_images
from mmseg_iccld.apis.uncertainty_test import (finite_or_none, add_uncertainty_metric,
                                               single_pass_uncertainty, uncertainty_section,
                                               uncertainty_samples)
from mmseg_iccld.engine.cfg_options import CfgOptionsAction


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Evaluate a segmentor checkpoint')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--work-dir', help='directory for the evaluation log and metrics')
    parser.add_argument('--out', help='directory to save the predicted label maps')
    parser.add_argument('--show-dir', help='directory to save pictures of the predictions')
    parser.add_argument(
        '--server-out', metavar='DIR',
        help="predict the dataset's unlabelled test split (ACDC, Dark Zurich, Cityscapes) and "
        "write the files its evaluation server takes into DIR; nothing is scored")
    parser.add_argument(
        '--table-out', metavar='PREFIX',
        help='write the per-class table to PREFIX.csv and PREFIX.md (default: '
        '<work dir>/per_class)')
    parser.add_argument(
        '--uncertainty-samples', type=int, metavar='S',
        help='ICCLD: predict with S >= 2 noise draws and report the AUROC and ECE of the '
        'uncertainty, next to those of a single draw')
    parser.add_argument(
        '--weights', choices=('student', 'teacher'), default='student',
        help="UDA checkpoints: test the student's weights (default) or the EMA teacher's")
    parser.add_argument('--show', action='store_true', help='show predictions in a window')
    parser.add_argument(
        '--show-interval', type=int, default=1,
        help='draw every N-th test image for --show/--show-dir (default: every image)')
    parser.add_argument('--wait-time', type=float, default=2, help='seconds per shown image')
    parser.add_argument(
        '--cfg-options', nargs='+', action=CfgOptionsAction, metavar='KEY=VALUE',
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
    from mmseg_iccld.apis.test_sets import config_label
    method = config_label(config)
    markdown = table_to_markdown(method, header, values)
    write_result_text(prefix + '.csv', table_to_csv(method, header, values))
    write_result_text(prefix + '.md', markdown)
    print(markdown + f'per-class table written to {prefix}.csv and {prefix}.md')


def _fmt(value) -> str:
    return 'n/a' if value is None else f'{value:.4f}'


@exit_on_user_error
def main(argv=None):
    args = parse_args(argv)
    if args.uncertainty_samples is not None and args.uncertainty_samples < 2:
        raise ValueError('--uncertainty-samples must be at least 2 (a single draw is what '
                         f'it is compared with), got {args.uncertainty_samples}')
    if args.uncertainty_samples is not None and args.tta:
        raise ValueError("--uncertainty-samples does not work with --tta (the augmentations' "
                         'merge keeps no softmax)')
    cfg = load_run_config(args)
    if not osp.isfile(args.checkpoint):
        raise FileNotFoundError(f'checkpoint {args.checkpoint} does not exist')
    # the tested weights go into the network below, keyed as it names them, not through the
    # runner (whose loader leaves keys of DDP-wrapped children unloaded)
    cfg.load_from = None
    cfg.resume = False
    test_sets = cfg.get('test_sets')
    if not test_sets or args.server_out:
        evaluate(cfg, args)
        return
    from mmseg_iccld.apis.test_sets import evaluate_test_sets
    evaluate_test_sets(cfg, args, test_sets, evaluate)


def evaluate(cfg, args) -> Optional[dict]:
    """Evaluate the checkpoint on ``cfg``'s test set; write and print what the module says.

    Args:
        cfg: The loaded config (``load_from`` cleared).
        args: The command line.

    Returns:
        What ``metrics.json`` holds, on rank 0; None on other ranks and for --server-out.
    """
    if args.server_out:
        from mmseg_iccld.engine.server_export import check_export_folder, server_test_split
        check_export_folder(args.server_out, args.config, args.checkpoint)
        cfg.test_dataloader.dataset, server_ids = server_test_split(cfg.test_dataloader.dataset)
        cfg.test_evaluator = dict(type='PredictionCountMetric')
    outputs = [(cfg.work_dir, 'work dir'), (args.out, '--out folder'),
               (args.server_out, '--server-out folder'),
               (args.show_dir, '--show-dir folder'),
               (args.table_out and osp.dirname(osp.abspath(args.table_out)), '--table-out folder')]
    for folder, what in outputs:
        if folder:
            check_output_folder(folder, what)

    if args.show or args.show_dir:
        enable_visualization(cfg, args)
    if args.tta:
        cfg.test_dataloader.dataset.pipeline = cfg.tta_pipeline
        cfg.tta_model.module = cfg.model
        cfg.model = cfg.tta_model
    set_cpu_distributed_backend(cfg)
    from mmseg_iccld.evaluation.per_class_metric import (PER_CLASS_PREFIX,
                                                         use_per_class_metrics)
    with_table = use_per_class_metrics(cfg.test_evaluator)

    from mmengine.registry import RUNNERS
    from mmengine.runner import Runner
    with explain_unknown_modules(args.config):
        runner = RUNNERS.build(cfg) if 'runner_type' in cfg else Runner.from_cfg(cfg)
        weights = tested_weights(runner, args.checkpoint, args.config, args.weights)
        samples, network = uncertainty_samples(runner, args)  # the model, before the data
        network.load_state_dict(weights)
        check_test_split(cfg.test_dataloader.dataset)
        images = count_images(runner.test_loop.dataloader.dataset)
        if args.out is not None:
            from mmseg_iccld.engine.prediction_files import add_prediction_files
            add_prediction_files(runner, args.out, write_result_file)
        if args.server_out:
            from mmseg_iccld.engine.server_export import add_server_export
            export = add_server_export(runner, args.server_out, server_ids, write_result_file,
                                       args.config, args.checkpoint)
        if samples > 1:
            add_uncertainty_metric(runner)
        metrics = runner.test()
        single = single_pass_uncertainty(runner, network, samples) if samples > 1 else None
    if runner.rank != 0:
        return None
    if args.server_out:
        print(f'{export.written} prediction(s) of the test split ({server_ids}, named after '
              f'their images) written to {args.server_out}')
        return None
    uncertainty = None if single is None else uncertainty_section(
        metrics, single, samples, network.num_inference_steps)
    per_class = {k[len(PER_CLASS_PREFIX):]: finite_or_none(float(v))
                 for k, v in metrics.items() if k.startswith(PER_CLASS_PREFIX)}
    summary = {k: float(v) for k, v in metrics.items() if not k.startswith(PER_CLASS_PREFIX)}
    path = osp.join(cfg.work_dir, 'metrics.json')
    result = dict(config=args.config, checkpoint=args.checkpoint, images=images,
                  metrics=summary, per_class_iou=per_class)
    if evaluated_network(runner.model)[0]:  # a UDA checkpoint: say whose weights were tested
        result['weights'] = args.weights
    if uncertainty is not None:
        result['uncertainty'] = uncertainty
        print(f"uncertainty over {uncertainty['pixels']} pixels, K = "
              f"{uncertainty['num_inference_steps']}: S = {samples}: AUROC "
              f"{_fmt(uncertainty['auroc'])}, ECE {_fmt(uncertainty['ece'])}; single pass: "
              f"AUROC {_fmt(uncertainty['single_pass']['auroc'])}, ECE "
              f"{_fmt(uncertainty['single_pass']['ece'])}")
    write_result_text(path, json.dumps(result, indent=2))
    print(f'metrics of {images} image(s) written to {path}')
    if with_table and per_class:
        write_tables(metrics, args.config,
                     args.table_out or osp.join(cfg.work_dir, 'per_class'))
    else:
        print('no per-class table: the test evaluator is neither IoUMetric nor '
              'SynthiaIoUMetric')
    return result


if __name__ == '__main__':
    main()
