"""ApiBackend: the commands against a running ``ktrdr serve api``, over the typed ApiClient.

The API answers the v1 shapes; this backend hands the commands the core Structs where they
render text: an :class:`~ktrdr_lib.schemas.v1.OperationInfo` becomes the
:class:`~ktrdr_lib.schemas.operations.OperationSnapshot` it was made from (its progress block
carries the snapshot, ``status_detail`` the precise status, and the run's result comes from
``GET /operations/{id}/result``), so a local and a remote operation print alike.

The server resolves strategies by name only: a YAML path is refused here with a hint, and
when ``--symbols`` or ``--timeframes`` is left out, the strategy's defaults come from the
server's listing (v1's start body requires both).

Example:
    >>> backend = ApiBackend.connect("http://127.0.0.1:8000")          # doctest: +SKIP
    >>> backend.get_operation("op_training_...").status               # doctest: +SKIP
    'completed'
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

import msgspec

from ktrdr_lib.errors import ConfigError, KtrdrError, StateConflictError, StrategyProblem
from ktrdr_lib.http.client import ApiClient
from ktrdr_lib.schemas.operations import OperationSnapshot
from ktrdr_lib.schemas.progress import ProgressSnapshot
from ktrdr_lib.schemas.status import OperationStatus
from ktrdr_lib.schemas.strategies import StrategyCheck, StrategyNotice

if TYPE_CHECKING:
    from ktrdr_lib.cli.backend import StreamEvent
    from ktrdr_lib.schemas.requests import TrainingRequest
    from ktrdr_lib.schemas.results import FeatureReport, TrainingAnalytics, TrainingResult
    from ktrdr_lib.schemas.status import TrainingMode
    from ktrdr_lib.schemas.strategies import StrategyListing
    from ktrdr_lib.schemas.sweeps import SweepRequest, SweepSnapshot
    from ktrdr_lib.schemas.v1 import (
        ModelListItem,
        OperationInfo,
        OperationListResponse,
        PerformanceResponse,
    )

__all__ = ["ApiBackend", "operation_snapshot"]


class ApiBackend:
    """The :class:`~ktrdr_lib.cli.backend.Backend` of a KTRDR API server.

    Args:
        client: the client for that server (tests give it an ``httpx.MockTransport`` or a
            test app's transport).
        poll_s: seconds between reads of a sweep that is followed.
        result_grace_s: how long a followed sweep that ended may take to show its ranking
            (the server stores it just after the final status) before following stops
            without it.
    """

    def __init__(
        self, client: ApiClient, *, poll_s: float = 0.5, result_grace_s: float = 10.0
    ) -> None:
        if poll_s <= 0 or result_grace_s < 0:
            raise ConfigError(
                f"poll_s must be > 0 and result_grace_s >= 0 seconds, got {poll_s} and "
                f"{result_grace_s}"
            )
        self.client = client
        self.poll_s = poll_s
        self.result_grace_s = result_grace_s

    @classmethod
    def connect(cls, url: str, *, token: str | None = None) -> ApiBackend:
        """A backend for the API at ``url``, sending ``token`` as the bearer token.

        Raises:
            ConfigError: the URL is empty or not http(s).
        """
        return cls(ApiClient(url, token=token))

    @property
    def location(self) -> str:
        """The server's base URL."""
        return self.client.base_url

    # -- trainings ---------------------------------------------------------------------------

    def start_training(
        self, strategy: str, request: TrainingRequest, *, mode: TrainingMode = "local"
    ) -> str:
        """``POST /trainings/start`` for the strategy the server knows as ``strategy``, in
        ``mode`` on the server's side (its host, its Ray cluster).

        Raises:
            ConfigError: ``strategy`` is a file path, the server has no strategy of that name,
                or the server's file of it is invalid.
        """
        self._check_name(strategy)
        symbols, timeframes = request.symbols, request.timeframes
        if not symbols or not timeframes:
            listing = self._listing(strategy)
            symbols = symbols or listing.symbols
            timeframes = timeframes or listing.timeframes
        started = self.client.start_training(
            strategy,
            symbols=symbols,
            timeframes=timeframes,
            start_date=request.start_date,
            end_date=request.end_date,
            overrides=request.merged_overrides() or None,
            seed=request.seed,
            detailed_analytics=request.detailed_analytics,
            loggers=request.loggers,
            mode=mode,
            num_cpus=request.num_cpus,
            num_gpus=request.num_gpus,
            placebo_runs=request.placebo_runs,
        )
        return started.task_id

    # -- sweeps ------------------------------------------------------------------------------

    def start_sweep(self, request: SweepRequest) -> str:
        """``POST /sweeps`` for the strategy the server knows as ``request.strategy``, on the
        server's Ray cluster.

        Raises:
            ConfigError: the strategy is a file path, or the server refused the request (no
                Ray cluster there, a bad space, ...).
        """
        self._check_name(request.strategy)
        return self.client.start_sweep(request).operation.operation_id

    def get_sweep(self, sweep_id: str) -> SweepSnapshot:
        """``GET /sweeps/{id}``."""
        return self.client.sweep(sweep_id)

    def sweep_snapshots(self, sweep_id: str) -> Iterator[SweepSnapshot]:
        """``GET /sweeps/{id}`` every ``poll_s`` seconds: each change, until the ended sweep
        with its ranking (or, for one that ended without a ranking, ``result_grace_s`` after
        it ended)."""
        last: bytes | None = None
        ended_at: float | None = None
        while True:
            snapshot = self.client.sweep(sweep_id)
            encoded = msgspec.json.encode(snapshot)
            if encoded != last:
                last = encoded
                yield snapshot
            if snapshot.operation.is_final:
                if snapshot.result is not None:
                    return
                ended_at = time.monotonic() if ended_at is None else ended_at
                if time.monotonic() - ended_at >= self.result_grace_s:
                    return
            time.sleep(self.poll_s)

    def forget_finished(
        self, *, keep_days: float | None = None, keep_count: int | None = None
    ) -> list[str]:
        """Not over an API: the server applies its own retention (KTRDR_KEEP_OPERATIONS_DAYS)."""
        raise ConfigError(
            "`ktrdr operations prune` works on this machine's store; run it on the server's "
            "machine (without --api), or set KTRDR_KEEP_OPERATIONS_DAYS where the server runs"
        )

    def prune_checkpoints(self, *, keep_days: float | None = None) -> tuple[list[str], int]:
        """Not over an API: checkpoints are pruned where the store is."""
        raise ConfigError(
            "`ktrdr operations prune` works on this machine's store; run it on the server's "
            "machine (without --api)"
        )

    def resume(self, operation_id: str) -> str:
        """``POST /operations/{id}/resume``; the new operation's id."""
        return self.client.resume(operation_id).task_id

    def _check_name(self, strategy: str) -> None:
        """Refuse a file path: the server resolves strategies by name."""
        if "/" in strategy or "\\" in strategy or strategy.endswith((".yaml", ".yml")):
            raise ConfigError(
                f"with --api, STRATEGY must be a strategy name the server knows, not a file "
                f"path ({strategy!r}); see `GET {self.location}/api/v1/strategies`, or train "
                "locally with --local"
            )

    def _listing(self, name: str) -> StrategyListing:
        """The server's listing of strategy ``name``."""
        listing = self.client.strategies()
        for item in listing:
            if item.name == name:
                if not item.valid:
                    problems = "; ".join(item.problems) or "it does not load"
                    raise ConfigError(f"strategy {name!r} on the server is invalid: {problems}")
                return item
        names = ", ".join(sorted(item.name for item in listing)) or "none"
        raise ConfigError(
            f"Strategy file not found: {name!r} is not a strategy of the server at "
            f"{self.location} (it has: {names}); put the file in the server's "
            "KTRDR_STRATEGIES_DIR or use one of those names"
        )

    def events(self, operation_id: str) -> Iterator[StreamEvent]:
        """``GET /operations/{id}/events``, resumed without gaps when the connection drops."""
        return self.client.events(operation_id)

    def result(self, operation_id: str) -> TrainingResult:
        """``GET /operations/{id}/result``."""
        return self.client.result(operation_id)

    def analytics(self, operation_id: str) -> TrainingAnalytics:
        """``GET /trainings/{id}/analytics``."""
        return self.client.analytics(operation_id)

    def result_document(self, operation_id: str) -> PerformanceResponse:
        """v1's ``GET /trainings/{id}/performance``, which v1 clients read."""
        return self.client.performance(operation_id)

    # -- operations --------------------------------------------------------------------------

    def cancel(
        self, operation_id: str, *, graceful: bool = False, reason: str | None = None
    ) -> OperationSnapshot:
        """``DELETE /operations/{id}``, then the operation as it is now."""
        self.client.cancel(operation_id, graceful=graceful, reason=reason)
        return self.get_operation(operation_id)

    def get_operation(self, operation_id: str) -> OperationSnapshot:
        """``GET /operations/{id}`` (and its result, once it has one)."""
        return self._snapshot(self.client.get_operation(operation_id))

    def wait(self, operation_id: str, *, timeout: float | None = None) -> OperationSnapshot:
        """Poll until the operation is final (or ``timeout``)."""
        return self._snapshot(self.client.wait(operation_id, timeout=timeout))

    def _snapshot(self, info: OperationInfo) -> OperationSnapshot:
        result = None
        if info.result_summary is not None:
            try:
                result = self.client.result(info.operation_id)
            except StateConflictError:  # pragma: no cover - a summary means a result
                result = None
        return operation_snapshot(info, result)

    def operation_document(self, operation_id: str) -> OperationInfo:
        """v1's OperationInfo, as v1 clients read it."""
        return self.client.get_operation(operation_id)

    def list_operations(self, *, status: str | None, limit: int) -> OperationListResponse:
        """``GET /operations`` (the server checks ``status``)."""
        return self.client.list_operations(status=status, limit=limit)

    # -- models and strategies ---------------------------------------------------------------

    def list_models(self) -> list[ModelListItem]:
        """``GET /models``."""
        return self.client.list_models()

    def list_strategies(self) -> list[StrategyListing]:
        """``GET /strategies``: the server's ``KTRDR_STRATEGIES_DIR`` and shipped examples."""
        return self.client.strategies()

    def check_strategy(self, text: str, *, file: str) -> StrategyCheck:
        """``POST /strategies/validate``: the server's problems, notices and layout."""
        answer = self.client.validate_strategy(text, file_name=file)
        try:
            return StrategyCheck(
                problems=msgspec.convert(answer.problems, list[StrategyProblem]),
                notices=msgspec.convert(answer.notices, list[StrategyNotice]),
                layout=answer.layout,
            )
        except msgspec.ValidationError as exc:
            raise KtrdrError(
                f"the server at {self.location} reported strategy problems in an unexpected "
                f"shape ({exc}); is it a KTRDR API of this version?"
            ) from exc

    def migrate_strategy(self, text: str, *, file: str) -> str:
        """Refused: migration needs no server (``ktrdr strategies migrate`` runs here).

        Raises:
            ConfigError: always, saying to run it without ``--api``.
        """
        del text
        raise ConfigError(
            f"migrating {file} runs in this process, not on {self.location}: run "
            "`ktrdr strategies migrate FILE` without --api (it needs no server or data)"
        )

    def check_features(self, strategy: str, request: TrainingRequest) -> FeatureReport:
        """Not over HTTP: checking features reads the data, which is this machine's.

        Raises:
            ConfigError: always, saying to run it locally.
        """
        raise ConfigError(
            f"checking a strategy's features reads its data on this machine; the server at "
            f"{self.location} is not asked. Run it without --api (add --local if "
            "KTRDR_API_URL is set)"
        )

    def close(self) -> None:
        """Close the connection pool (a training started through it keeps running unless
        it was cancelled)."""
        self.client.close()


def operation_snapshot(info: OperationInfo, result: TrainingResult | None) -> OperationSnapshot:
    """The core record an API's :class:`~ktrdr_lib.schemas.v1.OperationInfo` was made from.

    ``progress.context`` carries the ProgressSnapshot's fields, ``status_detail`` the precise
    status, ``metadata`` the mode and the host session; ``result`` is the run's result, which
    the OperationInfo only summarises.

    Raises:
        KtrdrError: the OperationInfo does not hold a snapshot or a known status.
    """
    parameters = info.metadata.get("parameters") or {}
    try:
        progress = msgspec.convert(
            {"operation_id": info.operation_id, **info.progress.context}, ProgressSnapshot
        )
        status = msgspec.convert(info.status_detail or info.status, OperationStatus)
    except msgspec.ValidationError as exc:
        raise KtrdrError(
            f"operation {info.operation_id} came back in an unexpected shape ({exc}); is the "
            "server a KTRDR API of this version?"
        ) from exc
    return OperationSnapshot(
        operation_id=info.operation_id,
        operation_type=info.operation_type,
        status=status,
        mode=str(info.metadata.get("mode", "?")),
        created_at=info.created_at,
        started_at=info.started_at,
        finished_at=info.completed_at,
        metadata=info.metadata,
        progress=progress,
        error_message=info.error_message,
        cancellation_reason=info.cancellation_reason,
        host_session_id=parameters.get("session_id") or progress.host_session_id,
        result=result,
    )
