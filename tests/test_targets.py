"""The label kinds: each against a plain statement of its rule, and each proved to depend on no
price after the bar it says it is decided at."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from ktrdr_lib.data.synthetic import generate_ohlcv
from ktrdr_lib.errors import ConfigError, DataError
from ktrdr_lib.features.labels import BUY, HOLD, SELL
from ktrdr_lib.features.targets import (
    REGIME_NAMES,
    barrier_volatility,
    compute_targets,
    context_labels,
    forward_return_targets,
    regime_labels,
    regime_thresholds,
    triple_barrier_labels,
    uniqueness_weights,
)
from ktrdr_lib.strategy.label_kinds import (
    ContextLabelsSpec,
    ForwardReturnLabelsSpec,
    RegimeLabelsSpec,
    TripleBarrierLabelsSpec,
    ZigzagLabelsSpec,
)


@pytest.fixture(scope="module")
def bars() -> pd.DataFrame:
    return generate_ohlcv(900, seed=17)


def reference_triple_barrier(bars: pd.DataFrame, spec: TripleBarrierLabelsSpec) -> dict[int, int]:
    """The rule as written in the reference, bar by bar: the label of every bar whose label
    the data decides (a touch within the bars there are, or the full holding period)."""
    close, high, low = (bars[c].to_numpy() for c in ("close", "high", "low"))
    if spec.vol_method == "atr":
        vol = ((bars["high"] - bars["low"]) / bars["close"]).ewm(span=spec.vol_span).mean()
    else:
        vol = np.log(bars["close"]).diff().ewm(span=spec.vol_span).std()
    vol = vol.to_numpy().copy()
    for t in range(spec.vol_span):
        if not (vol[t] > 0):
            vol[t] = vol[spec.vol_span]
    out = {}
    hold = spec.max_holding_period
    for t in range(len(close)):
        upper = close[t] * (1 + spec.pt_multiplier * vol[t])
        lower = close[t] * (1 - spec.sl_multiplier * vol[t])
        label = None
        for s in range(t + 1, min(t + hold, len(close) - 1) + 1):
            if high[s] >= upper and low[s] <= lower:
                label = +1 if close[s] >= close[t] else -1
            elif high[s] >= upper:
                label = +1
            elif low[s] <= lower:
                label = -1
            if label is not None:
                break
        if label is None:
            if t + hold >= len(close):
                continue  # undecided: untouched so far, the holding period not over
            r = close[t + hold] / close[t] - 1
            label = 0 if abs(r) < vol[t] * math.sqrt(hold) * 0.5 else (1 if r > 0 else -1)
        out[t] = {1: BUY, 0: HOLD, -1: SELL}[label]
    return out


@pytest.mark.parametrize(
    "spec",
    [
        TripleBarrierLabelsSpec(),
        TripleBarrierLabelsSpec(vol_method="close", pt_multiplier=1.0, sl_multiplier=1.0),
        TripleBarrierLabelsSpec(max_holding_period=12, vol_span=20, pt_multiplier=3.0),
    ],
)
def test_triple_barrier_follows_the_rule(bars: pd.DataFrame, spec: TripleBarrierLabelsSpec) -> None:
    targets = triple_barrier_labels(bars, spec)
    n = len(bars)
    reference = reference_triple_barrier(bars, spec)
    assert np.flatnonzero(targets.labelled).tolist() == sorted(reference)
    assert targets.labelled[: n - spec.max_holding_period].all()
    ours = targets.values[targets.labelled].tolist()
    assert ours == [reference[t] for t in sorted(reference)]
    assert {BUY, SELL} <= set(ours) <= {BUY, HOLD, SELL}
    assert targets.embargo == 0.01 and not targets.regression


def test_a_bar_touching_both_barriers_is_decided_by_its_close() -> None:
    frame = pd.DataFrame(
        {
            "open": [100.0] * 4,
            "high": [100.5, 100.6, 120.0, 100.5],
            "low": [99.5, 99.4, 80.0, 99.5],
            "close": [100.0, 100.0, 101.0, 100.0],
        }
    )
    spec = TripleBarrierLabelsSpec(max_holding_period=2, vol_span=1, vol_method="atr")
    targets = triple_barrier_labels(frame, spec)
    # bar 0: bar 1 touches nothing, bar 2 both; it closes above bar 0's close: BUY at bar 2
    assert targets.values[0] == BUY and targets.decided_at[0] == 2
    frame.loc[2, "close"] = 99.0
    assert triple_barrier_labels(frame, spec).values[0] == SELL


def test_cusum_keeps_only_event_bars(bars: pd.DataFrame) -> None:
    every = triple_barrier_labels(bars, TripleBarrierLabelsSpec())
    spec = TripleBarrierLabelsSpec(cusum_threshold=0.01)
    filtered = triple_barrier_labels(bars, spec)
    returns = np.log(bars["close"]).diff().to_numpy()
    events, up, down = [], 0.0, 0.0
    for r in returns:
        if np.isnan(r):
            events.append(False)
            continue
        up, down = max(0.0, up + r - 0.01), min(0.0, down + r + 0.01)
        fired = up > 0.01 or down < -0.01
        if up > 0.01:
            up = 0.0
        elif down < -0.01:
            down = 0.0
        events.append(fired)
    assert filtered.labelled.tolist() == (every.labelled & np.array(events)).tolist()
    assert 0 < filtered.labelled.sum() < every.labelled.sum()
    np.testing.assert_array_equal(filtered.values, every.values)


def test_volatility_of_the_first_bars_is_borrowed_from_bar_vol_span(bars: pd.DataFrame) -> None:
    vol, borrowed = barrier_volatility(bars, "close", 50)
    assert borrowed[0] and not borrowed[50:].any()  # bar 0 has no return
    assert vol[0] == vol[50]
    spec = TripleBarrierLabelsSpec(vol_method="close")
    assert triple_barrier_labels(bars, spec).decided_at[0] >= 50


def test_context_and_forward_return_read_the_return_ahead(bars: pd.DataFrame) -> None:
    close = bars["close"]
    change = (close.shift(-5) / close - 1).to_numpy()
    spec = ContextLabelsSpec(horizon=5, bullish_threshold=0.004, bearish_threshold=-0.006)
    labels = context_labels(close.to_numpy(), spec)
    expected = np.where(change > 0.004, BUY, np.where(change < -0.006, SELL, HOLD))
    assert labels.values[:-5].tolist() == expected[:-5].tolist()
    assert labels.labelled.sum() == len(close) - 5
    returns = forward_return_targets(close.to_numpy(), 5)
    np.testing.assert_allclose(returns.values[:-5], change[:-5])
    assert returns.regression and returns.decided_at[0] == 5
    with pytest.raises(ConfigError, match="bearish_threshold"):
        context_labels(close.to_numpy(), ContextLabelsSpec(bearish_threshold=0.01))


KINDS = [
    ZigzagLabelsSpec(zigzag_threshold=0.02),
    RegimeLabelsSpec(vol_lookback=60),
    TripleBarrierLabelsSpec(),
    TripleBarrierLabelsSpec(vol_method="close", cusum_threshold=0.002),
    ContextLabelsSpec(),
    ForwardReturnLabelsSpec(horizon=7),
]


@pytest.mark.parametrize("spec", KINDS, ids=lambda spec: spec.__struct_config__.tag)
@pytest.mark.parametrize("cut", [300, 517, 760])
def test_a_label_depends_on_no_price_after_its_decided_at(
    bars: pd.DataFrame, spec: object, cut: int
) -> None:
    """Labels decided before ``cut`` are the same when the prices stop at ``cut``."""
    full = compute_targets(spec, bars)  # type: ignore[arg-type]
    short = compute_targets(spec, bars.iloc[:cut])  # type: ignore[arg-type]
    decided = np.flatnonzero(full.labelled[:cut] & (full.decided_at[:cut] < cut))
    assert len(decided) > 50
    kept = decided[short.labelled[decided]]
    assert len(kept) > 0.8 * len(decided)
    np.testing.assert_array_equal(short.values[kept], full.values[kept])
    assert (short.decided_at[kept] == full.decided_at[kept]).all()


def test_uniqueness_is_the_mean_inverse_concurrency() -> None:
    rng = np.random.default_rng(3)
    starts = np.sort(rng.choice(200, size=60, replace=False)).astype(np.int64)
    ends = starts + rng.integers(0, 15, size=60)
    concurrency = np.zeros(230)
    for s, e in zip(starts, ends, strict=True):
        concurrency[s : e + 1] += 1
    brute = np.array(
        [np.mean(1 / concurrency[s : e + 1]) for s, e in zip(starts, ends, strict=True)]
    )
    np.testing.assert_allclose(uniqueness_weights(starts, ends), brute / brute.mean())
    alone = uniqueness_weights(np.array([0, 10]), np.array([5, 12]))
    np.testing.assert_allclose(alone, [1.0, 1.0])


def test_bad_bars_and_kinds_not_computed_are_clear(bars: pd.DataFrame) -> None:
    with pytest.raises(DataError, match="more than vol_span = 50 bars; got 40"):
        triple_barrier_labels(bars.iloc[:40], TripleBarrierLabelsSpec())
    with pytest.raises(DataError, match="'high' column"):
        triple_barrier_labels(bars.drop(columns="high"), TripleBarrierLabelsSpec())


def test_regime_thresholds_are_the_atr_medians_so_far(bars: pd.DataFrame) -> None:
    spec = RegimeLabelsSpec(atr_period=10, macro_atr_mult=3.0, micro_atr_mult=1.0)
    macro, micro = regime_thresholds(bars, spec)
    close, high, low = (bars[c] for c in ("close", "high", "low"))
    true_range = pd.concat(
        [high - low, (high - close.shift()).abs(), (low - close.shift()).abs()], axis=1
    ).max(axis=1)
    atr = true_range.rolling(10).mean()
    for t in (9, 200, 899):
        expected = np.nanmedian(atr[: t + 1]) / np.median(close[: t + 1])
        assert macro[t] == pytest.approx(3.0 * expected)
        assert micro[t] == pytest.approx(expected)
    assert np.isnan(macro[:9]).all()


def test_regime_segments_follow_the_macro_swings_and_volatility_overrides(
    bars: pd.DataFrame,
) -> None:
    spec = RegimeLabelsSpec(vol_lookback=60)
    targets = regime_labels(bars, spec)
    assert targets.class_names == REGIME_NAMES and len(REGIME_NAMES) == 4
    labelled = targets.values[targets.labelled]
    assert set(np.unique(labelled)) <= {0, 1, 2, 3}
    assert {0, 1, 2} <= set(np.unique(labelled))  # up, down and ranging all occur
    assert not targets.labelled[:60].any() and not targets.labelled[-14:].any()
    # with an impossible volatility threshold nothing is volatile; with a tiny one much is
    calm = regime_labels(bars, RegimeLabelsSpec(vol_lookback=60, vol_crisis_threshold=1e9))
    wild = regime_labels(bars, RegimeLabelsSpec(vol_lookback=60, vol_crisis_threshold=0.5))
    assert not (calm.values[calm.labelled] == 3).any()
    assert (wild.values[wild.labelled] == 3).mean() > (labelled == 3).mean()
    keep = calm.labelled & (calm.values != targets.values)
    assert (targets.values[keep] == 3).all()  # volatility is the only difference


def test_progression_reads_higher_lows_and_lower_highs() -> None:
    from ktrdr_lib.features.targets import _progressive

    rising = np.array([10.0, 12.0, 11.0, 13.0, 12.0, 14.0])  # lows 10, 11, 12
    assert _progressive(rising, True, 0.5)
    assert not _progressive(rising[::-1].copy(), True, 0.5)  # its lows fall
    falling = np.array([14.0, 12.0, 13.0, 11.0, 12.0, 10.0])  # highs 14, 13, 12
    assert _progressive(falling, False, 1.0)
    assert not _progressive(np.array([1.0, 2.0, 1.5]), True, 0.0)  # fewer than four pivots
