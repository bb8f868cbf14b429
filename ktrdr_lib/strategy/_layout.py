"""Which layout a strategy file is written in, and what its era means for reading it.

KTRDR's rule (the same at every version): **v3** when ``indicators`` is a mapping and
``nn_inputs`` is present; else **v2** when ``scope``, ``training_data`` or ``deployment`` is
present; else **legacy** (v1, ``data:``), which KTRDR's loader filled with defaults
(:data:`LEGACY_DEFAULTS`). Here a file with ``nn_inputs`` is read as v3 whatever its
``indicators`` are, so that a half-done v3 file gets v3's errors.

Among v2 and legacy files, those without a ``feature_id`` anywhere were written for early v2
KTRDR (:func:`written_before_feature_ids`): its trainer fed ``close / MA`` to fuzzy sets over
``sma``/``ema``, dropped flat indicator parameters and could not resolve some spellings.
"""

from __future__ import annotations

from typing import Any

from ktrdr_lib.schemas.strategies import StrategyLayout

__all__ = [
    "E2_TRAINER_SKIPPED",
    "LEGACY_DEFAULTS",
    "detect_layout",
    "spelled_for_e2_trainer",
    "written_before_feature_ids",
]

LEGACY_DEFAULTS: dict[str, Any] = {
    "labels": {"source": "zigzag", "zigzag_threshold": 0.03, "label_lookahead": 20},
    "lookback_periods": 2,
}
"""What KTRDR's legacy loader filled in that differs from the v2/v3 defaults."""

E2_TRAINER_SKIPPED = frozenset(
    {
        "adx",
        "mfi",
        "cci",
        "roc",
        "obv",
        "vwap",
        "rvi",
        "cmf",
        "bbands",
        "bollingerbands",
        "supertrend",
        "rsiindicator",
        "fishertransform",
        "bollingerbandwidth",
        "williamsr",
        "keltnerchannels",
        "volumeratio",
        "parabolicsar",
        "donchianchannels",
        "distancefromma",
        "stoch",
        "psar",
    }
)
"""Spellings (lower-cased) early-v2 KTRDR's trainer could not resolve: it left the indicator out."""


def detect_layout(top: dict[Any, Any]) -> StrategyLayout:
    """The layout of a parsed strategy mapping.

    Example:
        >>> detect_layout({"indicators": {"rsi": {"type": "rsi"}}, "nn_inputs": []})
        'v3'
        >>> detect_layout({"training_data": {}, "indicators": []})
        'v2'
    """
    if "nn_inputs" in top:
        return "v3"
    if any(key in top for key in ("scope", "training_data", "deployment")):
        return "v2"
    return "legacy"


def written_before_feature_ids(top: dict[Any, Any], layout: StrategyLayout) -> bool:
    """Whether a v2 or legacy file has no ``feature_id`` anywhere (early v2 KTRDR's files)."""
    indicators = top.get("indicators")
    if layout == "v3" or not isinstance(indicators, list):
        return False
    return not any(isinstance(item, dict) and "feature_id" in item for item in indicators)


def spelled_for_e2_trainer(name: str) -> bool:
    """Whether early v2 KTRDR's trainer resolved the indicator spelled ``name``."""
    return name.strip().lower() not in E2_TRAINER_SKIPPED
