"""Momentum oscillators: RSI, stochastic, Williams %R, ROC, momentum, CCI, Fisher transform, RVI.

KTRDR's definitions (section 2.2 of the strategy-format facts). RSI, ROC, momentum and CCI
are TA-Lib's; the stochastic (slow %K with ``smooth_k``, and %D) and Williams %R are TA-Lib's
once their windows are full, and like KTRDR they fill what their raw line lacks (warm-up, a
flat window) with the neutral 50 / -50 instead of NaN. The Fisher transform is KTRDR's
smoothed form (not Ehlers' recursion) and the RVI averages with simple means.

Where a denominator is zero (a flat market) an oscillator gives its neutral value: RSI and
%K 50, Williams %R -50, CCI, RVI and the Fisher transform 0.
"""

from __future__ import annotations

import msgspec
import numpy as np

from ktrdr_lib.features.indicators._kernels import (
    ArrayLike,
    FloatArray,
    as_float,
    check_period,
    divide,
    ema_settling,
    first_difference,
    lagged,
    lagged_difference,
    partial_rolling_mean,
    price_range_position,
    rolling_extreme,
    rolling_mean,
    rolling_sum,
    typical_price,
    wilder,
    wilder_settling,
    window_spread,
)
from ktrdr_lib.features.indicators.averages import exponential_mean
from ktrdr_lib.features.registry import SOURCE, IndicatorDef, InputColumn, period

__all__ = [
    "ENTRIES",
    "cci",
    "fisher_transform",
    "momentum",
    "roc",
    "rsi",
    "rvi",
    "stochastic",
    "williams_r",
]

# Lambert's constant in the commodity channel index.
_CCI_SCALE = 0.015
# The Fisher transform's input is kept inside (-1, 1) by this bound.
_FISHER_CLIP = 0.999


def rsi(close: ArrayLike, period: int = 14) -> FloatArray:
    """Relative strength index with Wilder smoothing, 0-100 (TA-Lib's ``RSI``).

    Args:
        close: prices.
        period: smoothing period (>= 1).

    Returns:
        RSI, NaN for the first ``period`` bars; 100 where prices only rose, 50 where they did
        not move at all.

    Example:
        >>> rsi([1.0, 2.0, 3.0, 4.0], 2).tolist()
        [nan, nan, 100.0, 100.0]
    """
    check_period("period", period)
    prices = as_float(close)
    change = first_difference(prices)
    average_gain = wilder(np.maximum(change, 0.0), period, first_valid=1, in_place=True)
    # Losses smoothed as negative numbers: negating afterwards is exact (the recursion is
    # linear), and it reuses the change array.
    average_loss = wilder(np.minimum(change, 0.0, out=change), period, 1, in_place=True)
    total = np.subtract(average_gain, average_loss, out=average_loss)
    average_gain *= 100.0
    return divide(average_gain, total, 50.0, out=average_gain)


def _fill_nan(values: FloatArray, neutral: float) -> FloatArray:
    np.copyto(values, neutral, where=np.isnan(values))
    return values


def stochastic(
    high: ArrayLike,
    low: ArrayLike,
    close: ArrayLike,
    k_period: int = 14,
    d_period: int = 3,
    smooth_k: int = 3,
) -> tuple[FloatArray, FloatArray]:
    """Stochastic oscillator, 0-100: the slow %K and its average %D (KTRDR's definition).

    The raw %K is ``100 (close - lowest low) / (highest high - lowest low)`` over ``k_period``
    bars, 50 where it is undefined (the first ``k_period - 1`` bars, a flat window, a gap in
    the data). %K is its mean over ``smooth_k`` bars and %D the mean of %K over ``d_period``
    bars, both over fewer bars at the start, so nothing is NaN. Once every window is full
    (bar ``k_period + smooth_k + d_period - 3``) they are TA-Lib's ``STOCH`` slow %K and %D.

    Args:
        high: bar highs.
        low: bar lows.
        close: bar closes.
        k_period: look-back for the highest high and lowest low (>= 1).
        d_period: window of the %D average (>= 1).
        smooth_k: window of the %K average (>= 1; 1 gives the raw, fast %K).

    Returns:
        ``(k, d)``.
    """
    check_period("k_period", k_period)
    check_period("d_period", d_period)
    check_period("smooth_k", smooth_k)
    above_low, span = price_range_position(as_float(high), as_float(low), as_float(close), k_period)
    above_low *= 100.0
    raw_k = _fill_nan(divide(above_low, span, 50.0, out=above_low), 50.0)
    k = partial_rolling_mean(raw_k, smooth_k)
    return k, partial_rolling_mean(k, d_period)


def williams_r(high: ArrayLike, low: ArrayLike, close: ArrayLike, period: int = 14) -> FloatArray:
    """Williams %R: ``-100 (highest high - close) / (highest high - lowest low)``, -100..0.

    Like KTRDR, -50 where it is undefined (the first ``period - 1`` bars, a flat window, a
    gap in the data); TA-Lib's ``WILLR`` elsewhere.

    Args:
        high: bar highs.
        low: bar lows.
        close: bar closes.
        period: look-back (>= 1).

    Returns:
        %R, never NaN.
    """
    check_period("period", period)
    above_low, span = price_range_position(as_float(high), as_float(low), as_float(close), period)
    above_low *= 100.0
    percent_r = divide(above_low, span, 50.0, out=above_low)
    percent_r -= 100.0
    return _fill_nan(percent_r, -50.0)


def roc(price: ArrayLike, period: int = 10) -> FloatArray:
    """Rate of change in percent: ``100 (price / price n bars ago - 1)`` (TA-Lib's ``ROC``).

    Args:
        price: prices.
        period: look-back in bars (>= 1).

    Returns:
        ROC, NaN for the first ``period`` bars and where the earlier price is 0.
    """
    check_period("period", period)
    prices = as_float(price)
    change = lagged_difference(prices, period)
    change *= 100.0
    return divide(change, lagged(prices, period), np.nan, out=change)


def momentum(price: ArrayLike, period: int = 10) -> FloatArray:
    """Momentum: price minus the price ``period`` bars ago (TA-Lib's ``MOM``).

    Args:
        price: prices.
        period: look-back in bars (>= 1).

    Returns:
        Momentum in price units, NaN for the first ``period`` bars.
    """
    check_period("period", period)
    return lagged_difference(as_float(price), period)


def cci(high: ArrayLike, low: ArrayLike, close: ArrayLike, period: int = 20) -> FloatArray:
    """Commodity channel index: ``(tp - SMA(tp)) / (0.015 mean |tp - SMA(tp)|)`` (TA-Lib's).

    ``tp`` is the typical price ``(high + low + close) / 3``.

    Args:
        high: bar highs.
        low: bar lows.
        close: bar closes.
        period: window length (>= 1).

    Returns:
        CCI, NaN for the first ``period - 1`` bars; 0 where the window is flat.
    """
    check_period("period", period)
    typical = typical_price(as_float(high), as_float(low), as_float(close))
    # typical - mean = -(mean offset from the window's last value, which is ``typical``).
    mean_offset, deviation = window_spread(typical, period, "mean_abs_deviation")
    deviation *= -_CCI_SCALE
    return divide(mean_offset, deviation, 0.0, out=mean_offset)


def fisher_transform(
    high: ArrayLike, low: ArrayLike, period: int = 10, smoothing: int = 3
) -> tuple[FloatArray, FloatArray]:
    """Fisher transform of the bar's mid-point within its range, smoothed (KTRDR's form).

    ``v = 2 (mid - lowest low) / (highest high - lowest low) - 1`` over ``period`` bars, with
    ``mid = (high + low) / 2``, 0 for a flat window, clipped to ±0.999; the transform
    ``0.5 ln((1 + v) / (1 - v))`` is smoothed by an EMA over ``smoothing`` bars seeded with its
    first value (pandas ``ewm(adjust=False)``). This is not Ehlers' recursive form.

    Args:
        high: bar highs.
        low: bar lows.
        period: look-back for the highest high and lowest low (>= 1).
        smoothing: EMA span (>= 1).

    Returns:
        ``(fisher, signal)``: the signal is the previous bar's fisher. NaN for the first
        ``period - 1`` bars (the signal one more).
    """
    check_period("period", period)
    check_period("smoothing", smoothing)
    highs, lows = as_float(high), as_float(low)
    highest = rolling_extreme(highs, period, np.maximum)
    lowest = rolling_extreme(lows, period, np.minimum)
    span = np.subtract(highest, lowest, out=highest)
    position = np.add(highs, lows)
    position *= 0.5
    position -= lowest
    position *= 2.0
    position = divide(position, span, 1.0, out=position)  # flat window: 1 - 1 = 0
    position -= 1.0
    np.clip(position, -_FISHER_CLIP, _FISHER_CLIP, out=position)
    fisher = np.arctanh(position, out=position)  # 0.5 ln((1 + v) / (1 - v))
    # pandas' EMA starts at the first value and steps over gaps; so does exponential_mean.
    fisher[period - 1 :] = exponential_mean(
        fisher[period - 1 :], 2.0 / (smoothing + 1), adjust=False
    )
    return fisher, lagged(fisher, 1)


def _symmetric_weighting(values: FloatArray) -> FloatArray:
    """``x[t-3] + 2 x[t-2] + 2 x[t-1] + x[t]`` (the sum of three pair sums), NaN for the first
    3 bars; the RVI's ratio cancels the weights' total, 6."""
    out = np.empty(values.shape[0])
    out[:3] = np.nan
    if values.shape[0] > 3:
        pairs = np.add(values[1:], values[:-1])
        weighted = np.add(pairs[1:-1], pairs[:-2], out=out[3:])
        weighted += pairs[2:]
    return out


def rvi(
    open_: ArrayLike,
    high: ArrayLike,
    low: ArrayLike,
    close: ArrayLike,
    period: int = 10,
    signal_period: int = 4,
) -> tuple[FloatArray, FloatArray]:
    """Relative vigour index: the close-open move against the high-low range (KTRDR's form).

    Both ``close - open`` and ``high - low`` are weighted over four bars (1, 2, 2, 1) / 6 and
    then averaged over ``period`` bars; the RVI is the ratio of the two averages, its signal
    the simple average of the RVI over ``signal_period`` bars.

    Args:
        open_: bar opens.
        high: bar highs.
        low: bar lows.
        close: bar closes.
        period: averaging window (>= 1).
        signal_period: signal window (>= 1).

    Returns:
        ``(rvi, signal)``, NaN for the first ``period + 2`` bars (the signal
        ``signal_period - 1`` more); 0 where the bars have no range at all.
    """
    check_period("period", period)
    check_period("signal_period", signal_period)
    move = np.subtract(as_float(close), as_float(open_))
    bar_range = np.subtract(as_float(high), as_float(low))
    # The ratio of the averages is the ratio of the window sums.
    vigour = rolling_sum(_symmetric_weighting(move), period, first_valid=3)
    spread = rolling_sum(_symmetric_weighting(bar_range), period, first_valid=3)
    ratio = divide(vigour, spread, 0.0, out=vigour)
    return ratio, rolling_mean(ratio, signal_period, first_valid=period + 2)


_HLC: tuple[InputColumn, ...] = ("high", "low", "close")


def _up_to(high: int) -> msgspec.Meta:
    return msgspec.Meta(ge=1, le=high)


def _stochastic_columns(k_period: int, d_period: int, smooth_k: int) -> dict[str, str]:
    return {
        f"Stochastic_K_{k_period}_{smooth_k}": "k",
        f"Stochastic_D_{k_period}_{d_period}_{smooth_k}": "d",
    }


def _rvi_columns(period: int, signal_period: int) -> dict[str, str]:
    return {
        f"RVI_{period}_{signal_period}_RVI": "rvi",
        f"RVI_{period}_{signal_period}_Signal": "signal",
    }


ENTRIES: tuple[IndicatorDef, ...] = (
    IndicatorDef(
        name="rsi",
        summary="RSI 0-100 (Wilder smoothing)",
        inputs=(SOURCE,),
        parameters=(period(default=14, bounds=msgspec.Meta(ge=2, le=100)),),
        outputs=("rsi",),
        compute=rsi,
        warmup=lambda period: period + wilder_settling(period),
        reference="talib.RSI(source, period)",
    ),
    IndicatorDef(
        name="stochastic",
        summary="slow %K 0-100 (raw %K averaged over smooth_k bars); also %D",
        inputs=_HLC,
        parameters=(
            period("k_period", 14, bounds=_up_to(100)),
            period("d_period", 3, bounds=_up_to(20)),
            period("smooth_k", 3, bounds=_up_to(20)),
        ),
        outputs=("k", "d"),
        compute=stochastic,
        warmup=lambda k_period, d_period, smooth_k: k_period + smooth_k + d_period - 3,
        aliases=("stoch",),
        reference="talib.STOCH(high, low, close, k_period, smooth_k, 0, d_period, 0)",
        technical_columns=_stochastic_columns,
    ),
    IndicatorDef(
        name="williamsr",
        summary="Williams %R, -100..0",
        inputs=_HLC,
        parameters=(period(default=14, bounds=_up_to(100)),),
        outputs=("williamsr",),
        compute=williams_r,
        warmup=lambda period: period - 1,
        reference="talib.WILLR(high, low, close, period)",
    ),
    IndicatorDef(
        name="roc",
        summary="rate of change in percent",
        inputs=(SOURCE,),
        parameters=(period(default=10, bounds=_up_to(100)),),
        outputs=("roc",),
        compute=roc,
        warmup=lambda period: period,
        reference="talib.ROC(source, period)",
    ),
    IndicatorDef(
        name="momentum",
        summary="price minus price `period` bars ago",
        inputs=(SOURCE,),
        parameters=(period(default=10, bounds=_up_to(100)),),
        outputs=("momentum",),
        compute=momentum,
        warmup=lambda period: period,
        reference="talib.MOM(source, period)",
    ),
    IndicatorDef(
        name="cci",
        summary="commodity channel index",
        inputs=_HLC,
        parameters=(period(default=20, bounds=msgspec.Meta(ge=2, le=100)),),
        outputs=("cci",),
        compute=cci,
        warmup=lambda period: period - 1,
        reference="talib.CCI(high, low, close, period)",
    ),
    IndicatorDef(
        name="fishertransform",
        summary="smoothed Fisher transform of the bar mid-point within its range; also signal",
        inputs=("high", "low"),
        parameters=(
            period(default=10, bounds=msgspec.Meta(ge=2, le=100)),
            period("smoothing", 3, bounds=_up_to(20)),
        ),
        outputs=("fisher", "signal"),
        compute=fisher_transform,
        warmup=lambda period, smoothing: period + ema_settling(smoothing),
    ),
    IndicatorDef(
        name="rvi",
        summary="relative vigour index, (close - open) against (high - low); also signal",
        inputs=("open", *_HLC),
        parameters=(
            period(default=10, bounds=msgspec.Meta(ge=4, le=100)),
            period("signal_period", 4, bounds=_up_to(50)),
        ),
        outputs=("rvi", "signal"),
        compute=rvi,
        warmup=lambda period, signal_period: period + signal_period + 1,
        technical_columns=_rvi_columns,
    ),
)
"""The oscillator family's catalog entries."""
