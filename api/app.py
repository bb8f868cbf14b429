"""create_app(): the Litestar face of the TrainingOrchestrator.

Routes live under ``/api/v1``; the OpenAPI schema is served at ``/schema``. The app adds no
training logic: the routes (:mod:`api.routes`) call :class:`~api.service.TrainingApi`, which
calls the orchestrator (or the model store) and returns the v1 Structs. Its limits (body size,
request caps, open mode's checks, operation retention) are listed in docs/api.md.

Example:
    >>> from api import create_app
    >>> app = create_app()            # orchestrator created at start-up under KTRDR_HOME
    >>> # uvicorn.run(app, host="127.0.0.1", port=8000)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any, Literal

from litestar import Litestar

from api.routes import (
    ModelsController,
    OperationsController,
    StrategiesController,
    SweepsController,
    TrainingsController,
    health,
)
from api.service import TrainingApi
from ktrdr_lib.errors import ConfigError
from ktrdr_lib.models.predictor import LoadedModel
from ktrdr_lib.operations.orchestrator import TrainingOrchestrator
from ktrdr_lib.operations.retention import OperationRetention, retention_settings
from ktrdr_lib.runners.process import ProcessTrainingRunner
from ktrdr_lib.settings import read_choice, read_int, read_raw
from web.app import DEFAULT_MAX_BODY, create_service_app
from web.auth import check_token
from web.limits import RequestLimits

__all__ = [
    "API_PREFIX",
    "API_TOKEN_ENV",
    "DEFAULT_MAX_BODY",
    "LOCAL_RUNNERS",
    "MAX_BODY_ENV",
    "create_app",
    "default_local_runner",
]

log = logging.getLogger(__name__)

API_PREFIX = "/api/v1"
API_TOKEN_ENV = "KTRDR_API_TOKEN"
MAX_BODY_ENV = "KTRDR_API_MAX_BODY"
LOCAL_RUNNERS = ("thread", "process")
PRUNE_EVERY_S = 3600.0


def default_local_runner() -> Literal["thread", "process"]:
    """How ``local`` runs train when neither :func:`create_app` nor ``ktrdr serve api`` is
    told: ``KTRDR_LOCAL_RUNNER``, else ``process`` (a child process per run). The one default
    both share.

    Raises:
        ConfigError: ``KTRDR_LOCAL_RUNNER`` is neither ``thread`` nor ``process``.
    """
    return "thread" if read_choice("KTRDR_LOCAL_RUNNER") == "thread" else "process"


def create_app(
    orchestrator: TrainingOrchestrator | None = None,
    *,
    api_token: str | None = None,
    max_body_bytes: int | None = None,
    sse_poll_s: float = 0.1,
    sse_heartbeat_s: float = 15.0,
    shutdown_grace_s: float = 10.0,
    orchestrator_options: dict[str, Any] | None = None,
    local_runner: Literal["thread", "process"] | None = None,
    limits: RequestLimits | None = None,
    retention: bool = True,
    prune_every_s: float = PRUNE_EVERY_S,
    allowed_hosts: list[str] | None = None,
    allowed_origins: list[str] | None = None,
) -> Litestar:
    """Build the API app.

    Args:
        orchestrator: use this orchestrator; by default one is created at start-up (so the
            first request does not pay Lightning's import) with ``orchestrator_options``.
        api_token: bearer token every route but ``/health`` requires (default
            ``KTRDR_API_TOKEN``; none means no authentication, and then open mode's checks
            guard against web pages: :mod:`web.guards`).
        max_body_bytes: request bodies above this are answered 413 (default
            ``KTRDR_API_MAX_BODY`` or 1 MB).
        sse_poll_s: how often event streams look for new snapshots (a sweep's stream at most
            every 0.5 s: each look reads every trial from the store).
        sse_heartbeat_s: idle seconds between heartbeat comments on event streams.
        shutdown_grace_s: at shutdown, how long running trainings may take to finish before
            they are marked ``interrupted``.
        orchestrator_options: keyword arguments for the orchestrator created at start-up
            (e.g. ``ray_runner=RayTrainingRunner(...)`` or ``ray_address``; without them it
            reads ``KTRDR_RAY_ADDRESS``, and ``mode: ray`` trainings and sweeps answer 400
            while no Ray cluster is configured).
        local_runner: how that orchestrator trains ``local`` runs: ``process`` (a child
            process per run, so training does not share the GIL with the request handlers)
            or ``thread`` (in this process). By default :func:`default_local_runner`
            (``KTRDR_LOCAL_RUNNER``, else ``process``): the same as ``ktrdr serve api``. A
            ``runner`` in ``orchestrator_options`` takes precedence; an ``orchestrator``
            given keeps its own.
        limits: the caps on requests (default: from the settings,
            :meth:`~web.limits.RequestLimits.from_env`).
        retention: forget finished operations past ``KTRDR_KEEP_OPERATIONS_DAYS`` (90) or
            beyond the newest ``KTRDR_KEEP_OPERATIONS`` (10,000), at start-up and every
            ``prune_every_s`` seconds (models are kept; see
            :class:`~ktrdr_lib.operations.retention.OperationRetention`).
        prune_every_s: seconds between two prunes while the app runs.
        allowed_hosts: without a token, host names answered besides this machine's (default
            ``KTRDR_ALLOWED_HOSTS``).
        allowed_origins: without a token, origins whose pages are answered (default
            ``KTRDR_ALLOWED_ORIGINS``).

    Raises:
        ConfigError: an unknown ``local_runner``; an empty or short token (fewer than 16
            characters); a limit or retention setting that is not a whole number >= 1.
    """
    if local_runner is None:
        local_runner = default_local_runner()
    if local_runner not in LOCAL_RUNNERS:
        raise ConfigError(
            f"local_runner: {local_runner!r} is not a local runner; use 'thread' or 'process'"
        )
    if api_token is not None:
        token = check_token(api_token, setting="api_token")
    else:
        token = check_token(read_raw(API_TOKEN_ENV), setting=API_TOKEN_ENV)
    if max_body_bytes is not None and max_body_bytes < 1:
        raise ConfigError(f"max_body_bytes must be >= 1, got {max_body_bytes}")
    limit = max_body_bytes or read_int(MAX_BODY_ENV)
    caps = limits if limits is not None else RequestLimits.from_env()
    keep_s, keep_count = retention_settings()
    if prune_every_s <= 0:
        raise ConfigError(f"prune_every_s must be > 0, got {prune_every_s}")
    owned = orchestrator is None
    loaded_models: dict[str, LoadedModel] = {}  # kept when the lifespan restarts
    pruning: dict[str, asyncio.Task[None]] = {}

    def service(orch: TrainingOrchestrator) -> TrainingApi:
        return TrainingApi(
            orch,
            loaded_models=loaded_models,
            sse_poll_s=sse_poll_s,
            sse_heartbeat_s=sse_heartbeat_s,
            limits=caps,
        )

    async def prune_periodically(keeper: OperationRetention) -> None:
        while True:
            try:
                await asyncio.to_thread(keeper.prune)
            except Exception:  # a failed prune must not end the loop (or the app)
                log.exception("pruning finished operations failed; trying again later")
            await asyncio.sleep(prune_every_s)

    def start(app: Litestar) -> None:
        if app.state.get("orchestrator") is None:
            options = dict(orchestrator_options or {})
            if local_runner == "process":
                options.setdefault("runner", ProcessTrainingRunner())
            app.state.orchestrator = TrainingOrchestrator(**options)
        app.state.api = service(app.state.orchestrator)
        if retention:
            keeper = OperationRetention(
                app.state.orchestrator, keep_s=keep_s, max_finished=keep_count
            )
            pruning["task"] = asyncio.get_running_loop().create_task(prune_periodically(keeper))
        log.info("orchestrator ready: store %s", app.state.orchestrator.store.path)

    async def stop(app: Litestar) -> None:
        task = pruning.pop("task", None)
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        orch: TrainingOrchestrator | None = app.state.get("orchestrator")
        if orch is not None and owned:
            orch.shutdown(cancel_running=False, timeout=shutdown_grace_s)
            app.state.orchestrator = None  # a restarted lifespan creates a fresh one
            app.state.api = None

    return create_service_app(
        prefix=API_PREFIX,
        route_handlers=[
            TrainingsController,
            OperationsController,
            ModelsController,
            StrategiesController,
            SweepsController,
            health,
        ],
        service="api",
        on_startup=[start],
        on_shutdown=[stop],
        token=token,
        token_env=API_TOKEN_ENV,
        title="KTRDR training API",
        description=(
            "Start, follow, cancel and inspect training operations (here, on a training "
            "host or on a Ray cluster) and sweeps over a strategy's settings; save, load and "
            "predict with models. v1 routes keep the KTRDR v1 response shapes."
        ),
        max_body_bytes=limit,
        max_body_env=MAX_BODY_ENV,
        limits=caps,
        allowed_hosts=allowed_hosts,
        allowed_origins=allowed_origins,
        state={
            "orchestrator": orchestrator,
            "api": None if orchestrator is None else service(orchestrator),
        },
    )
