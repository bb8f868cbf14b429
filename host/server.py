"""Run the training host under uvicorn: ``ktrdr serve host``."""

from __future__ import annotations

from ktrdr_lib.errors import ConfigError
from ktrdr_lib.http.addresses import is_loopback
from ktrdr_lib.schemas.host import HOST_TOKEN_ENV
from ktrdr_lib.settings import read_raw
from web.auth import check_token
from web.guards import hosts_answered
from web.server import ServerLimits, run_server

__all__ = ["serve"]


def _devices(value: str) -> int | str:
    """``--devices``: a count (``2``) or Lightning's ``auto`` / ``-1`` / ``"0,1"``."""
    return int(value) if value.lstrip("-").isdigit() else value


def serve(
    host: str = "127.0.0.1",
    port: int = 5002,
    *,
    accelerator: str = "auto",
    devices: str = "1",
    strategy: str = "auto",
    precision: str | None = None,
    insecure_no_token: bool = False,
    log_level: str = "info",
) -> None:
    """Serve the training host.

    The token is read from ``KTRDR_HOST_TOKEN`` (at least 16 characters; an empty one is
    refused); without one the host refuses to start unless ``insecure_no_token`` is given, and
    then only on a loopback address, answering only requests for this machine's names with
    JSON bodies and no foreign ``Origin`` (:mod:`web.guards`). Connections are bounded by
    :class:`~web.server.ServerLimits` (``KTRDR_SERVER_*``).

    Raises:
        ConfigError: no token (and not allowed to run without one), an empty or short token,
            or a limit setting that is not a whole number.
    """
    from host.app import create_app
    from ktrdr_lib.pipeline.options import TrainerOptions

    token = check_token(read_raw(HOST_TOKEN_ENV), setting=HOST_TOKEN_ENV)
    limits = ServerLimits.from_env()
    if token is None and not insecure_no_token:
        raise ConfigError(
            f"refusing to start the training host without a token: set {HOST_TOKEN_ENV} "
            "(or pass --insecure-no-token on a loopback address)"
        )
    if token is None and not is_loopback(host):
        raise ConfigError(
            f"--insecure-no-token is for loopback only; {host} is not a loopback address. "
            f"Set {HOST_TOKEN_ENV} to serve on the network."
        )
    options = TrainerOptions(
        accelerator=accelerator,
        devices=_devices(devices),
        strategy=strategy,
        precision=precision,
    )
    app = create_app(
        token=token,
        insecure_no_token=insecure_no_token,
        trainer_options=options,
        allowed_hosts=hosts_answered(host),
    )
    auth = (
        "authentication OFF (loopback only; JSON bodies, this machine's host names, no other "
        "sites' pages)"
        if token is None
        else "bearer-token authentication"
    )
    banner = (
        f"training host on {host}:{port}: {auth}; accelerator={accelerator} devices={devices} "
        f"strategy={strategy} precision={precision}\n"
    )
    run_server(app, host=host, port=port, log_level=log_level, banner=banner, limits=limits)
