"""evaluate() against figures worked out by hand on a tiny case."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ktrdr_lib.errors import DataError
from ktrdr_lib.schemas.results import ClassificationMetrics
from ktrdr_lib.strategy.spec import ArchitectureSpec, ModelSpec
from ktrdr_lib.training.evaluation import evaluate, majority_class_of
from ktrdr_lib.training.module import FuzzyMLP


def identity_model() -> FuzzyMLP:
    """No hidden layer, identity weights: the logits are the features."""
    module = FuzzyMLP(ModelSpec(architecture=ArchitectureSpec(hidden_layers=[], dropout=0.0)), 3)
    with torch.no_grad():
        module.network[0].weight.copy_(torch.eye(3))
        module.network[0].bias.zero_()
    return module


# true:      BUY BUY HOLD HOLD SELL SELL
# predicted: BUY HOLD HOLD HOLD SELL BUY
Y_TRUE = np.array([0, 0, 1, 1, 2, 2])
Y_PRED = np.array([0, 1, 1, 1, 2, 0])
X = (2.0 * np.eye(3)[Y_PRED]).astype(np.float32)  # logit 2 for the predicted class, 0 elsewhere


@pytest.fixture(scope="module")
def metrics() -> ClassificationMetrics:
    return evaluate(identity_model(), X, Y_TRUE, majority_class=1)


def test_accuracy_loss_and_baseline(metrics: ClassificationMetrics) -> None:
    assert metrics.samples == 6
    assert metrics.accuracy == pytest.approx(4 / 6)
    # Right rows: -log(e²/(e²+2)); wrong rows: -log(1/(e²+2)).
    right, wrong = math.log1p(2 * math.exp(-2)), math.log(math.exp(2) + 2)
    assert metrics.loss == pytest.approx((4 * right + 2 * wrong) / 6, rel=1e-6)
    assert metrics.majority_class == 1
    assert metrics.majority_baseline_accuracy == pytest.approx(2 / 6)


def test_confusion_matrix_rows_are_truth(metrics: ClassificationMetrics) -> None:
    assert metrics.confusion_matrix == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]


def test_per_class_and_macro_figures(metrics: ClassificationMetrics) -> None:
    expected = {
        "BUY": (1 / 2, 1 / 2, 1 / 2, 2),  # tp 1, fp 1 (a SELL), fn 1
        "HOLD": (2 / 3, 1.0, 0.8, 2),  # tp 2, fp 1 (a BUY), fn 0
        "SELL": (1.0, 1 / 2, 2 / 3, 2),  # tp 1, fp 0, fn 1
    }
    for name, (precision, recall, f1, support) in expected.items():
        figures = metrics.per_class[name]
        assert figures.precision == pytest.approx(precision)
        assert figures.recall == pytest.approx(recall)
        assert figures.f1 == pytest.approx(f1)
        assert figures.support == support
    assert metrics.precision == pytest.approx((1 / 2 + 2 / 3 + 1) / 3)
    assert metrics.recall == pytest.approx((1 / 2 + 1 + 1 / 2) / 3)
    assert metrics.f1 == pytest.approx((1 / 2 + 0.8 + 2 / 3) / 3)


def test_evaluation_restores_training_mode() -> None:
    module = identity_model()
    module.train()
    evaluate(module, X, Y_TRUE, majority_class=0)
    assert module.training


def test_majority_class_of_counts_labels() -> None:
    assert majority_class_of(np.array([2, 1, 2, 0, 2, 1])) == 2
    assert majority_class_of(np.array([1, 0])) == 0  # tie → lowest id
    with pytest.raises(DataError):
        majority_class_of(np.array([], dtype=np.int64))


def test_empty_or_mismatched_split_is_a_data_error() -> None:
    with pytest.raises(DataError, match="non-empty"):
        evaluate(identity_model(), X[:0], Y_TRUE[:0], majority_class=1)
    with pytest.raises(DataError, match="one label per row"):
        evaluate(identity_model(), X, Y_TRUE[:4], majority_class=1)
