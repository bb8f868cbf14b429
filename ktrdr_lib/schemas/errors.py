"""The one error body every HTTP answer of the API and the training host uses."""

from __future__ import annotations

import msgspec

from ktrdr_lib.errors import StrategyProblem

__all__ = ["ErrorBody"]


class ErrorBody(msgspec.Struct, frozen=True, kw_only=True):
    """Every error response: what went wrong and where; never a stack trace.

    Attributes:
        status_code: the HTTP status.
        detail: what was wrong, where, and what to do.
        error_type: the error's class (``StrategyError``, ``NotFoundError``, ...).
        success: always ``False`` (v1 clients read it).
        problems: each strategy problem with its field path, file and line, when a strategy
            was rejected.
    """

    status_code: int
    detail: str
    error_type: str
    success: bool = False
    problems: list[StrategyProblem] | None = None
