"""Run the API under uvicorn: ``ktrdr serve api``."""

from __future__ import annotations

import ipaddress
import os
import sys

__all__ = ["is_loopback", "serve"]


def is_loopback(host: str) -> bool:
    """Whether ``host`` names only this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve(
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
    allow_remote: bool = False,
    log_level: str = "info",
) -> None:
    """Serve the API with the embedded SQLite store.

    Without ``KTRDR_API_TOKEN`` the API has no authentication, so it binds to loopback only
    unless ``allow_remote`` is given; it says which at start-up.

    Raises:
        ConfigError: a non-loopback host without a token and without ``allow_remote``.
    """
    import uvicorn

    from api.app import create_app
    from ktrdr_lib.errors import ConfigError

    token = os.environ.get("KTRDR_API_TOKEN") or None
    if token is None and not is_loopback(host) and not allow_remote:
        raise ConfigError(
            f"refusing to serve on {host} without authentication: set KTRDR_API_TOKEN, or "
            "pass --allow-remote to serve an open API on purpose"
        )
    if token is None:
        sys.stderr.write(
            f"KTRDR_API_TOKEN is not set: authentication is OFF; serving on {host}:{port}"
            + (" (loopback only)\n" if is_loopback(host) else " (open to the network!)\n")
        )
    else:
        sys.stderr.write(f"bearer-token authentication on; serving on {host}:{port}\n")
    uvicorn.run(create_app(), host=host, port=port, log_level=log_level)
