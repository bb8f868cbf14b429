"""Label-aware baselines (no model) and the signal economics of a position series."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from ktrdr_lib.errors import DataError
from ktrdr_lib.features.baselines import last_confirmed_side, swing_state, swing_state_retrace
from ktrdr_lib.features.labels import zigzag_labels
from ktrdr_lib.training.economics import (
    periods_per_year,
    positions_from_classes,
    signal_economics,
)

BUY, HOLD, SELL = 0, 1, 2


def test_the_swing_state_rule_by_hand() -> None:
    # 5 %: the low 100 is confirmed at bar 2 (110 >= 105); the high 110 at bar 5 (103 <= 104.5).
    close = np.array([100.0, 104.0, 110.0, 107.0, 108.0, 103.0, 101.0, 104.0])
    assert swing_state(close, 0.05).tolist() == [HOLD, HOLD, BUY, BUY, BUY, SELL, SELL, SELL]
    # Half the threshold (2.5 %) given back from the running extreme turns the prediction:
    # 107 is 2.7 % under 110 (SELL), 108 only 1.8 % (BUY again), 104 is 3.0 % over 101 (BUY).
    assert swing_state_retrace(close, 0.05).tolist() == [
        HOLD,
        HOLD,
        BUY,
        SELL,
        BUY,
        SELL,
        SELL,
        BUY,
    ]
    # The true labels: the upswing bar 1 is BUY; bars after the last extreme (110, bar 2)
    # stay HOLD until a later extreme is confirmed, which never happens in eight bars.
    truth = zigzag_labels(close, 0.05).labels
    assert truth.tolist() == [HOLD, BUY, HOLD, HOLD, HOLD, HOLD, HOLD, HOLD]


def test_the_last_confirmed_side_by_hand() -> None:
    # bar 0 BUY decided at 2, bar 2 SELL decided at 4, bar 3 BUY decided at 3.
    labels = [BUY, HOLD, SELL, BUY, HOLD]
    decided = [2, 1, 4, 3, 4]
    assert last_confirmed_side(labels, decided).tolist() == [HOLD, HOLD, BUY, BUY, SELL]


def _walk(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.01, n)))


@pytest.mark.parametrize("rule", [swing_state, swing_state_retrace])
def test_a_swing_rule_reads_no_bar_after_the_one_it_predicts(rule: object) -> None:
    close = _walk(600, 3)
    full = rule(close, 0.03)  # type: ignore[operator]
    for cut in range(0, 600, 7):
        assert rule(close[: cut + 1], 0.03).tolist() == full[: cut + 1].tolist()  # type: ignore[operator]


def test_the_last_confirmed_side_reads_no_label_decided_later() -> None:
    rng = np.random.default_rng(5)
    labels = rng.integers(0, 3, 300)
    decided = np.arange(300) + rng.integers(0, 20, 300)
    full = last_confirmed_side(labels, decided)
    for t in range(0, 300, 11):
        later = decided > t
        changed = labels.copy()
        changed[later] = (changed[later] + 1) % 3  # labels nobody knew at t
        assert last_confirmed_side(changed, decided)[t] == full[t]


def test_signal_economics_of_a_ten_bar_case_with_costs_by_hand() -> None:
    positions = np.array([1, 1, -1, -1, 0, 0, 1, 1, 1, 0])
    returns = np.array([0.01, -0.02, 0.03, -0.01, 0.02, 0.0, 0.01, 0.02, -0.01, np.nan])
    figures = signal_economics(positions, returns, round_trip_cost=0.002, periods_per_year=252)
    # The last bar has no next bar: 9 bars. Units changed 1, 0, 2, 0, 1, 0, 1, 0, 0 at 0.001.
    net = [0.009, -0.02, -0.032, 0.01, -0.001, 0.0, 0.009, 0.02, -0.01]
    equity = np.cumprod([1 + x for x in net])
    assert figures.bars == 9
    assert figures.costs == pytest.approx(0.005)
    assert figures.total_return == pytest.approx(equity[-1] - 1, abs=1e-6)
    assert figures.annualised_return == pytest.approx(equity[-1] ** (252 / 9) - 1, abs=1e-6)
    peak = np.maximum.accumulate(equity)
    assert figures.max_drawdown == pytest.approx(float(np.max(1 - equity / peak)), abs=1e-6)
    assert figures.max_drawdown == pytest.approx(1 - equity[2] / 1.009, abs=1e-6)
    mean, std = np.mean(net), np.std(net, ddof=1)
    assert figures.sharpe == pytest.approx(mean / std * math.sqrt(252), abs=1e-4)
    assert figures.hit_rate == pytest.approx(4 / 7, abs=1e-4)  # in a position 7 bars, 4 gained
    assert figures.turnover == pytest.approx(5 / 9, abs=1e-6)
    assert figures.exposure == pytest.approx(7 / 9, abs=1e-4)
    assert figures.round_trip_cost == 0.002


def test_a_position_earns_the_next_bar_only() -> None:
    # A position that knows the next bar's direction earns every move; one lagged a bar
    # (what it would take to avoid look-ahead, reversed) earns nothing on a zig-zag.
    close = np.array([100.0, 101.0, 100.0, 101.0, 100.0, 101.0])
    nxt = np.append(close[1:] / close[:-1] - 1, np.nan)
    ahead = np.sign(np.nan_to_num(nxt))
    figures = signal_economics(ahead, nxt, round_trip_cost=0.0, periods_per_year=None)
    assert figures.hit_rate == 1.0 and figures.total_return > 0.04
    assert figures.sharpe is None and figures.annualised_return is None
    with pytest.raises(DataError, match="no test bar has a next-bar return"):
        signal_economics([1.0], [np.nan], round_trip_cost=0.0, periods_per_year=252)
    with pytest.raises(DataError, match="2 positions but 3 next-bar returns"):
        signal_economics([1.0, 1.0], [0.1, 0.1, 0.1], round_trip_cost=0.0, periods_per_year=1)


def test_periods_per_year_follow_the_bars_own_calendar() -> None:
    weekdays = pd.bdate_range("2024-01-01", "2024-12-31")
    assert periods_per_year(weekdays) == pytest.approx(261, rel=0.01)
    hourly = pd.date_range("2024-01-01", periods=24 * 30, freq="h")
    assert periods_per_year(hourly) == pytest.approx(24 * 365.25, rel=0.01)
    assert periods_per_year(weekdays[:1]) is None
    two_symbols = weekdays.append(weekdays)  # rows of two symbols on one calendar
    assert periods_per_year(two_symbols) == pytest.approx(periods_per_year(weekdays))


def test_positions_from_classes_and_a_confidence_threshold() -> None:
    classes = np.array([BUY, HOLD, SELL, BUY])
    probs = np.array([[0.9, 0.05, 0.05], [0.2, 0.6, 0.2], [0.3, 0.2, 0.5], [0.4, 0.3, 0.3]])
    assert positions_from_classes(classes).tolist() == [1.0, 0.0, -1.0, 1.0]
    gated = positions_from_classes(classes, probs, confidence_threshold=0.5)
    assert gated.tolist() == [1.0, 0.0, -1.0, 0.0]
