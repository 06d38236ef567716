"""A test metric for splits without labels (the test splits of the evaluation servers): it
scores nothing and counts the predicted images."""
from typing import Sequence

from mmengine.evaluator import BaseMetric
from mmseg.registry import METRICS


@METRICS.register_module()
class PredictionCountMetric(BaseMetric):
    """``{'images': n}``: the number of images predicted; nothing is compared with a label."""

    def process(self, data_batch: dict, data_samples: Sequence[dict]) -> None:
        self.results.extend(1 for _ in data_samples)

    def compute_metrics(self, results: list) -> dict:
        return dict(images=len(results))
