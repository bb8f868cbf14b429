"""The parts of v2 and legacy strategy files that v3 has no counterpart for.

A v2 (and legacy) file lists its indicators, each an item with ``name``, an optional
``feature_id`` and its parameters beside them (:class:`V2Indicator` declares the keys that are
not parameters); a legacy file names its symbols and timeframes in ``data:``
(:class:`LegacyDataSpec`). The loader checks these parts against these Structs, then
normalises the file into the one internal model, :class:`~ktrdr_lib.strategy.spec.StrategySpec`.
The sections every layout shares are :mod:`ktrdr_lib.strategy.sections`.
"""

from __future__ import annotations

from typing import Annotated

import msgspec
from msgspec import Meta

from ktrdr_lib.strategy.sections import Symbol, Timeframe, WholeAtLeast0, _Spec
from ktrdr_lib.strategy.spec import Identifier, ParameterValue, SourceColumn

__all__ = ["LegacyDataSpec", "V2Indicator"]


class V2Indicator(_Spec, frozen=True, kw_only=True):
    """One item of a v2 or legacy file's ``indicators`` list.

    The YAML puts an indicator's parameters beside ``name``; the loader gathers them into
    ``params`` (defaults from the indicator catalog filled in). Without ``feature_id`` the
    indicator is known by its ``name``.
    """

    name: str
    feature_id: Identifier | None = None
    source: SourceColumn = "close"
    data_source: str | None = None
    params: dict[str, ParameterValue] = msgspec.field(default_factory=dict)


class LegacyDataSpec(_Spec, frozen=True, kw_only=True):
    """A legacy file's ``data:``: the default symbols and timeframes, as plain lists."""

    symbols: Annotated[list[Symbol], Meta(min_length=1, examples=[["AAPL", "MSFT"]])] | None = None
    timeframes: Annotated[list[Timeframe], Meta(min_length=1, examples=[["1h", "1d"]])] | None = (
        None
    )
    history_required: WholeAtLeast0 = 200
