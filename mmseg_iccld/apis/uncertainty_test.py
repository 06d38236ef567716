"""``tools/test.py --uncertainty-samples S``: ICCLD predicted with S noise draws, the
error-detection AUROC and ECE of their uncertainty next to those of one draw."""
import math

from mmseg_iccld.apis.checkpoint_reading import evaluated_network


def finite_or_none(value: float):
    return None if math.isnan(value) else value


def uncertainty_samples(runner, args) -> tuple:
    """S, the noise draws of the evaluated network, after ``--uncertainty-samples``.

    Args:
        runner: The runner, its model built.
        args: The parsed arguments.

    Returns:
        tuple: S (1 for models without ``test_cfg.num_samples``, and with ``--tta``), and
        the evaluated network.
    """
    _, network = evaluated_network(runner.model)
    if args.uncertainty_samples is not None:
        if not hasattr(network, 'num_samples'):
            raise ValueError(
                '--uncertainty-samples needs a model that averages noise draws '
                f'(test_cfg.num_samples, as ICCLD); the {type(network).__name__} of '
                f'{args.config} has none')
        network.test_cfg['num_samples'] = args.uncertainty_samples
    samples = getattr(network, 'num_samples', 1)
    if samples > 1 and args.tta:
        print('no uncertainty measures with --tta: the augmentations\' merge keeps no softmax')
        return 1, network
    if samples > 1 and network.num_inference_steps == 0:
        print(f'note: K = 0 (a phase-1 checkpoint, or num_inference_steps=0) draws no noise: '
              f'the {samples} draws are one prediction, as the single pass')
    return samples, network


def add_uncertainty_metric(runner) -> None:
    """Append ``UncertaintyMetric`` to the test loop's evaluator (building the loop)."""
    from mmseg.registry import METRICS
    metric = METRICS.build(dict(type='UncertaintyMetric'))
    evaluator = runner.test_loop.evaluator
    metric.dataset_meta = evaluator.dataset_meta
    evaluator.metrics.append(metric)


def single_pass_uncertainty(runner, network, samples: int) -> dict:
    """``UncertaintyMetric`` of one noise draw (S = 1) on the test set.

    Runs the test loop's dataloader and model without the hooks, so pictures, logs and
    ``--out`` files stay those of the S draws.

    Args:
        runner: The runner, after ``runner.test()``.
        network: The evaluated network (its ``test_cfg.num_samples`` is restored to S).
        samples: S.

    Returns:
        The metric's results (``unc_auroc``, ``unc_ece``, ``unc_pixels``).
    """
    import torch
    from mmengine.runner.amp import autocast
    loop = runner.test_loop
    evaluator = runner.build_evaluator(dict(type='UncertaintyMetric'))
    evaluator.dataset_meta = loop.evaluator.dataset_meta
    runner.logger.info('uncertainty: the test set once more with a single draw (S = 1)')
    network.test_cfg['num_samples'] = 1
    runner.model.eval()
    try:
        with torch.no_grad():
            for data_batch in loop.dataloader:
                with autocast(enabled=getattr(loop, 'fp16', False)):
                    outputs = runner.model.test_step(data_batch)
                evaluator.process(data_samples=outputs, data_batch=data_batch)
    finally:
        network.test_cfg['num_samples'] = samples
    return evaluator.evaluate(len(loop.dataloader.dataset))


def uncertainty_section(metrics: dict, single: dict, samples: int, steps: int) -> dict:
    """The ``uncertainty`` section of metrics.json; takes the S draws' entries off ``metrics``.

    Args:
        metrics: The test's metrics, with ``UncertaintyMetric``'s entries (removed here).
        single: ``UncertaintyMetric``'s results for one draw.
        samples: S.
        steps: K, the DDIM steps of both predictions.

    Returns:
        dict: samples, num_inference_steps, pixels, auroc, ece and single_pass (auroc, ece).
    """
    from mmseg_iccld.evaluation.uncertainty_metric import AUROC_KEY, ECE_KEY, PIXELS_KEY
    drawn = {key: metrics.pop(key) for key in (AUROC_KEY, ECE_KEY, PIXELS_KEY)}
    return dict(samples=samples, num_inference_steps=steps, pixels=int(drawn[PIXELS_KEY]),
                auroc=finite_or_none(float(drawn[AUROC_KEY])),
                ece=finite_or_none(float(drawn[ECE_KEY])),
                single_pass=dict(auroc=finite_or_none(float(single[AUROC_KEY])),
                                 ece=finite_or_none(float(single[ECE_KEY]))))
