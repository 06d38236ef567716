"""Uncertainty quality: error-detection AUROC and ECE, the metric, and tools/test.py's report."""
import json
import math
from unittest import mock

import numpy as np
import pytest
import torch
from mmengine.evaluator import Evaluator
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample

import mmseg_iccld  # noqa: F401
from mmseg_iccld.evaluation import uncertainty_metric
from mmseg_iccld.evaluation.uncertainty_metric import (UncertaintyMetric, error_detection_auroc,
                                                       expected_calibration_error,
                                                       normalised_entropy)
from test_tools_infer import build_uda, wrapper_predictions
from test_tools_test import (DAFORMER, ICCLD, data_options, error_line, run_tool,
                             save_checkpoint)


def pairwise_auroc(uncertainty, error) -> float:
    """P(an error is more uncertain than a correct pixel) + P(equal) / 2, over all pairs."""
    u_error, u_correct = uncertainty[error][:, None], uncertainty[~error][None, :]
    return float(((u_error > u_correct) + 0.5 * (u_error == u_correct)).mean())


def rank_auroc(uncertainty, error) -> float:
    """Mann-Whitney U from average ranks (ties share their mean rank)."""
    _, inverse, counts = np.unique(uncertainty, return_inverse=True, return_counts=True)
    mean_rank = np.cumsum(counts) - (counts - 1) / 2  # of each distinct value, 1-based
    ranks = mean_rank[inverse]
    n_error, n_correct = error.sum(), (~error).sum()
    return float((ranks[error].sum() - n_error * (n_error + 1) / 2) / (n_error * n_correct))


def loop_ece(confidence, correct, num_bins=15) -> float:
    """ECE by its definition, bin by bin: ((m - 1) / M, m / M], confidence 0 in the first."""
    total = 0.0
    for m in range(num_bins):
        in_bin = (confidence > m / num_bins) & (confidence <= (m + 1) / num_bins)
        if m == 0:
            in_bin |= confidence == 0
        if in_bin.any():
            total += in_bin.sum() / len(confidence) * abs(correct[in_bin].mean() -
                                                          confidence[in_bin].mean())
    return total


# the pure functions


@pytest.mark.parametrize('seed', range(5))
def test_auroc_equals_pairwise_count_with_ties(seed):
    rng = np.random.default_rng(seed)
    # tenths: many ties, each value in its own of the 2048 bins (0 and 1 included)
    uncertainty = rng.integers(0, 11, size=300) / 10
    error = rng.random(300) < 0.3 + 0.4 * uncertainty  # uncertain pixels err more
    expected = pairwise_auroc(uncertainty, error)
    assert 0.55 < expected < 0.95
    assert error_detection_auroc(torch.tensor(uncertainty), torch.tensor(error)) == \
        pytest.approx(expected, abs=1e-12)
    assert error_detection_auroc(uncertainty, error) == pytest.approx(expected, abs=1e-12)


def test_auroc_hand_computed_cases():
    error = np.array([False, False, False, True, True])
    assert error_detection_auroc(np.array([0.1, 0.2, 0.3, 0.8, 0.9]), error) == 1.0
    assert error_detection_auroc(np.array([0.9, 0.8, 0.7, 0.2, 0.1]), error) == 0.0
    assert error_detection_auroc(np.full(5, 0.4), error) == 0.5
    # errors 0.5, 0.9 against correct 0.1, 0.5, 0.7: (1 + 1/2 + 0) + (1 + 1 + 1) = 4.5 / 6
    auroc = error_detection_auroc(np.array([0.1, 0.5, 0.7, 0.5, 0.9]), error)
    assert auroc == pytest.approx(4.5 / 6, abs=1e-12)
    assert math.isnan(error_detection_auroc(np.array([0.1, 0.2]), np.array([False, False])))


def test_auroc_counts_values_in_one_bin_as_ties():
    # 0.3 * 2048 = 614.4 and 0.3001 * 2048 = 614.6: bin 614 both
    error = np.array([True, False])
    assert error_detection_auroc(np.array([0.3001, 0.3]), error) == 0.5
    assert error_detection_auroc(np.array([0.3001, 0.3]), error, num_bins=100000) == 1.0


def test_ece_hand_computed():
    confidence = np.array([1.0, 0.94, 0.62, 0.62, 0.62, 0.1])
    correct = np.array([True, False, True, True, False, False])
    # bin 15 (14/15, 1]: 2 pixels, acc 1/2, conf 0.97 -> 2/6 * 0.47
    # bin 10 (9/15, 10/15]: 3 pixels, acc 2/3, conf 0.62 -> 3/6 * 0.14/3
    # bin 2 (1/15, 2/15]: 1 pixel, acc 0, conf 0.1 -> 1/6 * 0.1; sum 1.18 / 6
    assert expected_calibration_error(confidence, correct) == pytest.approx(1.18 / 6, abs=1e-12)
    assert expected_calibration_error(np.full(4, 0.75), np.array([1, 1, 1, 0])) == \
        pytest.approx(0.0, abs=1e-12)
    rng = np.random.default_rng(0)
    confidence, correct = rng.random(500), rng.random(500) < 0.6
    assert expected_calibration_error(torch.tensor(confidence), torch.tensor(correct)) == \
        pytest.approx(loop_ece(confidence, correct), abs=1e-12)


# the metric


def fake_samples(seed: int = 0, num_classes: int = 5):
    """Three random predictions (one with an ``uncertainty`` of its own) and labels with
    ignored pixels, and all their valid pixels' uncertainty, confidence and correctness."""
    generator = torch.Generator().manual_seed(seed)
    samples, pixels = [], []
    for i, (h, w) in enumerate([(6, 7), (5, 9), (8, 4)]):
        logits = 3 * torch.randn((num_classes, h, w), generator=generator)
        label = torch.randint(0, num_classes, (1, h, w), generator=generator)
        label[torch.rand((1, h, w), generator=generator) < 0.2] = 255
        sample = SegDataSample(seg_logits=PixelData(data=logits),
                               pred_sem_seg=PixelData(data=logits.argmax(0, keepdim=True)),
                               gt_sem_seg=PixelData(data=label))
        prob = logits.softmax(0)
        uncertainty = -(prob * prob.log()).sum(0) / math.log(num_classes)
        if i == 1:  # as ICCLD with S > 1: an entropy (not normalised) of its own
            entropy = torch.rand((1, h, w), generator=generator) * math.log(num_classes)
            sample.uncertainty = PixelData(data=entropy)
            uncertainty = entropy[0] / math.log(num_classes)
        valid = label[0] != 255
        pixels.append((uncertainty[valid].numpy(), prob.max(0).values[valid].numpy(),
                       (prob.argmax(0) == label[0])[valid].numpy()))
        samples.append(sample)
    return samples, [np.concatenate(p) for p in zip(*pixels)]


def test_normalised_entropy_bounds():
    assert normalised_entropy(torch.full((19, 2), 1 / 19)).tolist() == pytest.approx([1, 1])
    assert normalised_entropy(torch.eye(3)).tolist() == [0, 0, 0]


def test_metric_equals_pure_functions_and_an_independent_computation():
    samples, (uncertainty, confidence, correct) = fake_samples()
    evaluator = Evaluator([UncertaintyMetric()])
    evaluator.dataset_meta = dict(classes=tuple('abcde'))
    evaluator.process(samples[:2])
    evaluator.process(samples[2:])
    metrics = evaluator.evaluate(3)
    assert metrics['unc_pixels'] == len(correct) > 80
    assert metrics['unc_auroc'] == pytest.approx(
        error_detection_auroc(uncertainty, ~correct), abs=1e-12)
    binned = np.minimum(np.floor(uncertainty.astype(np.float64) * 2048), 2047)
    assert metrics['unc_auroc'] == pytest.approx(rank_auroc(binned, ~correct), abs=1e-12)
    assert metrics['unc_ece'] == pytest.approx(
        expected_calibration_error(confidence, correct), abs=1e-12)
    assert metrics['unc_ece'] == pytest.approx(loop_ece(confidence.astype(np.float64), correct),
                                               abs=1e-9)


def test_distributed_padding_is_counted_once():
    """Two processes on 3 images: the sampler gives rank 0 images 0, 2 and rank 1 images 1, 0
    (padding); the collected result equals one process on images 0, 1, 2."""
    samples, _ = fake_samples(seed=1)
    dicts = [s.to_dict() for s in samples]
    single = UncertaintyMetric()
    single.process(None, dicts)
    expected = single.evaluate(3)
    ranks = []
    for rank, indices in ((0, [0, 2]), (1, [1, 0])):
        metric = UncertaintyMetric()
        with mock.patch.object(uncertainty_metric, 'get_dist_info', return_value=(rank, 2)):
            for i in indices:
                metric.process(None, [dicts[i]])
        ranks.append(metric)
    collected = ranks[0].results + ranks[1].results
    with mock.patch('mmengine.evaluator.metric.collect_results', return_value=collected):
        metrics = ranks[0].evaluate(3)
    assert metrics == pytest.approx(expected, abs=1e-12)
    assert metrics['unc_pixels'] < UncertaintyMetric().compute_metrics(collected)['unc_pixels']


# tools/test.py


def valid_pixels(predictions: dict):
    """Normalised entropy, confidence and correctness of the valid pixels of all images."""
    parts = []
    for sample in predictions.values():
        prob = sample.seg_logits.data.softmax(0)
        label = sample.gt_sem_seg.data[0]
        valid = label != 255
        entropy = -torch.special.xlogy(prob, prob).sum(0) / math.log(prob.shape[0])
        parts.append((entropy[valid].numpy().astype(np.float64),
                      prob.max(0).values[valid].numpy().astype(np.float64),
                      (sample.pred_sem_seg.data[0] == label)[valid].numpy()))
    return [np.concatenate(p) for p in zip(*parts)]


def mean_iou(predictions: dict) -> float:
    confusion = np.zeros((19, 19), dtype=np.int64)
    for sample in predictions.values():
        label, pred = sample.gt_sem_seg.data[0].numpy(), sample.pred_sem_seg.data[0].numpy()
        valid = label != 255
        confusion += np.bincount(19 * label[valid].astype(int) + pred[valid],
                                 minlength=361).reshape(19, 19)
    inter = np.diag(confusion)
    union = confusion.sum(0) + confusion.sum(1) - inter
    return float(np.nanmean(inter[union > 0] / union[union > 0]) * 100)


def test_tool_reports_s_draws_and_single_pass(synthetic_benchmark, tmp_path):
    checkpoint = str(tmp_path / 'iccld.pth')
    _, model = build_uda(ICCLD, 2)
    state = model.state_dict()
    # D reads m_hat0 through a projection that starts at zero, and predicts nearly uniform
    # softmaxes at first: give the draws a say, and the softmax a range of confidences
    projection = state['model.decode_head.mask_latent_proj.weight']
    projection.copy_(torch.randn(projection.shape, generator=torch.Generator().manual_seed(0)))
    state['model.decode_head.conv_seg.weight'] *= 30
    torch.save(dict(state_dict=state, meta=dict()), checkpoint)
    result = run_tool('tools/test.py', ICCLD, checkpoint, '--work-dir', str(tmp_path / 'work'),
                      '--uncertainty-samples', '2', *data_options(synthetic_benchmark))
    assert result.returncode == 0, result.stderr[-3000:]
    with open(tmp_path / 'work' / 'metrics.json') as f:
        written = json.load(f)
    section = written['uncertainty']
    assert set(section) == {'samples', 'num_inference_steps', 'pixels', 'auroc', 'ece',
                            'single_pass'}
    assert (section['samples'], section['num_inference_steps']) == (2, 3)
    assert not any(key.startswith('unc_') for key in written['metrics'])
    for num_samples, values in ((2, section), (1, section['single_pass'])):
        predictions = wrapper_predictions(ICCLD, checkpoint, synthetic_benchmark, phase=2,
                                          num_samples=num_samples)
        entropy, confidence, correct = valid_pixels(predictions)
        if num_samples == 2:
            assert section['pixels'] == len(correct) > 10000
            assert written['metrics']['mIoU'] == pytest.approx(mean_iou(predictions), abs=0.011)
            single_entropy = entropy
        else:
            assert np.abs(entropy - single_entropy).max() > 0.01  # the draws differ
        binned = np.minimum(np.floor(entropy * 2048), 2047)
        assert values['auroc'] == pytest.approx(rank_auroc(binned, ~correct), abs=1e-6)
        assert values['ece'] == pytest.approx(loop_ece(confidence, correct), abs=1e-6)
        assert 0 < values['auroc'] < 1 and 0 < values['ece'] < 1
    assert 'single pass: AUROC' in result.stdout


def test_tool_flag_errors(tmp_path):
    checkpoint = str(tmp_path / 'dacs.pth')
    save_checkpoint(DAFORMER, checkpoint)
    line = error_line(run_tool('tools/test.py', DAFORMER, checkpoint, '--work-dir',
                               str(tmp_path / 'work'), '--uncertainty-samples', '4'))
    assert line == ('error: ValueError: --uncertainty-samples needs a model that averages '
                    'noise draws (test_cfg.num_samples, as ICCLD); the EncoderDecoder of '
                    f'{DAFORMER} has none')
    line = error_line(run_tool('tools/test.py', DAFORMER, checkpoint, '--uncertainty-samples',
                               '1'))
    assert line == ('error: ValueError: --uncertainty-samples must be at least 2 (a single '
                    'draw is what it is compared with), got 1')
