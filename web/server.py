"""Serving an app under uvicorn, the last step of ``ktrdr serve api`` and ``ktrdr serve host``."""

from __future__ import annotations

import sys

from litestar import Litestar

__all__ = ["run_server"]


def run_server(app: Litestar, *, host: str, port: int, log_level: str, banner: str) -> None:
    """Write ``banner`` (what is served, and how) to stderr, then serve ``app`` on
    ``host:port`` until interrupted."""
    import uvicorn

    sys.stderr.write(banner)
    uvicorn.run(app, host=host, port=port, log_level=log_level)
