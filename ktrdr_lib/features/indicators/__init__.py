"""Technical indicators on numpy arrays, their catalog, and the dispatch strategies use.

Every indicator function takes float64 price arrays of one length and returns a float64 array
of that length, NaN during warm-up, vectorised (see :mod:`._kernels`). RSI, ATR, EMA, SMA,
Bollinger Bands, stochastics, ROC, momentum, OBV, ADX, CCI, Williams %R and MFI agree with
TA-Lib to rounding; the MACD line seeds its fast EMA at its own period and agrees once that
seed has decayed.

Where a denominator is zero (a flat market), an indicator returns its neutral value instead of
NaN or inf, so flat stretches never leak non-finite values into features: RSI, %K and MFI 50,
Williams %R -50, band position 0.5, CCI 0, ADX 0. Ratios to a zero moving average (zero prices,
which real data never has) are NaN.

The package has one module per family (``oscillators``, ``trend``, ``volatility``,
``volume``), each with its compute functions and its catalog entries
(:class:`~ktrdr_lib.features.registry.IndicatorDef`); :data:`INDICATOR_CATALOG` gathers them,
and :func:`compute_indicator` and :func:`indicator_warmup` read it for a strategy's
:class:`~ktrdr_lib.strategy.spec.IndicatorSpec`.

Example:
    >>> import numpy as np
    >>> close = np.linspace(100.0, 120.0, 50)
    >>> round(float(rsi(close, 14)[-1]), 1)
    100.0
"""

from __future__ import annotations

from ktrdr_lib.features.indicators.catalog import INDICATOR_CATALOG
from ktrdr_lib.features.indicators.compute import (
    compute_indicator,
    compute_outputs,
    indicator_warmup,
)
from ktrdr_lib.features.indicators.oscillators import cci, momentum, roc, rsi, stoch_k, williams_r
from ktrdr_lib.features.indicators.trend import adx, ema_ratio, macd, macd_signal, sma_ratio
from ktrdr_lib.features.indicators.volatility import atr, bbands_position
from ktrdr_lib.features.indicators.volume import mfi, obv

__all__ = [
    "INDICATOR_CATALOG",
    "adx",
    "atr",
    "bbands_position",
    "cci",
    "compute_indicator",
    "compute_outputs",
    "ema_ratio",
    "indicator_warmup",
    "macd",
    "macd_signal",
    "mfi",
    "momentum",
    "obv",
    "roc",
    "rsi",
    "sma_ratio",
    "stoch_k",
    "williams_r",
]
