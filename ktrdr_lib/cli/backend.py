"""Backend: what the commands ask of the place where operations live, and how one is chosen.

Every command is written once, against this protocol; two classes implement it:

* :class:`~ktrdr_lib.cli.local.LocalBackend`: this process, through the
  :class:`~ktrdr_lib.operations.orchestrator.TrainingOrchestrator`, the model store and the
  strategy files (the operations store under ``KTRDR_HOME``);
* :class:`~ktrdr_lib.cli.remote.ApiBackend`: a running ``ktrdr serve api``, through
  :class:`~ktrdr_lib.http.client.ApiClient`.

Both answer with the schema Structs. Where the two doors answer ``--json`` in different shapes
(v1 clients read the API's), the ``*_document`` methods give what ``--json`` prints; the text
output comes from the core Structs, so it is the same whichever backend produced it.

:func:`open_backend` picks one: ``--api URL``, else ``KTRDR_API_URL`` unless ``--local``, else
this process.

Example:
    >>> backend = open_backend(build_parser().parse_args(["models", "list"]))  # doctest: +SKIP
    >>> [m.model_id for m in backend.list_models()]                             # doctest: +SKIP
    ['small_test/v1']
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from typing import TYPE_CHECKING, Protocol, TypeAlias

from ktrdr_lib.errors import ConfigError
from ktrdr_lib.schemas.operations import FinalEvent
from ktrdr_lib.schemas.progress import ProgressSnapshot
from ktrdr_lib.settings import read_str

if TYPE_CHECKING:
    from ktrdr_lib.schemas.models import ModelInfo
    from ktrdr_lib.schemas.operations import OperationSnapshot
    from ktrdr_lib.schemas.requests import TrainingRequest
    from ktrdr_lib.schemas.results import FeatureReport, TrainingAnalytics, TrainingResult
    from ktrdr_lib.schemas.status import TrainingMode
    from ktrdr_lib.schemas.strategies import StrategyCheck, StrategyListing
    from ktrdr_lib.schemas.sweeps import SweepRequest, SweepSnapshot
    from ktrdr_lib.schemas.v1 import (
        ModelListItem,
        OperationInfo,
        OperationListResponse,
        PerformanceResponse,
    )

__all__ = ["Backend", "StreamEvent", "api_url", "open_backend"]

StreamEvent: TypeAlias = ProgressSnapshot | FinalEvent
"""What following an operation yields: its snapshots, then one :class:`FinalEvent`."""


class Backend(Protocol):
    """Where the commands' operations, models and strategies live.

    Errors are the project's (:class:`~ktrdr_lib.errors.KtrdrError` and its subclasses),
    whichever side raised them.
    """

    @property
    def location(self) -> str | None:
        """The API's base URL, or ``None`` for this process."""
        ...

    def start_training(
        self, strategy: str, request: TrainingRequest, *, mode: TrainingMode = "local"
    ) -> str:
        """Validate and start a training of ``strategy`` (a name, or locally a YAML path) in
        ``mode`` (``local``, ``host`` or ``ray``); returns its operation id at once."""
        ...

    def start_sweep(self, request: SweepRequest) -> str:
        """Validate and start a sweep (its trials train on Ray); returns the sweep's
        operation id at once.

        Raises:
            ConfigError: the request or its space is invalid, or no Ray cluster is configured
                (nothing is started).
        """
        ...

    def get_sweep(self, sweep_id: str) -> SweepSnapshot:
        """The sweep as it stands: its record, every trial and, once it ended, the ranking."""
        ...

    def sweep_snapshots(self, sweep_id: str) -> Iterator[SweepSnapshot]:
        """The sweep each time it changes, until the final one (which has the ranking)."""
        ...

    def events(self, operation_id: str) -> Iterator[StreamEvent]:
        """The operation's snapshots from now on, then one :class:`FinalEvent`."""
        ...

    def forget_finished(
        self, *, keep_days: float | None = None, keep_count: int | None = None
    ) -> list[str]:
        """Forget finished operations that ended more than ``keep_days`` ago or beyond the
        newest ``keep_count`` (defaults: the retention settings); their ids. Only where the
        store is (not over an API)."""
        ...

    def prune_checkpoints(self, *, keep_days: float | None = None) -> tuple[list[str], int]:
        """Remove checkpoints no run can resume from; the operations whose went and the bytes
        the rest use. Only where the store is (not over an API)."""
        ...

    def resume(self, operation_id: str) -> str:
        """Continue a stopped run from its last checkpoint; the new (linked) operation's id.

        Raises:
            StateConflictError: it is active or completed, or left no checkpoint.
            ConfigError / DataError: its strategy or data changed since (named).
        """
        ...

    def cancel(
        self, operation_id: str, *, graceful: bool = False, reason: str | None = None
    ) -> OperationSnapshot:
        """Ask the operation to stop; the operation right after (``cancelling`` or final).

        Raises:
            StateConflictError: it had already ended.
        """
        ...

    def get_operation(self, operation_id: str) -> OperationSnapshot:
        """The operation with its latest progress and, once it ended, its result."""
        ...

    def wait(self, operation_id: str, *, timeout: float | None = None) -> OperationSnapshot:
        """The operation once it is final (or when ``timeout`` seconds have passed)."""
        ...

    def list_operations(self, *, status: str | None, limit: int) -> OperationListResponse:
        """Operations newest first, at most ``limit``, as the API's list rows."""
        ...

    def result(self, operation_id: str) -> TrainingResult:
        """The run's result (partial for a cancelled or failed run).

        Raises:
            StateConflictError: the operation has no result (yet).
        """
        ...

    def analytics(self, operation_id: str) -> TrainingAnalytics:
        """The detailed analytics the run recorded.

        Raises:
            NotFoundError: the run recorded none (not asked for, or it did not complete).
            StateConflictError: the run has not ended yet.
        """
        ...

    def operation_document(self, operation_id: str) -> OperationSnapshot | OperationInfo:
        """What ``operations show --json`` prints: the core record here, v1's OperationInfo
        over the API."""
        ...

    def result_document(self, operation_id: str) -> TrainingResult | PerformanceResponse:
        """What ``train --json`` prints: the TrainingResult here, v1's performance answer
        over the API."""
        ...

    def list_models(self) -> list[ModelInfo] | list[ModelListItem]:
        """Every saved model version (the store's listing here, v1's rows over the API)."""
        ...

    def list_strategies(self) -> list[StrategyListing]:
        """The strategies found by name, invalid ones included."""
        ...

    def check_strategy(self, text: str, *, file: str) -> StrategyCheck:
        """Every problem and notice of a strategy's YAML text, and its layout."""
        ...

    def migrate_strategy(self, text: str, *, file: str) -> str:
        """The strategy's v3 YAML, its notices as comments on top.

        Raises:
            StrategyError: the text has problems.
        """
        ...

    def check_features(self, strategy: str, request: TrainingRequest) -> FeatureReport:
        """Prepare the strategy's data as training would (no fit) and report its inputs.

        Raises:
            ConfigError: the backend cannot read data (an API backend).
            StrategyError, DataError: as a training of the same request would.
        """
        ...

    def close(self) -> None:
        """Release what the backend holds; a training it started and that still runs is
        cancelled."""
        ...


def api_url(args: argparse.Namespace) -> str | None:
    """The API a command drives: ``--api``, else ``KTRDR_API_URL`` unless ``--local``; ``None``
    for this process (always for the commands without the remote options)."""
    if not hasattr(args, "api"):
        return None
    if args.api:
        return str(args.api)
    if args.local:
        return None
    return read_str("KTRDR_API_URL")


def open_backend(args: argparse.Namespace) -> Backend:
    """The backend the parsed command line asks for (see :func:`api_url`).

    Raises:
        ConfigError: a local-only option (``--data-dir``, ``--no-save``, ``--ray-address``)
            with an API, no httpx for an API, or an unusable API URL.
    """
    url = api_url(args)
    data_dir: str | None = getattr(args, "data_dir", None)
    no_save: bool = getattr(args, "no_save", False)
    ray_address: str | None = getattr(args, "ray_address", None)
    if url is None:
        from ktrdr_lib.cli.local import LocalBackend

        return LocalBackend(data_dir=data_dir, save_model=not no_save, ray_address=ray_address)
    for flag, given in (("--data-dir", data_dir), ("--no-save", no_save)):
        if given:
            raise ConfigError(
                f"{flag} applies to local runs only; the server uses its own data and saves "
                "every model (leave it out, or add --local)"
            )
    if ray_address is not None:
        raise ConfigError(
            "--ray-address applies to runs in this process; the server trains on the Ray "
            "cluster it was started with (its KTRDR_RAY_ADDRESS): leave it out, or add --local"
        )
    try:
        from ktrdr_lib.cli.remote import ApiBackend
    except ImportError as exc:
        raise ConfigError(
            f"--api / KTRDR_API_URL needs httpx ({exc}); install the api extra: "
            "pip install 'ktrdr_lib[api]'"
        ) from exc
    return ApiBackend.connect(url, token=read_str("KTRDR_API_TOKEN"))
