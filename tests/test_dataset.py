"""Feature assembly, labels and the purged chronological split."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from ktrdr_lib.data.synthetic import generate_ohlcv
from ktrdr_lib.errors import DataError
from ktrdr_lib.features.builder import build_feature_matrix
from ktrdr_lib.features.dataset import build_symbol_dataset, concat_splits
from ktrdr_lib.features.inputs import plan_inputs
from ktrdr_lib.features.labels import zigzag_labels
from ktrdr_lib.features.targets import compute_targets
from ktrdr_lib.strategy.loader import load_strategy

from .conftest import SMALL_STRATEGY


@pytest.fixture(scope="module")
def spec():
    return load_strategy(SMALL_STRATEGY)


@pytest.fixture(scope="module")
def bars() -> pd.DataFrame:
    return generate_ohlcv(2000, timeframe="1h", seed=3)


def _features(spec, bars):
    return build_feature_matrix(spec, plan_inputs(spec, ["1h"]), {"1h": bars}, "1h")


def test_columns_follow_the_strategy_and_lags(spec, bars) -> None:
    features = _features(spec, bars).frame()
    base = [
        "1h_rsi_oversold",
        "1h_rsi_neutral",
        "1h_rsi_overbought",
        "1h_sma_below",
        "1h_sma_near",
        "1h_sma_above",
    ]
    lagged = [f"{c}_lag{k}" for k in (1, 2) for c in base]
    assert list(features.columns) == base + lagged
    # a lag column is the base column shifted by k bars
    np.testing.assert_array_equal(
        features["1h_rsi_neutral_lag2"].to_numpy()[2:], features["1h_rsi_neutral"].to_numpy()[:-2]
    )


def test_split_is_chronological_and_purged(spec, bars) -> None:
    ds = build_symbol_dataset(spec, "SYNTH", bars, _features(spec, bars))
    s = ds.splits
    assert s.train_index.max() < s.val_index.min() < s.test_index.min()
    assert s.train_index.is_monotonic_increasing and s.test_index.is_monotonic_increasing
    assert not np.isnan(s.x_train).any() and not np.isnan(s.x_test).any()
    assert ds.summary.train == len(s.y_train) and ds.summary.test == len(s.y_test)
    assert ds.summary.warmup_dropped > 0


def test_no_training_label_is_decided_by_later_prices(spec, bars) -> None:
    """Labels of kept training (validation) rows are the same when the prices of the
    validation (test) period and after are cut off: no leakage across a boundary."""
    ds = build_symbol_dataset(spec, "SYNTH", bars, _features(spec, bars))
    s = ds.splits
    close = bars["close"].to_numpy()
    position = {t: i for i, t in enumerate(bars.index)}
    threshold = spec.training.labels.zigzag_threshold
    for rows_index, y, next_start in (
        (s.train_index, s.y_train, s.val_index.min()),
        (s.val_index, s.y_val, s.test_index.min()),
    ):
        cut = position[next_start]
        truncated = zigzag_labels(close[:cut], threshold)
        last_extreme = truncated.extremes[-1]
        rows = np.array([position[t] for t in rows_index])
        assert rows.max() <= last_extreme
        np.testing.assert_array_equal(truncated.labels[rows], y)
    assert ds.summary.purged > 0  # the purge did something on this series


def test_without_purge_the_boundary_would_leak(spec, bars) -> None:
    """The check above can fail: rows just before the validation start change label when the
    future is cut off, which is exactly what the purge removes."""
    close = bars["close"].to_numpy()
    threshold = spec.training.labels.zigzag_threshold
    full = zigzag_labels(close, threshold)
    cut = 1200
    truncated = zigzag_labels(close[:cut], threshold)
    window = np.arange(cut - 100, cut)
    assert (full.labels[window] != truncated.labels[window]).any()


def test_too_short_data_is_a_clear_error(spec, bars) -> None:
    short = bars.iloc[:40]
    with pytest.raises(DataError, match="no training samples left") as info:
        build_symbol_dataset(spec, "SYNTH", short, _features(spec, short))
    assert "longer date range" in str(info.value)


def test_concat_splits_keeps_split_order(spec) -> None:
    a_bars = generate_ohlcv(1500, timeframe="1h", seed=1)
    b_bars = generate_ohlcv(1500, timeframe="1h", seed=2, start="2021-01-01")
    a = build_symbol_dataset(spec, "A", a_bars, _features(spec, a_bars)).splits
    b = build_symbol_dataset(spec, "B", b_bars, _features(spec, b_bars)).splits
    both = concat_splits([a, b])
    assert len(both.y_train) == len(a.y_train) + len(b.y_train)
    np.testing.assert_array_equal(both.x_test[: len(a.y_test)], a.x_test)
    assert len(both.test_index) == len(both.y_test)


def test_consecutive_split_rows_are_views_of_the_matrix(spec, bars) -> None:
    features = _features(spec, bars)
    s = build_symbol_dataset(spec, "SYNTH", bars, features).splits
    for x, index in ((s.x_train, s.train_index), (s.x_test, s.test_index)):
        assert np.shares_memory(x, features.values)  # no copy of the features
        first = features.index.get_loc(index[0])
        np.testing.assert_array_equal(x, features.values[first : first + len(x)])


def test_rows_with_a_gap_are_copied_in_order(spec, bars) -> None:
    features = _features(spec, bars)
    values = features.values.copy()
    values[600, 0] = np.nan  # an unknown value in the middle of the training rows
    gapped = replace(features, values=values)
    s = build_symbol_dataset(spec, "SYNTH", bars, gapped).splits
    assert not np.isnan(s.x_train).any()
    assert bars.index[600] not in s.train_index
    assert not np.shares_memory(s.x_train, values)


LABEL_KINDS = {
    "zigzag": "{source: zigzag, zigzag_threshold: 0.015, label_lookahead: 20}",
    "triple_barrier": "{source: triple_barrier, max_holding_period: 24, vol_span: 30}",
    "triple_barrier_cusum": (
        "{source: triple_barrier, vol_method: close, cusum_threshold: 0.002, compute_weights: true}"
    ),
    "context": "{source: context, horizon: 6, bullish_threshold: 0.004, bearish_threshold: -0.004}",
    "regime": "{source: regime, vol_lookback: 60}",
}


def _spec_with_labels(labels: str, *, regression: bool = False):
    text = SMALL_STRATEGY.replace(
        "labels: {source: zigzag, zigzag_threshold: 0.02, label_lookahead: 20}",
        f"labels: {labels}",
    )
    assert text != SMALL_STRATEGY
    if regression:
        text += "decisions: {output_format: regression}\n"
    return load_strategy(text)


@pytest.mark.parametrize("kind", [*LABEL_KINDS, "forward_return"])
def test_no_label_depends_on_prices_of_a_later_period(bars, kind: str) -> None:
    """Re-labelling prices cut at the validation (test) start gives every training (validation)
    label unchanged: no training label is decided inside the validation or test period."""
    if kind == "forward_return":
        spec = _spec_with_labels("{source: forward_return, horizon: 12}", regression=True)
    else:
        spec = _spec_with_labels(LABEL_KINDS[kind])
    features = _features(spec, bars)
    s = build_symbol_dataset(spec, "SYNTH", bars, features).splits
    assert len(s.y_train) > 300 and len(s.y_val) > 30 and len(s.y_test) > 30
    for rows, y, later in (
        (s.train_index, s.y_train, s.val_index[0]),
        (s.val_index, s.y_val, s.test_index[0]),
    ):
        cut = bars.index.get_loc(later)
        again = compute_targets(spec.training.labels, bars.iloc[:cut])
        positions = bars.index.get_indexer(rows)
        assert again.labelled[positions].all()
        np.testing.assert_array_equal(again.values[positions].astype(y.dtype), y)


def test_triple_barrier_split_embargoes_one_percent_and_weights_training_rows(bars) -> None:
    spec = _spec_with_labels(LABEL_KINDS["triple_barrier_cusum"])
    ds = build_symbol_dataset(spec, "SYNTH", bars, _features(spec, bars))
    s, summary = ds.splits, ds.summary
    usable = summary.train + summary.validation + summary.test + summary.purged
    assert summary.purged >= 2 * int(0.01 * usable)
    assert s.w_train is not None and s.w_train.shape == s.y_train.shape
    assert s.w_train.mean() == pytest.approx(1.0) and (s.w_train > 0).all()
    assert s.w_train.std() > 0.05  # overlapping positions share their weight
    plain = _spec_with_labels(LABEL_KINDS["triple_barrier"])
    assert build_symbol_dataset(plain, "SYNTH", bars, _features(plain, bars)).splits.w_train is None


def test_forward_returns_are_float_targets_with_quantiles(bars) -> None:
    spec = _spec_with_labels("{source: forward_return, horizon: 12}", regression=True)
    s = build_symbol_dataset(spec, "SYNTH", bars, _features(spec, bars)).splits
    assert s.regression and s.y_train.dtype == np.float32
    close = bars["close"]
    expected = (close.shift(-12) / close - 1).loc[s.test_index].to_numpy(dtype=np.float32)
    np.testing.assert_allclose(s.y_test, expected, rtol=1e-6)
    assert s.label_distribution() == {}
    quantiles = s.target_quantiles()
    assert set(quantiles) == {"train", "validation", "test"}
    train = quantiles["train"]
    assert train["p5"] < train["p25"] < train["p50"] < train["p75"] < train["p95"]
    assert train["mean"] == pytest.approx(float(s.y_train.mean()))


def test_regime_labels_split_into_four_named_classes(bars) -> None:
    spec = _spec_with_labels("{source: regime, vol_lookback: 60}")
    s = build_symbol_dataset(spec, "SYNTH", bars, _features(spec, bars)).splits
    assert s.class_names == ("trending_up", "trending_down", "ranging", "volatile")
    distribution = s.label_distribution()
    assert set(distribution["train"]) == set(s.class_names)
    assert sum(distribution["train"].values()) == len(s.y_train)


def test_a_recurrent_strategy_keeps_only_rows_with_a_complete_window(bars) -> None:
    spec = load_strategy(
        SMALL_STRATEGY.replace(
            "  type: mlp\n  architecture: {hidden_layers: [16, 8], activation: relu, dropout: 0.1}",
            "  type: gru\n  architecture: {sequence_length: 30}",
        )
    )
    features = _features(spec, bars)
    ds = build_symbol_dataset(spec, "SYNTH", bars, features)
    windows = ds.splits.windows
    assert windows is not None and windows.length == 30
    assert np.shares_memory(windows.source, features.values)
    complete = ~np.isnan(features.values).any(axis=1)
    first_complete = int(np.argmax(complete))
    assert windows.train_ends[0] == first_complete + 29  # 29 earlier complete rows needed
    for ends, index in (
        (windows.train_ends, ds.splits.train_index),
        (windows.test_ends, ds.splits.test_index),
    ):
        assert features.index[ends].equals(index)
    plain = build_symbol_dataset(load_strategy(SMALL_STRATEGY), "SYNTH", bars, features)
    assert plain.splits.windows is None
    assert ds.summary.warmup_dropped == plain.summary.warmup_dropped + 29


def test_concatenated_windows_stay_inside_their_symbol(bars) -> None:
    spec = load_strategy(
        SMALL_STRATEGY.replace(
            "  type: mlp\n  architecture: {hidden_layers: [16, 8], activation: relu, dropout: 0.1}",
            "  type: lstm\n  architecture: {sequence_length: 5}",
        )
    )
    other = generate_ohlcv(1500, timeframe="1h", seed=9)
    parts = [
        build_symbol_dataset(spec, name, frame, _features(spec, frame)).splits
        for name, frame in (("A", bars), ("B", other))
    ]
    joined = concat_splits(parts)
    windows = joined.windows
    assert windows is not None
    rows_a = parts[0].windows.source.shape[0]  # type: ignore[union-attr]
    assert windows.source.shape[0] == rows_a + parts[1].windows.source.shape[0]  # type: ignore[union-attr]
    n_a = len(parts[0].y_test)
    assert (windows.test_ends[:n_a] < rows_a).all()
    assert (windows.test_ends[n_a:] - 4 >= rows_a).all()  # B's windows start in B's rows
    np.testing.assert_array_equal(
        windows.windows(windows.test_ends[n_a:]),
        parts[1].windows.windows(parts[1].windows.test_ends),  # type: ignore[union-attr]
    )
