"""Run the API under uvicorn: ``ktrdr serve api``."""

from __future__ import annotations

import sys

from ktrdr_lib.http.addresses import is_loopback
from ktrdr_lib.settings import read_raw, read_str
from web.auth import check_token
from web.guards import hosts_answered
from web.server import ServerLimits, run_server

__all__ = ["serve"]


def serve(
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
    allow_remote: bool = False,
    log_level: str = "info",
    local_runner: str | None = None,
) -> None:
    """Serve the API with the embedded SQLite store.

    Without ``KTRDR_API_TOKEN`` the API has no authentication, so it binds to loopback only
    unless ``allow_remote`` is given; it says which at start-up. It then answers only requests
    for this machine's names (and ``host``, or those in ``KTRDR_ALLOWED_HOSTS``) with JSON
    bodies and no foreign ``Origin`` (:mod:`web.guards`). A token shorter than 16 characters,
    or an empty one, is refused. Connections are bounded by :class:`~web.server.ServerLimits`
    (``KTRDR_SERVER_*``).

    Local trainings run in a child process each (``local_runner="process"``), so requests
    stay fast without slowing the training; ``thread`` trains inside the server process
    instead. Unset, it is :func:`~api.app.default_local_runner` (``KTRDR_LOCAL_RUNNER``, else
    ``process``), the default :func:`~api.app.create_app` uses too.

    With ``KTRDR_RAY_ADDRESS`` set, ``mode: ray`` trainings and sweeps train on that Ray
    cluster (``local``: a Ray started on this machine at the first such run).

    Raises:
        ConfigError: a non-loopback host without a token and without ``allow_remote``, an
            empty or short token, an unknown ``local_runner``, a limit setting that is not a
            whole number, or ``KTRDR_RAY_ADDRESS`` set without the ray extra.
    """
    from api.app import create_app, default_local_runner
    from ktrdr_lib.errors import ConfigError
    from ktrdr_lib.runners.ray import RAY_ADDRESS_ENV, import_ray

    token = check_token(read_raw("KTRDR_API_TOKEN"), setting="KTRDR_API_TOKEN")
    limits = ServerLimits.from_env()
    if token is None and not is_loopback(host) and not allow_remote:
        raise ConfigError(
            f"refusing to serve on {host} without authentication: set KTRDR_API_TOKEN, or "
            "pass --allow-remote to serve an open API on purpose"
        )
    if token is None:
        sys.stderr.write(
            f"KTRDR_API_TOKEN is not set: authentication is OFF; serving on {host}:{port}"
            + (" (loopback only)\n" if is_loopback(host) else " (open to the network!)\n")
            + "open mode: JSON bodies only; Host must be this machine "
            + f"({', '.join(['localhost', '127.0.0.1', '[::1]', *hosts_answered(host)])}); "
            + "no requests from other sites' pages (docs/security.md)\n"
        )
    else:
        sys.stderr.write(f"bearer-token authentication on; serving on {host}:{port}\n")
    runner = local_runner or default_local_runner()
    if runner not in ("thread", "process"):
        raise ConfigError(f"local runner {runner!r} is not one of 'thread' or 'process'")
    ray_address = read_str(RAY_ADDRESS_ENV)
    if ray_address is not None:
        import_ray()  # without the extra: the error names it now, not as a start-up traceback
    app = create_app(
        local_runner="process" if runner == "process" else "thread",
        allowed_hosts=hosts_answered(host),
    )
    banner = "local trainings run " + (
        "in a child process each\n" if runner == "process" else "inside this process\n"
    )
    if ray_address is None:
        banner += f"mode 'ray' and sweeps are off: set {RAY_ADDRESS_ENV} to a Ray cluster\n"
    else:
        where = "a local Ray" if ray_address == "local" else f"the Ray cluster at {ray_address}"
        banner += f"mode 'ray' trainings and sweeps train on {where}\n"
    run_server(app, host=host, port=port, log_level=log_level, banner=banner, limits=limits)
