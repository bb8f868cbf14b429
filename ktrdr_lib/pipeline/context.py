"""TrainingOperationContext: everything a run needs, resolved and validated up front.

A bad strategy, symbol, timeframe, date or override raises here, before any operation exists,
so nothing half-made is ever stored.

Example:
    >>> ctx = build_training_context("rsi_mean_reversion", epochs=2)
    >>> ctx.symbols, ctx.timeframes, ctx.total_epochs
    (['AAPL'], ['1d'], 2)
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import pandas as pd

from ktrdr_lib.data.loader import require_series, require_window
from ktrdr_lib.data.timeframes import parse_timeframe, sort_timeframes
from ktrdr_lib.errors import ConfigError
from ktrdr_lib.features.context_series import context_series_needed, require_context_series
from ktrdr_lib.features.inputs import plan_inputs
from ktrdr_lib.paths import data_dir as default_data_dir
from ktrdr_lib.paths import ktrdr_home
from ktrdr_lib.paths import models_dir as default_models_dir
from ktrdr_lib.pipeline.limits import RunLimits, check_overrides_shape, check_run_limits
from ktrdr_lib.pipeline.trainable import refuse_untrainable
from ktrdr_lib.schemas.requests import TrainingRequest
from ktrdr_lib.schemas.status import TrainingMode
from ktrdr_lib.strategy.config import apply_overrides, strategy_to_config
from ktrdr_lib.strategy.discovery import resolve_strategy
from ktrdr_lib.strategy.loader import load_strategy
from ktrdr_lib.strategy.spec import StrategySpec, model_name
from ktrdr_lib.training.loggers import check_loggers

__all__ = [
    "TrainingOperationContext",
    "build_training_context",
    "new_operation_id",
    "training_request",
]

_SYMBOL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


class TrainingOperationContext(msgspec.Struct, frozen=True, kw_only=True):
    """A training run, fully resolved. Immutable; derive changed copies with ``replace``.

    Attributes:
        operation_id: ``op_training_YYYYmmdd_HHMMSS_xxxxxxxx``.
        strategy: the validated strategy with overrides applied.
        strategy_path: the file it came from (``None`` for inline text).
        symbols / timeframes: what this run trains on (the request overrides the strategy).
        base_timeframe: rows and labels are built on it.
        start_date / end_date: ISO dates or ``None`` for all available data.
        total_epochs: the epoch budget (early stopping may end sooner).
        batches_per_epoch: ``None`` until the data is prepared.
        detailed_analytics: record per-epoch analytics (the request's flag, or the strategy's
            ``model.training.analytics.enabled``).
        loggers: experiment loggers this run writes to (``csv``, ``tensorboard``, ``mlflow``).
        runs_dir: where file-based experiment loggers write (``KTRDR_HOME/runs``).
        checkpoint_dir: where this run keeps its epoch checkpoints (``""``: none).
        checkpoint_every: write a checkpoint every this many completed epochs.
        resume_from: the checkpoint directory of the stopped run this one continues.
        resumed_from: that run's operation id.
        num_cpus / num_gpus: what a ``ray``-mode run's worker reserves (``None``: the
            runner's defaults); always ``None`` for other modes.
        placebo_runs: placebo trainings after the run (:mod:`ktrdr_lib.data.placebo`).
        placebo_of: for a placebo run, the operation it is a placebo of.
        max_run_seconds: the run's wall-time cap (0: none); past it the run stops after its
            epoch (:mod:`ktrdr_lib.pipeline.limits`).
    """

    operation_id: str
    strategy: StrategySpec
    strategy_path: str | None
    symbols: list[str]
    timeframes: list[str]
    base_timeframe: str
    start_date: str | None
    end_date: str | None
    mode: TrainingMode
    seed: int
    overrides: dict[str, Any]
    data_dir: str
    models_dir: str
    total_epochs: int
    batch_size: int
    batches_per_epoch: int | None = None
    created_at: str = ""
    detailed_analytics: bool = False
    loggers: list[str] = msgspec.field(default_factory=list)
    runs_dir: str = ""
    checkpoint_dir: str = ""
    checkpoint_every: int = 1
    resume_from: str | None = None
    resumed_from: str | None = None
    num_cpus: float | None = None
    num_gpus: float | None = None
    placebo_runs: int = 0
    placebo_of: str | None = None
    max_run_seconds: float = 0.0

    @property
    def strategy_name(self) -> str:
        """The strategy's ``name``."""
        return self.strategy.name

    @property
    def model_name(self) -> str:
        """The name its models are stored under (the strategy's name, made safe for a
        directory: ``v15_rsi_zigzag_1.5`` → ``v15_rsi_zigzag_1_5``)."""
        return model_name(self.strategy.name)

    def strategy_config(self) -> dict[str, Any]:
        """The strategy in the v3 file layout (saved with the model)."""
        return strategy_to_config(self.strategy)

    def with_batches_per_epoch(self, batches: int) -> TrainingOperationContext:
        """A copy that knows the number of training batches per epoch."""
        return msgspec.structs.replace(self, batches_per_epoch=batches)

    def metadata(self) -> dict[str, Any]:
        """The operation's metadata payload (the v1 API's ``metadata`` shape)."""
        return {
            "symbol": self.symbols[0] if len(self.symbols) == 1 else "MULTI",
            "timeframe": self.timeframes[0] if len(self.timeframes) == 1 else "MULTI",
            "mode": self.mode,
            "start_date": self.start_date,
            "end_date": self.end_date,
            "parameters": {
                "strategy_name": self.strategy_name,
                "strategy_path": self.strategy_path,
                "symbols": list(self.symbols),
                "timeframes": list(self.timeframes),
                "base_timeframe": self.base_timeframe,
                "epochs": self.total_epochs,
                "batch_size": self.batch_size,
                "seed": self.seed,
                "overrides": dict(self.overrides),
                "training_mode": self.mode,
                "session_id": None,
            },
            **({"resumed_from": self.resumed_from} if self.resumed_from else {}),
        }


def training_request(request: TrainingRequest | None, fields: Mapping[str, Any]) -> TrainingRequest:
    """``request`` with ``fields`` (request fields given as keywords) on top.

    Raises:
        ConfigError: a keyword that is not a request field.
    """
    unknown = sorted(set(fields) - set(TrainingRequest.__struct_fields__))
    if unknown:
        raise ConfigError(
            f"{', '.join(unknown)}: not a training request field; the fields are "
            f"{', '.join(TrainingRequest.__struct_fields__)}"
        )
    base = request or TrainingRequest()
    return msgspec.structs.replace(base, **fields) if fields else base


def new_operation_id(now: datetime | None = None) -> str:
    """A fresh, sortable operation id."""
    now = now or datetime.now(UTC)
    return f"op_training_{now:%Y%m%d_%H%M%S}_{secrets.token_hex(4)}"


def _check_symbols(symbols: Sequence[str]) -> list[str]:
    if isinstance(symbols, str):
        symbols = [s for s in symbols.split(",") if s]
    result: list[str] = []
    for symbol in symbols:
        if not isinstance(symbol, str) or not _SYMBOL.match(symbol) or ".." in symbol:
            raise ConfigError(
                f"symbols: {symbol!r} is not a symbol; use letters, digits, '.', '_' or '-' "
                "(e.g. AAPL)"
            )
        if symbol not in result:
            result.append(symbol)
    return result


def _check_timeframes(timeframes: Sequence[str]) -> list[str]:
    if isinstance(timeframes, str):
        timeframes = [t for t in timeframes.split(",") if t]
    result: list[str] = []
    for tf in timeframes:
        parse_timeframe(tf)
        if tf not in result:
            result.append(tf)
    return result


def _check_date(field: str, value: str | datetime | None) -> str | None:
    if value is None or value == "":
        return None
    try:
        stamp = pd.Timestamp(value)
    except (ValueError, TypeError) as exc:
        raise ConfigError(
            f"{field}: {value!r} is not a date; use ISO-8601 like 2010-01-31 or "
            "2010-01-31T00:00:00Z"
        ) from exc
    if stamp.tzinfo is None:
        stamp = stamp.tz_localize("UTC")
    return stamp.tz_convert("UTC").isoformat().replace("+00:00", "Z")


def _base_timeframe(spec: StrategySpec, timeframes: list[str]) -> str:
    tf_spec = spec.training_data.timeframes if spec.training_data else None
    wanted = tf_spec.base_timeframe if tf_spec else None
    if wanted and wanted in timeframes:
        return wanted
    return sort_timeframes(timeframes)[0]


def build_training_context(
    strategy: str | os.PathLike[str] | StrategySpec,
    request: TrainingRequest | None = None,
    *,
    mode: TrainingMode = "local",
    data_dir: str | os.PathLike[str] | None = None,
    models_dir: str | os.PathLike[str] | None = None,
    operation_id: str | None = None,
    runs_dir: str | os.PathLike[str] | None = None,
    checkpoints_dir: str | os.PathLike[str] | None = None,
    checkpoint_every: int = 0,
    **fields: Any,
) -> TrainingOperationContext:
    """Resolve and validate a training request.

    Args:
        strategy: a strategy name (searched in ``KTRDR_STRATEGIES_DIR`` then the shipped
            examples), a path to a YAML file, or an already loaded StrategySpec.
        request: what to train on: symbols, timeframes, dates, overrides, epochs, seed (see
            :class:`~ktrdr_lib.schemas.requests.TrainingRequest`; every field optional).
        mode: ``local`` (this machine), ``host`` (a remote training host) or ``ray`` (a
            worker of a Ray cluster; the data is prepared here and shipped).
        data_dir: OHLCV directory (default ``KTRDR_DATA_DIR`` or the bundled sample data).
        models_dir: where models are saved (default ``KTRDR_HOME/models``).
        operation_id: use this id instead of a fresh one.
        runs_dir: where file-based experiment loggers write (default ``KTRDR_HOME/runs``).
        checkpoints_dir: where runs keep their checkpoints, one directory per operation
            (default ``KTRDR_HOME/checkpoints``).
        checkpoint_every: completed epochs between checkpoints (default 0: none; an
            orchestrator asks for them, see ``TrainingOrchestrator(checkpoint_every=…)``).
        fields: request fields given as keywords (``symbols=["AAPL"], epochs=5``), on top of
            ``request``.

    Raises:
        ConfigError: any part of the request is invalid (the message names it).
        StrategyNotFoundError: no such strategy; the message lists the places searched.
        DataError: a symbol has no data for a timeframe, or the dates hold no bars of a series
            (or fewer than ``WINDOW_MIN_BARS`` bars' time on the base timeframe) (local runs);
            the message names what is missing and lists what the data directory has.

    Example:
        >>> ctx = build_training_context("rsi_mean_reversion", epochs=2)
        >>> ctx.total_epochs, ctx.symbols
        (2, ['AAPL'])
    """
    request = training_request(request, fields)
    symbols, timeframes = request.symbols, request.timeframes
    start_date, end_date, seed = request.start_date, request.end_date, request.seed
    if isinstance(strategy, StrategySpec):
        spec, path = strategy, strategy.source
    else:
        resolved = resolve_strategy(strategy)
        spec, path = load_strategy(resolved), str(resolved)
    merged = request.merged_overrides()
    limits = RunLimits.from_env()
    check_overrides_shape(merged, limits)
    spec = apply_overrides(spec, merged)

    chosen_symbols = _check_symbols(symbols if symbols else spec.default_symbols())
    if not chosen_symbols:
        raise ConfigError(
            f"strategy {spec.name!r} names no symbols in training_data; pass symbols "
            "(e.g. --symbols AAPL)"
        )
    chosen_tfs = _check_timeframes(timeframes if timeframes else spec.default_timeframes())
    if not chosen_tfs:
        raise ConfigError(
            f"strategy {spec.name!r} names no timeframes in training_data; pass timeframes "
            "(e.g. --timeframes 1d)"
        )
    window = spec.training_data
    start = _check_date("start_date", start_date or (window.start_date if window else None))
    end = _check_date("end_date", end_date or (window.end_date if window else None))
    if start and end and pd.Timestamp(start) >= pd.Timestamp(end):
        raise ConfigError(f"start_date {start} is not before end_date {end}; swap or widen them")
    if mode not in ("local", "host", "ray"):
        raise ConfigError(f"mode: {mode!r} is not a training mode; use 'local', 'host' or 'ray'")
    num_cpus, num_gpus = _ray_resources(request, mode)
    placebo_runs = request.placebo_runs
    if isinstance(placebo_runs, bool) or not isinstance(placebo_runs, int):
        raise ConfigError(f"placebo_runs: {placebo_runs!r} is not a whole number")
    if not 0 <= placebo_runs <= MAX_PLACEBO_RUNS:
        raise ConfigError(
            f"placebo_runs: {placebo_runs} is outside 0..{MAX_PLACEBO_RUNS}; a handful (3 to "
            "10) tells a real edge from noise"
        )
    if placebo_runs and mode == "host":
        raise ConfigError(
            "placebo_runs: placebo trainings run here (locally, in a child process or on Ray), "
            "not on a training host; train in mode 'local' or 'ray' to compare with placebos"
        )
    refuse_untrainable(spec)
    plan = plan_inputs(spec, chosen_tfs)  # every input names a known set, output and timeframe
    check_run_limits(
        spec,
        symbols=chosen_symbols,
        timeframes=chosen_tfs,
        n_inputs=len(plan.columns),
        limits=limits,
    )
    data = Path(data_dir) if data_dir else default_data_dir()
    base_timeframe = _base_timeframe(spec, chosen_tfs)
    if mode in ("local", "ray"):  # a training host reads its own data directory
        require_series(chosen_symbols, chosen_tfs, data_dir=data)
        require_context_series(spec, plan, data_dir=data)
        require_window(
            chosen_symbols,
            chosen_tfs,
            start=start,
            end=end,
            base_timeframe=base_timeframe,
            extra_series=list(context_series_needed(spec, plan)),
            data_dir=data,
        )
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ConfigError(f"seed: {seed!r} is not a non-negative integer")
    if seed > MAX_SEED:
        raise ConfigError(f"seed: {seed} is more than {MAX_SEED} (2**32 - 1); use a smaller seed")
    loggers = check_loggers(request.loggers or [])
    if isinstance(checkpoint_every, bool) or checkpoint_every < 0:
        raise ConfigError(f"checkpoint_every: {checkpoint_every!r} is not a whole number >= 0")

    now = datetime.now(UTC)
    operation_id = operation_id or new_operation_id(now)
    return TrainingOperationContext(
        operation_id=operation_id,
        strategy=spec,
        strategy_path=path,
        symbols=chosen_symbols,
        timeframes=chosen_tfs,
        base_timeframe=base_timeframe,
        start_date=start,
        end_date=end,
        mode=mode,
        seed=seed,
        overrides=merged,
        data_dir=str(data),
        models_dir=str(Path(models_dir) if models_dir else default_models_dir()),
        total_epochs=spec.model.training.epochs,
        batch_size=spec.model.training.batch_size,
        created_at=now.isoformat().replace("+00:00", "Z"),
        detailed_analytics=bool(request.detailed_analytics)
        or spec.model.training.analytics.enabled,
        loggers=loggers,
        runs_dir=str(Path(runs_dir) if runs_dir else ktrdr_home() / "runs"),
        checkpoint_dir=""
        if checkpoint_every == 0
        else str(
            (Path(checkpoints_dir) if checkpoints_dir else ktrdr_home() / "checkpoints")
            / operation_id
        ),
        checkpoint_every=max(checkpoint_every, 1),
        num_cpus=num_cpus,
        num_gpus=num_gpus,
        placebo_runs=placebo_runs,
        max_run_seconds=limits.max_run_seconds,
    )


MAX_SEED = 2**32 - 1
"""The largest seed (what the random generators accept)."""
MAX_PLACEBO_RUNS = 50
"""The most placebo trainings one run may ask for."""


def _ray_resources(request: TrainingRequest, mode: str) -> tuple[float | None, float | None]:
    """The request's Ray worker resources, checked (``ray`` mode only)."""
    given = {
        name: value
        for name, value in (("num_cpus", request.num_cpus), ("num_gpus", request.num_gpus))
        if value is not None
    }
    if given and mode != "ray":
        names = " and ".join(given)
        raise ConfigError(
            f"{names}: the resources a Ray worker reserves apply to mode 'ray' only (this run "
            f"is {mode!r}); leave {names} out or train with mode 'ray'"
        )
    for name, value in given.items():
        if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
            raise ConfigError(f"{name}: {value!r} is not a number >= 0")
        if value > 1024:
            raise ConfigError(f"{name}: {value!r} is more than one run can reserve (1024)")
    if request.num_cpus is not None and request.num_cpus < 0.01:
        raise ConfigError(
            f"num_cpus: {request.num_cpus!r} leaves the run no CPU; give at least 0.01 (1 is "
            "the default)"
        )
    return (
        None if request.num_cpus is None else float(request.num_cpus),
        None if request.num_gpus is None else float(request.num_gpus),
    )
