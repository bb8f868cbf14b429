"""What a strategy's ``training.labels`` asks the model to learn, per bar of one symbol.

Every label kind gives the same :class:`Targets`: a value per bar (a class id, or a return for
regression), which bars have one, and ``decided_at``, the last bar whose prices the value
depends on. The chronological split purges a training row whose ``decided_at`` falls in a later
period, so no training label is known only from validation or test prices.

- ``zigzag``: BUY / HOLD / SELL by the swing a bar lies in (:mod:`~ktrdr_lib.features.labels`).
- ``triple_barrier``: BUY when the price first reaches ``close · (1 + pt_multiplier · vol)``,
  SELL when it first falls to ``close · (1 − sl_multiplier · vol)``, within
  ``max_holding_period`` bars; if neither, the return at the time barrier decides (HOLD when it
  is under ``vol · √max_holding_period / 2``). A bar is labelled once that is decided: near the
  end of the data only bars whose barrier was already touched. ``vol`` is an EWM of
  ``(high − low) / close`` (``atr``) or the EWM standard deviation of log returns (``close``)
  over ``vol_span`` bars.
  With ``cusum_threshold`` only CUSUM event bars (a symmetric CUSUM of log returns
  reaching the threshold) are labelled. The split also embargoes 1 % of the rows before each
  later period.
- ``context``: the return over ``horizon`` bars: above ``bullish_threshold`` BUY (bullish),
  below ``bearish_threshold`` SELL (bearish), else HOLD (neutral).
- ``forward_return``: the return over ``horizon`` bars itself (a regression target).
- ``regime``: trending up / trending down / ranging / volatile (:func:`regime_labels`).

Example:
    >>> import numpy as np, pandas as pd
    >>> close = np.array([100.0, 101.0, 103.0, 102.0, 99.0, 100.0])
    >>> t = forward_return_targets(close, 2)
    >>> t.values.round(3).tolist()[:4], t.labelled.tolist(), t.decided_at.tolist()[:4]
    ([0.03, 0.01, -0.039, -0.02], [True, True, True, True, False, False], [2, 3, 4, 5])
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

from ktrdr_lib.errors import ConfigError, DataError
from ktrdr_lib.features.labels import BUY, HOLD, LABEL_NAMES, SELL, zigzag_labels
from ktrdr_lib.strategy.label_kinds import (
    ContextLabelsSpec,
    ForwardReturnLabelsSpec,
    LabelsSpec,
    RegimeLabelsSpec,
    TripleBarrierLabelsSpec,
    ZigzagLabelsSpec,
)

__all__ = [
    "REGIME_NAMES",
    "TRIPLE_BARRIER_EMBARGO",
    "Targets",
    "barrier_volatility",
    "compute_targets",
    "context_labels",
    "forward_return_targets",
    "regime_labels",
    "regime_thresholds",
    "triple_barrier_labels",
    "uniqueness_weights",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

TRIPLE_BARRIER_EMBARGO = 0.01
"""Share of the usable rows dropped before each later period of a triple-barrier split."""


@dataclass(frozen=True)
class Targets:
    """One symbol's targets.

    Attributes:
        values: per bar, an int64 class id (0 BUY, 1 HOLD, 2 SELL) or, for ``forward_return``,
            the float64 return; meaningless where ``labelled`` is false.
        labelled: per bar, whether it has a target.
        decided_at: per bar, the last bar whose prices the target depends on.
        span_end: per bar, the last bar of the position the label describes (the barrier
            touch or the time barrier), for uniqueness weights; ``None`` for other kinds.
        embargo: share of the usable rows dropped before each later period of the split.
        regression: the values are returns, not classes.
        class_names: the classes the values index (BUY, HOLD, SELL for every kind but a
            regime's).
    """

    values: npt.NDArray[np.int64] | FloatArray
    labelled: npt.NDArray[np.bool_]
    decided_at: IntArray
    span_end: IntArray | None = None
    embargo: float = 0.0
    regression: bool = False
    class_names: tuple[str, ...] = LABEL_NAMES


def _prices(bars: pd.DataFrame, column: str, kind: str) -> FloatArray:
    if column not in bars.columns:
        raise DataError(
            f"{kind} labels need the {column!r} column; the bars have {list(bars.columns)}"
        )
    values = np.ascontiguousarray(bars[column].to_numpy(dtype=np.float64))
    bad = np.flatnonzero(~(np.isfinite(values) & (values > 0)))
    if bad.size:
        raise DataError(
            f"{kind} labels need finite, positive {column} prices; bar {int(bad[0])} has "
            f"{values[bad[0]]} ({bad.size} such bars). Clean or drop those bars."
        )
    return values


def _forward_return(close: FloatArray, horizon: int) -> FloatArray:
    out = np.full(close.shape[0], np.nan)
    if close.shape[0] > horizon:
        out[:-horizon] = close[horizon:] / close[:-horizon] - 1.0
    return out


def _ahead(n: int, horizon: int) -> tuple[npt.NDArray[np.bool_], IntArray]:
    bars = np.arange(n, dtype=np.int64)
    return bars < n - horizon, np.minimum(bars + horizon, n - 1)


def forward_return_targets(close: npt.ArrayLike, horizon: int) -> Targets:
    """``(close[t + horizon] − close[t]) / close[t]``; the last ``horizon`` bars have none.

    Raises:
        DataError: a close is not finite and positive.
    """
    prices = _prices(pd.DataFrame({"close": np.asarray(close, dtype=np.float64)}), "close", "")
    labelled, decided_at = _ahead(prices.shape[0], horizon)
    values = np.nan_to_num(_forward_return(prices, horizon))
    return Targets(values=values, labelled=labelled, decided_at=decided_at, regression=True)


def context_labels(close: npt.ArrayLike, spec: ContextLabelsSpec) -> Targets:
    """The return over ``horizon`` bars as a class: above ``bullish_threshold`` BUY, below
    ``bearish_threshold`` SELL, else HOLD.

    Raises:
        ConfigError: ``bearish_threshold`` is not below ``bullish_threshold``.
    """
    if not spec.bearish_threshold < spec.bullish_threshold:
        raise ConfigError(
            f"training.labels: bearish_threshold ({spec.bearish_threshold}) must be below "
            f"bullish_threshold ({spec.bullish_threshold})"
        )
    prices = _prices(pd.DataFrame({"close": np.asarray(close, dtype=np.float64)}), "close", "")
    change = _forward_return(prices, spec.horizon)
    values = np.full(prices.shape[0], HOLD, dtype=np.int64)
    values[change > spec.bullish_threshold] = BUY
    values[change < spec.bearish_threshold] = SELL
    labelled, decided_at = _ahead(prices.shape[0], spec.horizon)
    return Targets(values=values, labelled=labelled, decided_at=decided_at)


def barrier_volatility(
    bars: pd.DataFrame, method: str, span: int
) -> tuple[FloatArray, npt.NDArray[np.bool_]]:
    """The triple barrier's volatility per bar, and which bars borrowed it from bar ``span``.

    ``atr``: ``ewm(span, adjust=True).mean()`` of ``(high − low) / close``; ``close``:
    ``ewm(span, adjust=True).std()`` of the log returns. Both use bars up to ``t`` only. A
    missing or zero value in the first ``span`` bars takes the value of bar ``span`` (so those
    bars depend on prices up to it).
    """
    close = _prices(bars, "close", "triple_barrier")
    if method == "atr":
        span_of_bar = (_prices(bars, "high", "triple_barrier") - bars["low"].to_numpy()) / close
        vol = pd.Series(span_of_bar).ewm(span=span, adjust=True).mean().to_numpy(copy=True)
    else:
        returns = np.diff(np.log(close), prepend=np.nan)
        vol = pd.Series(returns).ewm(span=span, adjust=True).std().to_numpy(copy=True)
    borrowed = np.zeros(close.shape[0], dtype=bool)
    if close.shape[0] > span:
        early = np.arange(close.shape[0]) < span
        borrowed = early & ~(np.isfinite(vol) & (vol > 0))
        vol[borrowed] = vol[span]
    return vol, borrowed


def triple_barrier_labels(bars: pd.DataFrame, spec: TripleBarrierLabelsSpec) -> Targets:
    """BUY / HOLD / SELL by the first of three barriers (see the module docstring).

    Raises:
        DataError: the bars lack high, low or close, or hold a non-positive price; or there
            are no more bars than ``vol_span``.
    """
    horizon = spec.max_holding_period
    n = len(bars)
    if n <= spec.vol_span:
        raise DataError(
            f"triple_barrier labels need more than vol_span = {spec.vol_span} bars; got {n}. "
            "Use a longer date range or a smaller vol_span."
        )
    close = _prices(bars, "close", "triple_barrier")
    high = _prices(bars, "high", "triple_barrier")
    low = _prices(bars, "low", "triple_barrier")
    vol, borrowed = barrier_volatility(bars, spec.vol_method, spec.vol_span)
    upper = close * (1.0 + spec.pt_multiplier * vol)
    lower = close * (1.0 - spec.sl_multiplier * vol)

    from ktrdr_lib.features._label_kernels import cusum_events, first_barrier

    side, until = first_barrier(high, low, close, upper, lower, horizon)
    final = _forward_return(close, horizon)
    timed = (side == 0) & (until >= 0)
    side[timed & (final >= vol * math.sqrt(horizon) * 0.5)] = 1
    side[timed & (final <= -vol * math.sqrt(horizon) * 0.5)] = -1
    values = np.where(side > 0, BUY, np.where(side < 0, SELL, HOLD)).astype(np.int64)

    labelled = until >= 0  # decided: a barrier touched, or the time barrier reached
    if spec.cusum_threshold is not None:  # only CUSUM event bars are labelled
        returns = np.diff(np.log(close), prepend=np.nan)
        labelled &= cusum_events(returns, np.full(n, spec.cusum_threshold))
    decided_at = np.where(until >= 0, until, n - 1)
    decided_at = np.where(borrowed, np.maximum(decided_at, spec.vol_span), decided_at)
    return Targets(
        values=values,
        labelled=labelled,
        decided_at=decided_at.astype(np.int64),
        span_end=np.where(until >= 0, until, n - 1).astype(np.int64),
        embargo=TRIPLE_BARRIER_EMBARGO,
    )


def uniqueness_weights(starts: IntArray, ends: IntArray) -> FloatArray:
    """Each label's average uniqueness: the mean, over the bars ``start..end`` of its position,
    of 1 / (how many of these labels' positions hold that bar).

    Args:
        starts: each label's bar, ascending.
        ends: the last bar of each label's position (``>= start``).

    Returns:
        float64 weights in (0, 1], scaled to mean 1.
    """
    if starts.shape[0] == 0:
        return np.empty(0)
    first = int(starts.min())
    size = int(ends.max()) - first + 2
    delta = np.zeros(size)
    np.add.at(delta, starts - first, 1.0)
    np.add.at(delta, ends - first + 1, -1.0)
    concurrency = np.cumsum(delta)[:-1]
    inverse = np.where(concurrency > 0, 1.0 / np.maximum(concurrency, 1.0), 0.0)
    running = np.concatenate([[0.0], np.cumsum(inverse)])
    weights: FloatArray = (running[ends - first + 1] - running[starts - first]) / (
        ends - starts + 1
    )
    scaled: FloatArray = weights / weights.mean()
    return scaled


REGIME_NAMES: tuple[str, ...] = ("trending_up", "trending_down", "ranging", "volatile")
"""The regime classes, in class-id order."""

_TRENDING_UP, _TRENDING_DOWN, _RANGING, _VOLATILE = range(4)


def regime_thresholds(bars: pd.DataFrame, spec: RegimeLabelsSpec) -> tuple[FloatArray, FloatArray]:
    """The macro and micro swing thresholds per bar: ``macro_atr_mult`` (``micro_atr_mult``) ×
    the median ATR so far / the median close so far (ATR = the ``atr_period``-bar simple
    average of the true range). NaN until the first ATR."""
    close = _prices(bars, "close", "regime")
    high = _prices(bars, "high", "regime")
    low = _prices(bars, "low", "regime")
    previous = np.concatenate([[np.nan], close[:-1]])
    true_range = np.fmax(high - low, np.fmax(np.abs(high - previous), np.abs(low - previous)))
    atr = pd.Series(true_range).rolling(spec.atr_period).mean()
    scale = (atr.expanding().median() / pd.Series(close).expanding().median()).to_numpy()
    return spec.macro_atr_mult * scale, spec.micro_atr_mult * scale


def _progressive(prices: FloatArray, rising: bool, tolerance: float) -> bool:
    """Whether swing pivots progress: for a rising segment its lows rise, for a falling one its
    highs fall, in at least ``tolerance`` of consecutive pairs (four pivots at least)."""
    n = prices.shape[0]
    if n < 4:
        return False
    before = np.concatenate([[np.nan], prices[:-1]])
    after = np.concatenate([prices[1:], [np.nan]])
    lows = np.zeros(n, dtype=bool)
    highs = np.zeros(n, dtype=bool)
    lows[1:-1] = (prices[1:-1] < before[1:-1]) & (prices[1:-1] < after[1:-1])
    highs[1:-1] = (prices[1:-1] > before[1:-1]) & (prices[1:-1] > after[1:-1])
    lows[0], highs[0] = prices[0] < prices[1], not prices[0] < prices[1]
    lows[-1], highs[-1] = prices[-1] < prices[-2], not prices[-1] < prices[-2]
    picked = prices[lows] if rising else prices[highs]
    if picked.shape[0] < 2:
        return False
    steps = np.diff(picked)
    hits = (steps > 0) if rising else (steps < 0)
    return bool(hits.mean() >= tolerance)


def regime_labels(bars: pd.DataFrame, spec: RegimeLabelsSpec) -> Targets:
    """Trending up / trending down / ranging / volatile, from two ATR-scaled swing scales.

    The macro swings (``macro_atr_mult``) cut the bars into up and down segments; a segment is
    trending when the micro swings (``micro_atr_mult``) inside it progress (higher lows in an
    up segment, lower highs in a down one, in at least ``progression_tolerance`` of pairs),
    else ranging. A bar whose realised volatility over the next ``atr_period`` bars exceeds
    ``vol_crisis_threshold`` times that of the ``vol_lookback`` bars before it is volatile
    whatever its segment. The thresholds use the medians of the bars so far (KTRDR took them
    over the whole series, which would make every label depend on the test period's prices).

    A label is decided when its segment's closing swing is confirmed (and its micro swings,
    and its forward volatility window has passed); the first ``vol_lookback`` bars, the last
    ``atr_period`` and bars after the last swing have none.

    Raises:
        DataError: the bars lack high, low or close, or hold a non-positive price.
    """
    from ktrdr_lib.features._label_kernels import swing_pivots

    close = _prices(bars, "close", "regime")
    n = close.shape[0]
    macro_threshold, micro_threshold = regime_thresholds(bars, spec)
    macro, macro_confirmed = swing_pivots(close, macro_threshold)
    micro, micro_confirmed = swing_pivots(close, micro_threshold)
    micro_decided = np.where(micro_confirmed >= 0, micro_confirmed, n - 1)
    values = np.full(n, _RANGING, dtype=np.int64)
    labelled = np.zeros(n, dtype=bool)
    decided_at = np.full(n, n - 1, dtype=np.int64)
    for i in range(len(macro) - 1):  # one step per swing, not per bar
        start, end = int(macro[i]), int(macro[i + 1])
        inside = slice(np.searchsorted(micro, start), np.searchsorted(micro, end, side="right"))
        rising = bool(close[end] > close[start])
        trend = _TRENDING_UP if rising else _TRENDING_DOWN
        progressive = _progressive(close[micro[inside]], rising, spec.progression_tolerance)
        closing = int(macro_confirmed[i + 1]) if macro_confirmed[i + 1] >= 0 else n - 1
        micro_last = int(micro_decided[inside].max()) if len(micro[inside]) else closing
        values[start : end + 1] = trend if progressive else _RANGING
        decided_at[start : end + 1] = max(closing, micro_last)
        labelled[start : end + 1] = True

    returns = np.diff(np.log(close))
    history = pd.Series(returns).rolling(spec.vol_lookback).std().to_numpy()
    ahead = pd.Series(returns).rolling(spec.atr_period).std().to_numpy()
    bars_index = np.arange(n)
    measurable = (bars_index >= spec.vol_lookback) & (bars_index < n - spec.atr_period)
    ratio = np.zeros(n)
    rows = bars_index[measurable]
    past, future = history[rows - 1], ahead[rows + spec.atr_period - 1]
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio[rows] = np.where(past > 0, future / past, 0.0)
    values[labelled & (ratio > spec.vol_crisis_threshold)] = _VOLATILE
    labelled &= measurable
    decided_at = np.maximum(decided_at, np.minimum(bars_index + spec.atr_period, n - 1))
    return Targets(
        values=values, labelled=labelled, decided_at=decided_at, class_names=REGIME_NAMES
    )


def compute_targets(labels: LabelsSpec, bars: pd.DataFrame) -> Targets:
    """The targets ``labels`` asks for, on one symbol's base-timeframe bars.

    Raises:
        ConfigError: a parameter the kind cannot use (context thresholds out of order).
        DataError: the bars cannot be labelled (missing columns, bad prices, too few bars).
    """
    if isinstance(labels, ZigzagLabelsSpec):
        zz = zigzag_labels(_prices(bars, "close", "zigzag"), labels.zigzag_threshold)
        last_extreme = int(zz.extremes[-1]) if len(zz.extremes) else -1
        labelled = np.arange(len(bars)) <= last_extreme
        return Targets(values=zz.labels, labelled=labelled, decided_at=zz.decided_at)
    if isinstance(labels, TripleBarrierLabelsSpec):
        return triple_barrier_labels(bars, labels)
    if isinstance(labels, ContextLabelsSpec):
        return context_labels(_prices(bars, "close", "context"), labels)
    if isinstance(labels, ForwardReturnLabelsSpec):
        return forward_return_targets(_prices(bars, "close", "forward_return"), labels.horizon)
    return regime_labels(bars, labels)
