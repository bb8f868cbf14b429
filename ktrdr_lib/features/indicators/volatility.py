"""Volatility indicators: average true range, Bollinger Bands, their width and the squeeze.

KTRDR's definitions (section 2.2 of the strategy-format facts): the ATR is the simple average
of the true range (not Wilder's smoothing; the first bar's true range is its high - low), and
the bands use the sample standard deviation (``ddof=1``; TA-Lib's ``BBANDS`` uses the
population one). The squeeze intensity compares the Bollinger Bands with Keltner Channels
(an EMA of the close ± a multiple of the ATR over 10 bars).

A flat window gives an ATR and a band width of 0, bands on the price, and no squeeze (0).
"""

from __future__ import annotations

import msgspec
import numpy as np

from ktrdr_lib.errors import ConfigError
from ktrdr_lib.features.indicators._kernels import (
    ArrayLike,
    FloatArray,
    as_float,
    check_period,
    ema_settling,
    rolling_mean,
    rolling_mean_and_variance,
)
from ktrdr_lib.features.indicators.channels import keltner_channels
from ktrdr_lib.features.indicators.trend import simple_true_range
from ktrdr_lib.features.registry import SOURCE, IndicatorDef, InputColumn, number, period

__all__ = [
    "ENTRIES",
    "atr",
    "bollinger_band_width",
    "bollinger_bands",
    "squeeze_intensity",
]

# KTRDR's squeeze intensity builds its Keltner Channels with their default ATR period.
_SQUEEZE_KELTNER_ATR_PERIOD = 10
# Below this a middle band or a channel width counts as zero (KTRDR's threshold).
_TINY = 1e-10


def atr(high: ArrayLike, low: ArrayLike, close: ArrayLike, period: int = 14) -> FloatArray:
    """Average true range: the simple moving average of the true range (KTRDR's ATR).

    The true range is ``max(high, previous close) - min(low, previous close)``; on the first
    bar, which has no previous close, it is ``high - low``. This is not TA-Lib's ``ATR``
    (Wilder's smoothing).

    Args:
        high: bar highs.
        low: bar lows.
        close: bar closes.
        period: averaging window (>= 1).

    Returns:
        ATR in price units, NaN for the first ``period - 1`` bars.

    Example:
        >>> atr([3.0, 4.0, 5.0], [1.0, 2.0, 3.0], [2.0, 3.0, 4.0], 2).tolist()
        [nan, 2.0, 2.0]
    """
    check_period("period", period)
    return rolling_mean(simple_true_range(as_float(high), as_float(low), as_float(close)), period)


def _check_multiplier(name: str, value: float) -> None:
    if not value > 0:
        raise ConfigError(
            f"indicator parameter {name} must be a number > 0 (got {value}); use e.g. 2."
        )


def _band_centre_and_deviation(
    prices: FloatArray, period: int, multiplier: float
) -> tuple[FloatArray, FloatArray]:
    """(simple moving average, sample standard deviation) over ``period`` bars; NaN before."""
    check_period("period", period)
    _check_multiplier("multiplier", multiplier)
    mean, variance = rolling_mean_and_variance(prices, period, ddof=1)
    return mean, np.sqrt(variance, out=variance)


def bollinger_bands(
    price: ArrayLike, period: int = 20, multiplier: float = 2.0
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Bollinger Bands: the simple moving average ± ``multiplier`` sample standard deviations.

    Args:
        price: prices.
        period: window length (>= 2: one bar has no sample standard deviation).
        multiplier: band half-width in standard deviations (> 0).

    Returns:
        ``(upper, middle, lower)``, NaN for the first ``period - 1`` bars.

    Example:
        >>> upper, middle, lower = bollinger_bands([1.0, 2.0, 3.0], 3, 1.0)
        >>> float(upper[-1]), float(middle[-1]), float(lower[-1])
        (3.0, 2.0, 1.0)
    """
    middle, deviation = _band_centre_and_deviation(as_float(price), period, multiplier)
    deviation *= multiplier
    upper = middle + deviation
    np.subtract(middle, deviation, out=deviation)
    return upper, middle, deviation


def bollinger_band_width(price: ArrayLike, period: int = 20, multiplier: float = 2.0) -> FloatArray:
    """Bollinger Band width relative to the middle band: ``(upper - lower) / middle``.

    Args:
        price: prices.
        period: window length (>= 2).
        multiplier: band half-width in standard deviations (> 0).

    Returns:
        The width, NaN for the first ``period - 1`` bars; 0 where the middle band is within
        1e-10 of zero.
    """
    middle, deviation = _band_centre_and_deviation(as_float(price), period, multiplier)
    deviation *= 2.0 * multiplier
    tiny = np.abs(middle) <= _TINY
    with np.errstate(divide="ignore", invalid="ignore"):
        np.divide(deviation, middle, out=deviation)
    np.copyto(deviation, 0.0, where=tiny)
    return deviation


def squeeze_intensity(
    price: ArrayLike,
    high: ArrayLike,
    low: ArrayLike,
    close: ArrayLike,
    bb_period: int = 20,
    bb_multiplier: float = 2.0,
    kc_period: int = 20,
    kc_multiplier: float = 2.0,
) -> FloatArray:
    """How far the Bollinger Bands sit inside the Keltner Channel: 0 (no squeeze) to 1.

    ``max(0, min(kc_upper - bb_upper, bb_lower - kc_lower) / (kc_upper - kc_lower))``: the
    narrower of the two gaps between the bands, as a share of the channel's width. The bands
    are on ``price``; the channel is on the close, with a 10-bar ATR.

    Args:
        price: the prices the Bollinger Bands are computed on.
        high: bar highs.
        low: bar lows.
        close: bar closes.
        bb_period: Bollinger window (>= 2).
        bb_multiplier: Bollinger half-width in standard deviations (> 0).
        kc_period: Keltner EMA period (>= 1).
        kc_multiplier: Keltner half-width in ATRs (> 0).

    Returns:
        The intensity, NaN until both the bands and the 10-bar ATR exist; 0 where the channel
        is narrower than 1e-10.
    """
    _check_multiplier("kc_multiplier", kc_multiplier)
    bb_upper, _, bb_lower = bollinger_bands(price, bb_period, bb_multiplier)
    kc_upper, _, kc_lower = keltner_channels(
        high, low, close, kc_period, _SQUEEZE_KELTNER_ATR_PERIOD, kc_multiplier
    )
    width = kc_upper - kc_lower
    np.subtract(kc_upper, bb_upper, out=kc_upper)
    np.subtract(bb_lower, kc_lower, out=kc_lower)
    gap = np.minimum(kc_upper, kc_lower, out=kc_upper)
    with np.errstate(divide="ignore", invalid="ignore"):
        np.divide(gap, width, out=gap)
    np.maximum(gap, 0.0, out=gap)
    np.copyto(gap, 0.0, where=np.abs(width) <= _TINY)
    return gap


# Section 2.2's ranges; where it gives none, only what the formula needs (a sample standard
# deviation needs two bars, a width a positive multiplier).
_BAND_PERIOD_BOUNDS = msgspec.Meta(ge=2, le=200)
_MULTIPLIER_BOUNDS = msgspec.Meta(gt=0, le=10)
_SQUEEZE_MULTIPLIER_BOUNDS = msgspec.Meta(gt=0, le=5)
_AT_LEAST_TWO = msgspec.Meta(ge=2)
_POSITIVE = msgspec.Meta(gt=0)


def _band_columns(period: int, multiplier: float) -> dict[str, str]:
    """Late-v2 KTRDR column names of the bands (``upper_20_2.0``), also as ``upper_20_2``."""
    written = {f"{multiplier}", f"{multiplier:g}"}
    return {
        f"{band}_{period}_{text}": band
        for text in sorted(written)
        for band in ("upper", "middle", "lower")
    }


def _squeeze_warmup(
    bb_period: int, bb_multiplier: float, kc_period: int, kc_multiplier: float
) -> int:
    """Bars until the bands, the channel's ATR and its EMA seed have all settled.

    The channel's middle line enters divided by the channel's width (a few ATRs, much less
    than the price), so its seed must fade to 0.01 %: twice an EMA's usual settling.
    """
    return max(bb_period - 1, _SQUEEZE_KELTNER_ATR_PERIOD - 1, 2 * ema_settling(kc_period))


_HLC: tuple[InputColumn, ...] = ("high", "low", "close")

ENTRIES: tuple[IndicatorDef, ...] = (
    IndicatorDef(
        name="atr",
        summary="average true range: simple moving average of the true range, in price units",
        inputs=_HLC,
        parameters=(period(default=14, bounds=msgspec.Meta(ge=1, le=100)),),
        outputs=("atr",),
        compute=atr,
        warmup=lambda period: period - 1,
    ),
    IndicatorDef(
        name="bollingerbands",
        summary="the upper Bollinger Band (a price); also the middle and lower bands",
        inputs=(SOURCE,),
        parameters=(
            period(default=20, bounds=_BAND_PERIOD_BOUNDS),
            number("multiplier", 2.0, bounds=_MULTIPLIER_BOUNDS),
        ),
        outputs=("upper", "middle", "lower"),
        compute=bollinger_bands,
        warmup=lambda period, multiplier: period - 1,
        aliases=("bbands", "bollinger_bands"),
        renamed_parameters={"std_dev": "multiplier"},
        technical_columns=_band_columns,
    ),
    IndicatorDef(
        name="bollingerbandwidth",
        summary="Bollinger Band width relative to the middle band, (upper - lower) / middle",
        inputs=(SOURCE,),
        parameters=(
            period(default=20, bounds=_AT_LEAST_TWO),
            number("multiplier", 2.0, bounds=_POSITIVE),
        ),
        outputs=("bollingerbandwidth",),
        compute=bollinger_band_width,
        warmup=lambda period, multiplier: period - 1,
        aliases=("bbwidth", "bollinger_band_width"),
        renamed_parameters={"std_dev": "multiplier"},
    ),
    IndicatorDef(
        name="squeezeintensity",
        summary="how far the Bollinger Bands sit inside the Keltner Channel, 0 (none) to 1",
        inputs=(SOURCE, *_HLC),
        parameters=(
            period("bb_period", 20, bounds=_AT_LEAST_TWO),
            number("bb_multiplier", 2.0, bounds=_SQUEEZE_MULTIPLIER_BOUNDS),
            period("kc_period", 20, bounds=_AT_LEAST_TWO),
            number("kc_multiplier", 2.0, bounds=_SQUEEZE_MULTIPLIER_BOUNDS),
        ),
        outputs=("squeezeintensity",),
        compute=squeeze_intensity,
        warmup=_squeeze_warmup,
        aliases=("squeeze_intensity",),
    ),
)
"""The volatility family's catalog entries."""
