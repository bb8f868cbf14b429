"""Strategies as listings show them, and what checking a strategy file finds.

A check finds *problems* (the file cannot be trained; :class:`~ktrdr_lib.errors.StrategyProblem`)
and *notices* (:class:`StrategyNotice`): the file loads, but here it trains differently from
what KTRDR would have done with it, or KTRDR would have silently dropped something it says.
Notices never block loading; ``ktrdr strategies validate``, the API's validation and the
training result show them.
"""

from __future__ import annotations

from typing import Literal

import msgspec

from ktrdr_lib.errors import StrategyProblem, located_line

__all__ = ["StrategyCheck", "StrategyLayout", "StrategyListing", "StrategyNotice"]

StrategyLayout = Literal["legacy", "v2", "v3"]
"""The layout a strategy file is written in: KTRDR's v1 (``data:``), v2 or v3 (``nn_inputs``)."""


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


class StrategyNotice(msgspec.Struct, frozen=True, kw_only=True):
    """Where a strategy trains differently from what KTRDR would have done with the file.

    Attributes:
        path: dotted field path in the file, e.g. ``model.training.epochs``.
        message: what KTRDR did (or dropped) and what happens here instead.
        value: the value concerned, rendered as text (``None`` when nothing is written there).
        file: the file the strategy came from, when it came from a file.
        line: 1-based line in that file, when known.

    Example:
        >>> StrategyNotice(path="scope", message="not used", file="s.yaml", line=3).render()
        's.yaml:3: notice: scope: not used'
    """

    path: str
    message: str
    value: str | None = None
    file: str | None = None
    line: int | None = None

    def render(self) -> str:
        """One line: ``file:line: notice: path: message (value …)``."""
        return located_line(self, tag="notice", value_word="value")


class StrategyCheck(msgspec.Struct, frozen=True, kw_only=True):
    """Everything checking one strategy text finds.

    Attributes:
        problems: what stops it from loading, in line order (empty when it loads).
        notices: where it trains differently from KTRDR, in line order.
        layout: the layout it is written in (``None`` when the text is not a strategy mapping).
    """

    problems: list[StrategyProblem]
    notices: list[StrategyNotice]
    layout: StrategyLayout | None = None

    @property
    def valid(self) -> bool:
        """Whether the strategy loads (notices never block it)."""
        return not self.problems
