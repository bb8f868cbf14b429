"""Strategies as listings show them."""

from __future__ import annotations

import msgspec

__all__ = ["StrategyListing"]


class StrategyListing(msgspec.Struct, frozen=True, kw_only=True):
    """One strategy found by :func:`~ktrdr_lib.strategy.discovery.list_strategies`.

    Attributes:
        name: the name to resolve it by (the file name without its suffix).
        path: the file.
        description: the strategy's ``description``, when it loaded.
        symbols: default symbols from ``training_data`` (empty when none or invalid).
        timeframes: default timeframes from ``training_data`` (empty when none or invalid).
        valid: whether the file loads without problems.
        problems: each problem rendered as one line (empty when valid).
    """

    name: str
    path: str
    description: str | None
    symbols: list[str]
    timeframes: list[str]
    valid: bool
    problems: list[str]
