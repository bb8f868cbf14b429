"""Helpers the indicator tests share: bar columns, a NaN-aware comparison, catalog specs."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ktrdr_lib.features.indicators import INDICATOR_CATALOG
from ktrdr_lib.strategy.spec import IndicatorSpec


def hlc(bars: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """High, low and close as arrays."""
    return bars["high"].to_numpy(), bars["low"].to_numpy(), bars["close"].to_numpy()


def hlcv(bars: pd.DataFrame) -> tuple[np.ndarray, ...]:
    """High, low, close and volume as arrays."""
    return tuple(bars[c].to_numpy() for c in ("high", "low", "close", "volume"))


def assert_same(ours: np.ndarray, reference: np.ndarray | pd.Series, rtol: float = 1e-9) -> None:
    """Same NaN positions and the same values elsewhere (rounding around 0 allowed)."""
    expected = np.asarray(reference, dtype=np.float64)
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(expected))
    np.testing.assert_allclose(ours, expected, rtol=rtol, atol=1e-9, equal_nan=True)


def spec(name: str, **params: float | bool) -> IndicatorSpec:
    """The catalog entry ``name`` as a strategy indicator: its defaults, then ``params``."""
    entry = INDICATOR_CATALOG.require(name)
    return IndicatorSpec(type=entry.name, params={**entry.params, **params})


def assert_spelling_resolves(spelling: str, name: str) -> None:
    """``spelling`` finds the catalog entry ``name``."""
    found = INDICATOR_CATALOG.find(spelling)
    assert found is not None and found.name == name
