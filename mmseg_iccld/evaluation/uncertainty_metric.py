"""How well a segmentor's uncertainty finds its errors, and how calibrated its confidence is.

Two measures over all valid pixels (label != ``ignore_index``) of a test set:

* **error-detection AUROC**: the probability that a misclassified pixel (prediction !=
  label) is more uncertain than a correctly classified one, ties counted 1/2 (the area under
  the ROC curve of the uncertainty as a detector of errors). 0.5 is chance, 1 a perfect
  ranking.
* **ECE** (expected calibration error): with confidence = the maximum of the softmax, pixels
  in M = 15 equal-width confidence bins B_m = ((m - 1) / M, m / M] (confidence 0 joins the
  first), ``sum_m |B_m| / n * |acc(B_m) - conf(B_m)|``.

The uncertainty is the entropy of the softmax divided by log(C), in [0, 1]: a data sample's
``uncertainty`` (ICCLD with S > 1 noise draws: entropy of the mean softmax) when it has one,
else the entropy of ``softmax(seg_logits)``. ``seg_logits`` are raw logits of one pass, or
the log of the mean softmax of S draws; the softmax of either is the predicted distribution.

``UncertaintyMetric`` keeps only fixed-size histograms, whatever the size of the test set:
the uncertainty in 2048 equal-width bins, split by correct / error, and the ECE bins' pixel
count, sum of confidence and number correct.
"""
import math
from typing import Dict, Optional, Sequence, Tuple

import numpy as np
import torch
from mmengine.dist import get_dist_info
from mmengine.evaluator import BaseMetric
from mmseg.registry import METRICS
from torch import Tensor

UNCERTAINTY_BINS = 2048
ECE_BINS = 15
# the metric's result keys
AUROC_KEY, ECE_KEY, PIXELS_KEY = 'unc_auroc', 'unc_ece', 'unc_pixels'


def normalised_entropy(prob: Tensor, dim: int = 0) -> Tensor:
    """Entropy of class probabilities divided by log(C), so in [0, 1].

    Args:
        prob: Probabilities, the classes along ``dim`` (C >= 2).
        dim: The class dimension.

    Returns:
        The normalised entropy, ``dim`` reduced.
    """
    num_classes = prob.shape[dim]
    if num_classes < 2:
        raise ValueError(f'the entropy of {num_classes} class(es) cannot be normalised')
    return -torch.special.xlogy(prob, prob).sum(dim=dim) / math.log(num_classes)


def uncertainty_histograms(uncertainty, error,
                           num_bins: int = UNCERTAINTY_BINS) -> Tuple[np.ndarray, np.ndarray]:
    """Histograms of the uncertainty of correct and of misclassified pixels.

    Bin b holds uncertainties in [b / num_bins, (b + 1) / num_bins), the last bin also 1;
    values outside [0, 1] join the first or last bin.

    Args:
        uncertainty: Uncertainties in [0, 1], any shape.
        error: Whether each pixel is misclassified, the same shape.
        num_bins: Number of bins.

    Returns:
        tuple: counts of correct pixels, counts of errors; ``(num_bins, )`` int64 each.
    """
    uncertainty = torch.as_tensor(uncertainty).reshape(-1)
    error = torch.as_tensor(error, device=uncertainty.device).reshape(-1).bool()
    index = (uncertainty.double() * num_bins).floor().clamp(0, num_bins - 1).long()
    both = torch.bincount(index + num_bins * error.long(), minlength=2 * num_bins)
    both = both.cpu().numpy().astype(np.int64)
    return both[:num_bins], both[num_bins:]


def auroc_from_histograms(correct_hist, error_hist) -> float:
    """Error-detection AUROC of binned uncertainties, exact for the bins.

    The probability that an error lies in a higher bin than a correct pixel, plus half the
    probability that both lie in the same bin.

    Args:
        correct_hist: Counts of correct pixels per bin, bins in increasing uncertainty.
        error_hist: Counts of errors per bin, the same bins.

    Returns:
        The AUROC in [0, 1]; NaN without errors or without correct pixels.
    """
    correct = np.asarray(correct_hist, dtype=np.float64)
    error = np.asarray(error_hist, dtype=np.float64)
    num_correct, num_error = correct.sum(), error.sum()
    if num_correct == 0 or num_error == 0:
        return float('nan')
    correct_below = np.cumsum(correct) - correct
    pairs = (error * (correct_below + 0.5 * correct)).sum()
    return float(pairs / num_correct / num_error)


def error_detection_auroc(uncertainty, error, num_bins: int = UNCERTAINTY_BINS) -> float:
    """Error-detection AUROC of uncertainties in [0, 1], binned as the metric bins them.

    Uncertainties in one of the ``num_bins`` bins count as ties.

    Args:
        uncertainty: Uncertainties in [0, 1], any shape.
        error: Whether each pixel is misclassified, the same shape.
        num_bins: Number of bins.

    Returns:
        The AUROC in [0, 1]; NaN without errors or without correct pixels.
    """
    return auroc_from_histograms(*uncertainty_histograms(uncertainty, error, num_bins))


def calibration_bins(confidence, correct,
                     num_bins: int = ECE_BINS) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per confidence bin ((m - 1) / M, m / M]: pixel count, sum of confidence, number correct.

    Args:
        confidence: Confidences in [0, 1], any shape.
        correct: Whether each pixel is correctly classified, the same shape.
        num_bins: M, the number of equal-width bins.

    Returns:
        tuple: counts (int64), confidence sums (float64), correct counts (int64), each
        ``(num_bins, )``.
    """
    confidence = torch.as_tensor(confidence).reshape(-1).double()
    correct = torch.as_tensor(correct, device=confidence.device).reshape(-1).bool()
    index = ((confidence * num_bins).ceil().long() - 1).clamp(0, num_bins - 1)
    count = torch.bincount(index, minlength=num_bins)
    conf_sum = torch.bincount(index, weights=confidence, minlength=num_bins)
    correct_count = torch.bincount(index[correct], minlength=num_bins)
    return (count.cpu().numpy().astype(np.int64), conf_sum.cpu().numpy(),
            correct_count.cpu().numpy().astype(np.int64))


def ece_from_bins(count, conf_sum, correct_count) -> float:
    """ECE from :func:`calibration_bins`' statistics: ``sum_m |B_m| / n |acc - conf|``.

    Returns:
        The ECE in [0, 1]; NaN without pixels.
    """
    count = np.asarray(count, dtype=np.float64)
    total = count.sum()
    if total == 0:
        return float('nan')
    # |B_m| * |acc(B_m) - conf(B_m)| = |correct(B_m) - sum of conf(B_m)|
    gap = np.abs(np.asarray(correct_count, dtype=np.float64) - np.asarray(conf_sum))
    return float(gap.sum() / total)


def expected_calibration_error(confidence, correct, num_bins: int = ECE_BINS) -> float:
    """ECE of confidences in [0, 1] with ``num_bins`` equal-width bins ((m - 1) / M, m / M].

    Args:
        confidence: Confidences, any shape.
        correct: Whether each pixel is correctly classified, the same shape.
        num_bins: M.

    Returns:
        The ECE in [0, 1]; NaN without pixels.
    """
    return ece_from_bins(*calibration_bins(confidence, correct, num_bins))


@METRICS.register_module()
class UncertaintyMetric(BaseMetric):
    """Error-detection AUROC (``unc_auroc``) and ECE (``unc_ece``) of a segmentor's softmax,
    over ``unc_pixels`` valid pixels; both fractions in [0, 1], NaN where undefined.

    Each data sample needs ``seg_logits`` and ``gt_sem_seg``; the prediction is
    ``pred_sem_seg`` (its argmax where absent). The uncertainty is the sample's
    ``uncertainty`` when it has one, else the entropy of ``softmax(seg_logits)``, both
    divided by log(C) and binned into ``num_bins`` equal-width bins over [0, 1]: the AUROC is
    exact for the binned values, uncertainties in one bin count as ties (1/2).

    Every process keeps one running sum of the histograms, plus the histograms of its last
    sample apart: in distributed runs that sample is the sampler's padding (a repeat of the
    first images) when its position in the round-robin order is past the dataset's end, and
    is then left out, so each image counts once, as in mmseg's ``IoUMetric``.

    Args:
        num_bins: Bins of the normalised uncertainty.
        ece_bins: Equal-width confidence bins of the ECE.
        ignore_index: Label of pixels left out.
        collect_device: 'cpu' or 'gpu', for collecting results across processes.
        prefix: Prefix of the metric names.
    """

    def __init__(self,
                 num_bins: int = UNCERTAINTY_BINS,
                 ece_bins: int = ECE_BINS,
                 ignore_index: int = 255,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None,
                 **kwargs) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix, **kwargs)
        self.num_bins = num_bins
        self.ece_bins = ece_bins
        self.ignore_index = ignore_index
        self._size: Optional[int] = None

    def sample_statistics(self, data_sample: dict) -> np.ndarray:
        """One sample's histograms: correct, error (``num_bins`` each), then the ECE bins'
        count, confidence sum and correct count (``ece_bins`` each), as float64."""
        if 'seg_logits' not in data_sample:
            raise KeyError('UncertaintyMetric needs the predictions\' seg_logits (test-time '
                           'augmentation, for one, keeps none)')
        prob = data_sample['seg_logits']['data'].float().softmax(dim=0)
        confidence, argmax = prob.max(dim=0)
        pred = data_sample.get('pred_sem_seg', {}).get('data', argmax).reshape(argmax.shape)
        if 'uncertainty' in data_sample:
            uncertainty = (data_sample['uncertainty']['data'].float().reshape(argmax.shape) /
                           math.log(prob.shape[0]))
        else:
            uncertainty = normalised_entropy(prob)
        label = data_sample['gt_sem_seg']['data'].to(pred.device).reshape(argmax.shape)
        valid = label != self.ignore_index
        correct = (pred == label)[valid]
        histograms = uncertainty_histograms(uncertainty[valid], ~correct, self.num_bins)
        bins = calibration_bins(confidence[valid], correct, self.ece_bins)
        return np.concatenate([*histograms, *bins]).astype(np.float64)

    def process(self, data_batch, data_samples: Sequence[dict]) -> None:
        """Add the histograms of each data sample to this process's running sums.

        Args:
            data_batch: Unused.
            data_samples: Predictions as dicts (``seg_logits``, ``gt_sem_seg``, optionally
                ``pred_sem_seg`` and ``uncertainty``).
        """
        if not self.results:
            rank, world_size = get_dist_info()
            self.results.append(dict(total=None, last=None, samples=0, rank=rank,
                                     world_size=world_size))
        state = self.results[0]
        for data_sample in data_samples:
            statistics = self.sample_statistics(data_sample)
            if state['last'] is not None:
                state['total'] = state['last'] + (0 if state['total'] is None
                                                  else state['total'])
            state['last'] = statistics
            state['samples'] += 1

    def evaluate(self, size: int) -> dict:
        """BaseMetric's evaluation; ``size`` also tells which last samples are padding."""
        self._size = size
        return super().evaluate(size)

    def compute_metrics(self, results: list) -> Dict[str, float]:
        """AUROC, ECE and the pixel count from the processes' running sums.

        Args:
            results: One state per process (``total``, ``last``, ``samples``, ``rank``,
                ``world_size``).

        Returns:
            dict: ``unc_auroc``, ``unc_ece`` (NaN where undefined) and ``unc_pixels``.
        """
        total = np.zeros(2 * self.num_bins + 3 * self.ece_bins)
        for state in results:
            if state['total'] is not None:
                total += state['total']
            last_position = state['rank'] + (state['samples'] - 1) * state['world_size']
            if state['last'] is not None and (self._size is None
                                              or last_position < self._size):
                total += state['last']
        nb, ne = self.num_bins, self.ece_bins
        correct_hist, error_hist = total[:nb], total[nb:2 * nb]
        count, conf_sum, correct_count = (total[2 * nb + i * ne:2 * nb + (i + 1) * ne]
                                          for i in range(3))
        return {
            AUROC_KEY: auroc_from_histograms(correct_hist, error_hist),
            ECE_KEY: ece_from_bins(count, conf_sum, correct_count),
            PIXELS_KEY: int(count.sum()),
        }
