"""The indicator catalog: every indicator a strategy may name, gathered from the families.

Each family module (:mod:`~ktrdr_lib.features.indicators.oscillators`, ``averages``,
``trend``, ``channels``, ``swings``, ``volatility``, ``volume``, ``money_flow``) declares its
entries next to its compute functions; this module only puts them in one
:class:`~ktrdr_lib.features.registry.IndicatorRegistry`, which strategy validation, the
computation and the warm-up all read. A new indicator is a new entry in its family's
``ENTRIES``; nothing here changes unless a new family module is added.

Example:
    >>> INDICATOR_CATALOG.names()[:3]
    ['adline', 'adx', 'aroon']
"""

from __future__ import annotations

from ktrdr_lib.features.indicators.averages import ENTRIES as AVERAGES
from ktrdr_lib.features.indicators.channels import ENTRIES as CHANNELS
from ktrdr_lib.features.indicators.money_flow import ENTRIES as MONEY_FLOW
from ktrdr_lib.features.indicators.oscillators import ENTRIES as OSCILLATORS
from ktrdr_lib.features.indicators.swings import ENTRIES as SWINGS
from ktrdr_lib.features.indicators.trend import ENTRIES as TREND
from ktrdr_lib.features.indicators.volatility import ENTRIES as VOLATILITY
from ktrdr_lib.features.indicators.volume import ENTRIES as VOLUME
from ktrdr_lib.features.registry import IndicatorRegistry

__all__ = ["INDICATOR_CATALOG"]

INDICATOR_CATALOG = IndicatorRegistry(
    (
        *OSCILLATORS,
        *AVERAGES,
        *TREND,
        *CHANNELS,
        *SWINGS,
        *VOLATILITY,
        *VOLUME,
        *MONEY_FLOW,
    )
)
"""Every indicator, by name (sorted); ``find``/``require`` also resolve aliases."""
