"""create_app(): the training host's Litestar app.

Its limits (body size, request caps, open mode's checks, session retention) are listed in
docs/host.md.

Example:
    >>> from host import create_app
    >>> app = create_app(token="a-long-random-s3cret", data_dir="/data/ohlcv")  # doctest: +SKIP
    >>> # uvicorn.run(app, host="0.0.0.0", port=5002)
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from litestar import Litestar

from host.routes import SessionsController, health
from host.service import TrainingHost
from ktrdr_lib.errors import ConfigError
from ktrdr_lib.operations.orchestrator import TrainingOrchestrator
from ktrdr_lib.paths import ktrdr_home
from ktrdr_lib.pipeline.options import TrainerOptions
from ktrdr_lib.runners.local import LocalTrainingRunner
from ktrdr_lib.runners.process import ProcessTrainingRunner
from ktrdr_lib.schemas.host import HOST_PREFIX, HOST_TOKEN_ENV
from ktrdr_lib.settings import read_int, read_raw
from web.app import DEFAULT_MAX_BODY, create_service_app
from web.auth import check_token
from web.limits import RequestLimits

__all__ = ["DEFAULT_MAX_BODY", "HOST_PREFIX", "MAX_BODY_ENV", "create_app"]

MAX_BODY_ENV = "KTRDR_HOST_MAX_BODY"

log = logging.getLogger(__name__)


def create_app(
    *,
    token: str | None = None,
    insecure_no_token: bool = False,
    home: str | os.PathLike[str] | None = None,
    data_dir: str | os.PathLike[str] | None = None,
    trainer_options: TrainerOptions | None = None,
    max_concurrent: int | None = None,
    progress_interval: float = 0.2,
    retention_s: float = 3600.0,
    max_finished: int = 100,
    shutdown_grace_s: float = 10.0,
    max_body_bytes: int | None = None,
    limits: RequestLimits | None = None,
    allowed_hosts: list[str] | None = None,
    allowed_origins: list[str] | None = None,
) -> Litestar:
    """Build the host app; its orchestrator is created at start-up.

    Args:
        token: the bearer token every route but health requires (default
            ``KTRDR_HOST_TOKEN``); at least 16 characters.
        insecure_no_token: allow running without a token (loopback use only; open mode's
            checks then guard against web pages: :mod:`web.guards`).
        home: the host's state directory (default ``KTRDR_HOME``): ``operations.db`` and
            ``models/``.
        data_dir: OHLCV directory (default ``KTRDR_DATA_DIR`` or the bundled samples).
        trainer_options: Lightning accelerator, devices, strategy and precision.
        max_concurrent: sessions training at once (default: 1 when one session uses several
            devices, else the orchestrator's default).
        progress_interval: seconds between progress snapshots.
        retention_s: seconds finished sessions are kept.
        max_finished: most finished sessions kept.
        shutdown_grace_s: at shutdown, how long running sessions may take before they are
            marked ``interrupted``.
        max_body_bytes: request bodies above this are answered 413 (default
            ``KTRDR_HOST_MAX_BODY`` or 1 MB).
        limits: the caps on requests, ``strategy_yaml``'s length among them (default: from
            the settings, :meth:`~web.limits.RequestLimits.from_env`).
        allowed_hosts: without a token, host names answered besides this machine's (default
            ``KTRDR_ALLOWED_HOSTS``).
        allowed_origins: without a token, origins whose pages are answered (default
            ``KTRDR_ALLOWED_ORIGINS``).

    Raises:
        ConfigError: no token and not ``insecure_no_token``; an empty or short token (fewer
            than 16 characters); a limit setting that is not a whole number >= 1.
    """
    if token is not None:
        secret = check_token(token, setting="token")
    else:
        secret = check_token(read_raw(HOST_TOKEN_ENV), setting=HOST_TOKEN_ENV)
    if secret is None and not insecure_no_token:
        raise ConfigError(
            f"the training host needs a bearer token: set {HOST_TOKEN_ENV} (or pass token=); "
            "use --insecure-no-token only on loopback"
        )
    options = trainer_options or TrainerOptions()
    if max_concurrent is None and options.world_size > 1:
        max_concurrent = 1
    root = Path(home) if home is not None else None
    if max_body_bytes is not None and max_body_bytes < 1:
        raise ConfigError(f"max_body_bytes must be >= 1, got {max_body_bytes}")
    body_limit = max_body_bytes or read_int(MAX_BODY_ENV)
    caps = limits if limits is not None else RequestLimits.from_env()

    def start(app: Litestar) -> None:
        # Several devices: Lightning's ddp launcher re-runs the training's command for each
        # rank, so such runs go to a training command of their own, never this server's.
        runner = (
            ProcessTrainingRunner(options)
            if options.world_size > 1
            else LocalTrainingRunner(options)
        )
        orchestrator = TrainingOrchestrator(
            home=root or ktrdr_home(),
            runner=runner,
            max_concurrent=max_concurrent,
            progress_interval=progress_interval,
            data_dir=data_dir,
        )
        app.state.host = TrainingHost(
            orchestrator, retention_s=retention_s, max_finished=max_finished, limits=caps
        )
        log.info("training host ready: store %s", orchestrator.store.path)

    def stop(app: Litestar) -> None:
        host: TrainingHost | None = app.state.get("host")
        if host is not None:
            host.orchestrator.shutdown(cancel_running=False, timeout=shutdown_grace_s)
            app.state.host = None

    return create_service_app(
        prefix=HOST_PREFIX,
        route_handlers=[SessionsController, health],
        service="host",
        on_startup=[start],
        on_shutdown=[stop],
        token=secret,
        token_env=HOST_TOKEN_ENV,
        title="KTRDR training host",
        server_name="the host",
        max_body_bytes=body_limit,
        max_body_env=MAX_BODY_ENV,
        limits=caps,
        allowed_hosts=allowed_hosts,
        allowed_origins=allowed_origins,
    )
