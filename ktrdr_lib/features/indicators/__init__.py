"""Technical indicators on numpy arrays, their catalog, and the dispatch strategies use.

The catalog is KTRDR's (section 2.2 of the strategy-format facts): its 31 indicators, its
parameter names, defaults and ranges, its outputs (the primary one first) and its formulas.
Every indicator function takes float64 arrays of one length and returns one float64 array of
that length per output (a tuple when there are several), NaN during a window's warm-up;
exponential averages follow pandas ``ewm`` from the first bar (no NaN). Everything is
vectorised numpy (see :mod:`._kernels`), except the three recursions that carry a decision
from bar to bar (parabolic SAR, SuperTrend's bands, ZigZag pivots), compiled with numba in
:mod:`._compiled`. Where KTRDR equals TA-Lib after warm-up (RSI, WMA, stochastic, Williams %R,
ROC, momentum, CCI, ...) the tests compare with TA-Lib; the others with pandas statements of
KTRDR's formulas.

The package has one module per family (``oscillators``, ``averages``, ``trend``, ``channels``,
``swings``, ``volatility``, ``volume``, ``money_flow``), each with its compute functions and
its catalog entries (:class:`~ktrdr_lib.features.registry.IndicatorDef`);
:data:`INDICATOR_CATALOG` gathers them, and :func:`compute_outputs`, :func:`compute_indicator`
and :func:`indicator_warmup` read it for a strategy's
:class:`~ktrdr_lib.strategy.spec.IndicatorSpec`.

Example:
    >>> import numpy as np
    >>> close = np.linspace(100.0, 120.0, 50)
    >>> round(float(rsi(close, 14)[-1]), 1)
    100.0
"""

from __future__ import annotations

from ktrdr_lib.features.indicators.averages import (
    distance_from_ma,
    exponential_moving_average,
    simple_moving_average,
    weighted_moving_average,
)
from ktrdr_lib.features.indicators.catalog import INDICATOR_CATALOG
from ktrdr_lib.features.indicators.channels import donchian_channels, ichimoku, keltner_channels
from ktrdr_lib.features.indicators.compute import (
    compute_indicator,
    compute_outputs,
    indicator_warmup,
)
from ktrdr_lib.features.indicators.money_flow import ad_line, cmf
from ktrdr_lib.features.indicators.oscillators import (
    cci,
    fisher_transform,
    momentum,
    roc,
    rsi,
    rvi,
    stochastic,
    williams_r,
)
from ktrdr_lib.features.indicators.swings import zigzag
from ktrdr_lib.features.indicators.trend import adx, aroon, macd, parabolic_sar, supertrend
from ktrdr_lib.features.indicators.volatility import (
    atr,
    bollinger_band_width,
    bollinger_bands,
    squeeze_intensity,
)
from ktrdr_lib.features.indicators.volume import mfi, obv, volume_ratio, vwap

__all__ = [
    "INDICATOR_CATALOG",
    "ad_line",
    "adx",
    "aroon",
    "atr",
    "bollinger_band_width",
    "bollinger_bands",
    "cci",
    "cmf",
    "compute_indicator",
    "compute_outputs",
    "distance_from_ma",
    "donchian_channels",
    "exponential_moving_average",
    "fisher_transform",
    "ichimoku",
    "indicator_warmup",
    "keltner_channels",
    "macd",
    "mfi",
    "momentum",
    "obv",
    "parabolic_sar",
    "roc",
    "rsi",
    "rvi",
    "simple_moving_average",
    "squeeze_intensity",
    "stochastic",
    "supertrend",
    "volume_ratio",
    "vwap",
    "weighted_moving_average",
    "williams_r",
    "zigzag",
]
