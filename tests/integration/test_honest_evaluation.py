"""Every trained result carries the honest comparison: the model against the strongest
label-aware baseline on the same test rows, and its signal economics beside buy-and-hold."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ktrdr_lib import build_training_context, run_training_pipeline
from ktrdr_lib.data.loader import load_ohlcv
from ktrdr_lib.features.baselines import swing_state
from ktrdr_lib.pipeline.prepare import prepare_data
from ktrdr_lib.training.economics import periods_per_year, signal_economics
from tests.conftest import REGRESSION_STRATEGY

pytestmark = pytest.mark.slow


def test_a_zigzag_result_is_headlined_against_the_swing_state_rule(
    small_strategy_file: Path, synthetic_data_dir: Path
) -> None:
    context = build_training_context(
        small_strategy_file, data_dir=synthetic_data_dir, epochs=2, seed=3
    )
    result = run_training_pipeline(context, save_model=False)
    evaluation = result.evaluation
    assert evaluation is not None and result.test_metrics is not None
    names = [b.name for b in evaluation.baselines]
    assert set(names) == {"majority", "swing_state", "swing_state_retrace"}
    scores = [b.score for b in evaluation.baselines]
    assert scores == sorted(scores, reverse=True)  # the strongest first
    strongest = evaluation.baselines[0]
    assert evaluation.strongest_baseline == strongest.name
    assert evaluation.edge == pytest.approx(
        result.test_metrics.accuracy - strongest.score, abs=2e-6
    )
    assert f"vs {strongest.score:.3f} for {strongest.name}" in evaluation.headline
    majority = next(b for b in evaluation.baselines if b.name == "majority")
    assert majority.score == pytest.approx(result.test_metrics.majority_baseline_accuracy)

    # The swing-state baseline, recomputed from the bars by hand, on the same test rows.
    prepared = prepare_data(context)
    bars = load_ohlcv("SYNTH", "1h", data_dir=synthetic_data_dir)
    rows = bars.index.get_indexer(prepared.splits.test_index)
    assert (rows >= 0).all()
    rule = swing_state(bars["close"].to_numpy(), 0.02)[rows]
    by_hand = float(np.mean(rule == prepared.splits.y_test))
    assert next(b for b in evaluation.baselines if b.name == "swing_state").score == (
        pytest.approx(by_hand, abs=1e-6)
    )

    # Economics: buy-and-hold from the test bars' own next-bar returns.
    economics = evaluation.economics
    assert economics is not None
    close = bars["close"].to_numpy()
    nxt = np.array([close[r + 1] / close[r] - 1 if r + 1 < len(close) else np.nan for r in rows])
    expected = signal_economics(
        np.ones_like(nxt),
        nxt,
        round_trip_cost=0.0,
        periods_per_year=periods_per_year(prepared.splits.test_index),
    )
    assert economics.buy_and_hold == expected
    assert economics.model.bars == expected.bars
    assert economics.cost_source.startswith("none")
    assert economics.strongest_baseline is not None
    assert evaluation.placebo_runs == 0


def test_a_regression_result_is_headlined_against_zero_and_the_training_mean(
    tmp_path: Path, synthetic_data_dir: Path
) -> None:
    strategy = tmp_path / "regression.yaml"
    strategy.write_text(
        REGRESSION_STRATEGY.replace(
            "decisions: {output_format: regression}",
            "decisions: {output_format: regression, cost_model: "
            "{round_trip_cost: 0.002, min_edge_multiplier: 1.5}}",
        ),
        encoding="utf-8",
    )
    context = build_training_context(strategy, data_dir=synthetic_data_dir, epochs=2)
    result = run_training_pipeline(context, save_model=False)
    evaluation = result.evaluation
    assert evaluation is not None and result.test_regression is not None
    assert evaluation.score_name == "mae"
    assert {b.name for b in evaluation.baselines} == {"zero", "train_mean"}
    assert evaluation.edge == pytest.approx(
        evaluation.baselines[0].score - result.test_regression.mae, abs=1e-7
    )
    assert evaluation.economics is not None
    assert evaluation.economics.model.round_trip_cost == 0.002
    assert evaluation.economics.cost_source == "decisions.cost_model.round_trip_cost = 0.002"
