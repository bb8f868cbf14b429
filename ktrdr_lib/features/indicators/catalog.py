"""The indicator catalog: every indicator a strategy may name, gathered from the families.

Each family module (:mod:`~ktrdr_lib.features.indicators.oscillators`, ``trend``,
``volatility``, ``volume``) declares its entries next to its compute functions; this module
only puts them in one :class:`~ktrdr_lib.features.registry.IndicatorRegistry`, which strategy
validation, the computation and the warm-up all read. A new indicator is a new entry in its family's
``ENTRIES``; nothing here changes unless a new family module is added.

Example:
    >>> INDICATOR_CATALOG.names()[:3]
    ['adx', 'atr', 'bbands']
"""

from __future__ import annotations

from ktrdr_lib.features.indicators.oscillators import ENTRIES as OSCILLATORS
from ktrdr_lib.features.indicators.trend import ENTRIES as TREND
from ktrdr_lib.features.indicators.volatility import ENTRIES as VOLATILITY
from ktrdr_lib.features.indicators.volume import ENTRIES as VOLUME
from ktrdr_lib.features.registry import IndicatorRegistry

__all__ = ["INDICATOR_CATALOG"]

INDICATOR_CATALOG = IndicatorRegistry((*OSCILLATORS, *TREND, *VOLATILITY, *VOLUME))
"""Every indicator, by name (sorted); ``find``/``require`` also resolve aliases."""
