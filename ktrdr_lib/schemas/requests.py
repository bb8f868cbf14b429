"""The one training request: what a caller may ask of a run, whichever door it comes through.

The orchestrator's ``start_training``, the API's start body, the training host's session body,
the HTTP client and the CLI all carry these fields; the adapters' request Structs extend this
one with what only their door needs (a strategy name, a task id, the strategy's text).
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from msgspec import Meta

__all__ = ["TrainingRequest"]

Name = Annotated[str, Meta(max_length=64)]
"""A symbol, timeframe or logger name as a request carries it."""


class TrainingRequest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """What to train on and how, on top of what the strategy file says (where it trains, the
    mode, is the orchestrator's choice, not part of the request).

    Every field is optional: ``None`` (or the default) keeps the strategy's own choice. The
    bounds on the fields are what an HTTP body may carry at all; the server's own caps
    (:mod:`ktrdr_lib.pipeline.limits`) are checked when the run is resolved.
    :func:`~ktrdr_lib.pipeline.context.build_training_context` checks every field and says what
    is wrong with which.

    Attributes:
        symbols: symbols to train on (default: the strategy's ``training_data``).
        timeframes: timeframes to train on (default: the strategy's ``training_data``).
        start_date: first bar (inclusive), ISO date; earlier bars still warm indicators up.
        end_date: last bar (inclusive), ISO date.
        overrides: strategy fields to change for this run (``{"epochs": 5}`` or dotted paths).
        epochs: shorthand for ``overrides={"epochs": epochs}``.
        seed: seeds weights, shuffling and dropout.
        detailed_analytics: record per-epoch analytics (gradient norms, per-class validation
            figures, confidence, fuzzy activity); off by default, and then free.
        loggers: experiment loggers for this run (``csv``, ``tensorboard``, ``mlflow``);
            ``None`` keeps the orchestrator's choice (``loggers=`` or ``KTRDR_LOGGERS``), ``[]``
            turns them off.
        num_cpus: CPUs the run's Ray worker reserves (``mode="ray"`` only; default 1; torch
            uses as many threads).
        placebo_runs: after the run, train the same strategy this many times on random walks
            matched to its data (same bars, volatility and volumes; child operations) and
            report the real run's edge over them (0, the default: none).
        num_gpus: GPUs the run's Ray worker reserves (``mode="ray"`` only; default 1 when the
            cluster has GPUs, else 0; fractions share a GPU).

    Example:
        >>> TrainingRequest(symbols=["AAPL"], epochs=5).epochs
        5
    """

    symbols: Annotated[list[Name], Meta(max_length=1000)] | None = None
    timeframes: Annotated[list[Name], Meta(max_length=64)] | None = None
    start_date: Annotated[str, Meta(max_length=40)] | None = None
    end_date: Annotated[str, Meta(max_length=40)] | None = None
    overrides: Annotated[dict[str, Any], Meta(max_length=1000)] | None = None
    epochs: Annotated[int, Meta(ge=1, le=10_000_000)] | None = None
    seed: Annotated[int, Meta(ge=0, le=2**32 - 1)] = 42
    detailed_analytics: bool = False
    loggers: Annotated[list[Name], Meta(max_length=8)] | None = None
    num_cpus: Annotated[float, Meta(ge=0, le=1024)] | None = None
    num_gpus: Annotated[float, Meta(ge=0, le=1024)] | None = None
    placebo_runs: Annotated[int, Meta(ge=0, le=50)] = 0

    def merged_overrides(self) -> dict[str, Any]:
        """``overrides`` with ``epochs`` folded in."""
        merged = dict(self.overrides or {})
        if self.epochs is not None:
            merged["epochs"] = self.epochs
        return merged
