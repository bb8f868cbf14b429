"""The honest comparison beside every result: the model against the strongest baseline that
knows how its labels are built, and what its signals would have earned (test split).

Majority-class accuracy misleads with ZigZag labels: a label says which swing a bar lies in,
and a swing confirmed by the threshold can be read off past prices, so a rule with no model
(:func:`~ktrdr_lib.features.baselines.swing_state`) already scores far above the majority.
The headline compares the model with the strongest of the baselines its label kind has.

Example:
    >>> result.evaluation.headline  # doctest: +SKIP
    'test accuracy 0.663 vs 0.650 for swing_state (the strongest baseline, no model): +0.013'
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ktrdr_lib.features.baselines import BASELINE_DESCRIPTIONS
from ktrdr_lib.features.dataset import DatasetSplits
from ktrdr_lib.schemas.results import (
    BaselineFigures,
    ClassificationMetrics,
    EconomicsReport,
    HonestEvaluation,
    RegressionMetrics,
)
from ktrdr_lib.strategy.spec import StrategySpec
from ktrdr_lib.training.economics import (
    periods_per_year,
    positions_from_classes,
    signal_economics,
)

__all__ = ["classification_evaluation", "decision_rules", "regression_evaluation"]


def _macro_f1(predicted: np.ndarray, truth: np.ndarray, n_classes: int) -> float:
    scores = []
    for c in range(n_classes):
        tp = float(np.sum((predicted == c) & (truth == c)))
        fp = float(np.sum((predicted == c) & (truth != c)))
        fn = float(np.sum((predicted != c) & (truth == c)))
        if tp + fp + fn == 0:
            continue  # absent from both: left out, as the model's own macro F1 does
        scores.append(2 * tp / (2 * tp + fp + fn))
    return float(np.mean(scores)) if scores else 0.0


def decision_rules(spec: StrategySpec) -> tuple[float | None, bool, float, str]:
    """The strategy's decision rules for positions: confidence threshold, whether a position
    is held through HOLD (``position_awareness``), the round-trip cost and where it came
    from."""
    kept = spec.ignored
    threshold = kept.get("decisions.confidence_threshold")
    threshold = float(threshold) if isinstance(threshold, int | float) else None
    aware = kept.get("decisions.position_awareness") is True
    cost_model = spec.decisions.cost_model
    if cost_model is None:
        return threshold, aware, 0.0, "none: the strategy has no decisions.cost_model (cost 0)"
    return (
        threshold,
        aware,
        float(cost_model.round_trip_cost),
        f"decisions.cost_model.round_trip_cost = {cost_model.round_trip_cost:g}",
    )


def _held(positions: np.ndarray) -> np.ndarray:
    """HOLD (0) keeps the position held before it (position awareness)."""
    out = positions.copy()
    for i in range(1, out.shape[0]):
        if out[i] == 0:
            out[i] = out[i - 1]
    return out


def _economics(
    spec: StrategySpec,
    splits: DatasetSplits,
    model_positions: np.ndarray,
    baseline_positions: np.ndarray | None,
    rules: list[str],
) -> EconomicsReport | None:
    returns = splits.test_next_return
    if returns is None or not np.isfinite(returns).any():
        return None
    _, _, cost, source = decision_rules(spec)
    yearly = periods_per_year(splits.test_index)
    kwargs: dict[str, Any] = {"round_trip_cost": cost, "periods_per_year": yearly}
    return EconomicsReport(
        model=signal_economics(model_positions, returns, **kwargs),
        buy_and_hold=signal_economics(np.ones_like(returns), returns, **kwargs),
        strongest_baseline=None
        if baseline_positions is None
        else signal_economics(baseline_positions, returns, **kwargs),
        cost_source=source,
        rules=rules,
    )


def classification_evaluation(
    spec: StrategySpec,
    splits: DatasetSplits,
    metrics: ClassificationMetrics,
    logits: np.ndarray,
) -> HonestEvaluation:
    """The honest comparison of a classifier on the test split (``logits``: its outputs on
    the test rows, in order)."""
    truth = splits.y_test
    n_classes = len(splits.class_names)
    predictions = {"majority": np.full_like(truth, metrics.majority_class)}
    predictions.update(splits.test_baselines)
    figures = [
        BaselineFigures(
            name=name,
            description=BASELINE_DESCRIPTIONS.get(name, name),
            score=round(float(np.mean(predicted == truth)), 6),
            f1=round(_macro_f1(predicted, truth, n_classes), 6),
        )
        for name, predicted in predictions.items()
    ]
    figures.sort(key=lambda b: -b.score)
    strongest = figures[0]
    edge = metrics.accuracy - strongest.score
    kind = "no model" if strongest.name != "majority" else "always one class"
    headline = (
        f"test accuracy {metrics.accuracy:.3f} vs {strongest.score:.3f} for {strongest.name} "
        f"(the strongest baseline, {kind}): {edge:+.3f}"
    )

    threshold, aware, _, _ = decision_rules(spec)
    classes = logits.argmax(axis=1)
    shifted = logits - logits.max(axis=1, keepdims=True)
    probabilities = np.exp(shifted) / np.exp(shifted).sum(axis=1, keepdims=True)
    positions = positions_from_classes(classes, probabilities, confidence_threshold=threshold)
    rules = ["BUY +1, SELL −1, HOLD 0; a position taken at a bar earns the next bar"]
    if threshold is not None:
        rules.append(f"flat below decisions.confidence_threshold = {threshold:g}")
    if aware:
        positions = _held(positions)
        rules.append("decisions.position_awareness: HOLD keeps the position held")
    economics = None  # regime/context classes are not trading signals
    if splits.class_names == ("BUY", "HOLD", "SELL"):
        baseline = positions_from_classes(predictions[strongest.name])
        economics = _economics(spec, splits, positions, baseline, rules)
    return HonestEvaluation(
        headline=headline,
        score_name="accuracy",
        model_score=round(metrics.accuracy, 6),
        baselines=figures,
        strongest_baseline=strongest.name,
        edge=round(edge, 6),
        economics=economics,
    )


def regression_evaluation(
    spec: StrategySpec,
    splits: DatasetSplits,
    metrics: RegressionMetrics,
    predictions: np.ndarray,
) -> HonestEvaluation:
    """The honest comparison of a regression on the test split: MAE against the zero and
    training-mean predictions; positions from the predicted return's sign where it clears
    the cost model's edge (``round_trip_cost × min_edge_multiplier``)."""
    figures = sorted(
        [
            BaselineFigures(
                name="zero",
                description="a return of 0 everywhere",
                score=round(metrics.zero_baseline_mae, 8),
            ),
            BaselineFigures(
                name="train_mean",
                description="the training split's mean return everywhere",
                score=round(metrics.mean_baseline_mae, 8),
            ),
        ],
        key=lambda b: b.score,
    )
    strongest = figures[0]
    edge = strongest.score - metrics.mae
    headline = (
        f"test MAE {metrics.mae:.5f} vs {strongest.score:.5f} for {strongest.name} (the "
        f"strongest baseline): {edge:+.5f} {'better' if edge > 0 else 'worse'}"
    )
    values = np.asarray(predictions, dtype=np.float64).ravel()
    cost_model = spec.decisions.cost_model
    edge_needed = (
        0.0 if cost_model is None else cost_model.round_trip_cost * cost_model.min_edge_multiplier
    )
    positions = np.where(np.abs(values) > edge_needed, np.sign(values), 0.0)
    rules = [
        "long when the predicted return is above the needed edge, short when below minus it",
        f"needed edge {edge_needed:g} (round_trip_cost × min_edge_multiplier)",
    ]
    baseline = np.full_like(values, np.sign(metrics.train_mean))
    return HonestEvaluation(
        headline=headline,
        score_name="mae",
        model_score=round(metrics.mae, 8),
        baselines=figures,
        strongest_baseline=strongest.name,
        edge=round(edge, 8),
        economics=_economics(
            spec, splits, positions, baseline if strongest.name == "train_mean" else None, rules
        ),
    )
