"""The indicators a strategy may name, their parameters and defaults.

This table is what strategy validation checks against; the computations live in
:mod:`ktrdr_lib.features.indicators`, keyed by the same names.
"""

from __future__ import annotations

import msgspec

__all__ = ["INDICATOR_CATALOG", "IndicatorInfo", "known_indicator_names"]


class IndicatorInfo(msgspec.Struct, frozen=True, kw_only=True):
    """What one indicator takes and feeds to its fuzzy sets.

    Attributes:
        name: the name strategies use.
        params: parameter name → default; ``None`` means the parameter is required.
        uses_source: whether the ``source`` price column applies.
        value: what the fuzzy sets see, in words.
    """

    name: str
    params: dict[str, float | None]
    uses_source: bool
    value: str


def _info(
    name: str, params: dict[str, float | None], uses_source: bool, value: str
) -> IndicatorInfo:
    return IndicatorInfo(name=name, params=params, uses_source=uses_source, value=value)


INDICATOR_CATALOG: dict[str, IndicatorInfo] = {
    info.name: info
    for info in (
        _info("rsi", {"period": 14}, True, "RSI 0-100 (Wilder smoothing)"),
        _info(
            "macd",
            {"fast_period": 12, "slow_period": 26, "signal_period": 9},
            True,
            "MACD line (fast EMA - slow EMA)",
        ),
        _info("sma", {"period": None}, True, "price / simple moving average (ratio around 1.0)"),
        _info("ema", {"period": None}, True, "price / exponential moving average (around 1.0)"),
        _info("bbands", {"period": 20, "std_dev": 2}, True, "position of price within the bands"),
        _info("atr", {"period": 14}, False, "average true range (Wilder)"),
        _info("stoch", {"k_period": 14, "d_period": 3}, False, "%K 0-100"),
        _info("roc", {"period": 10}, True, "rate of change in percent"),
        _info("momentum", {"period": 10}, True, "price minus price `period` bars ago"),
        _info("obv", {}, False, "on-balance volume"),
        _info("adx", {"period": 14}, False, "ADX 0-100"),
        _info("cci", {"period": 14}, False, "commodity channel index"),
        _info("williams_r", {"period": 14}, False, "Williams %R, -100..0"),
        _info("mfi", {"period": 14}, False, "money flow index 0-100"),
    )
}


def known_indicator_names() -> list[str]:
    """Sorted names, for error messages."""
    return sorted(INDICATOR_CATALOG)
