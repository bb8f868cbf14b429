"""Serving an app under uvicorn, the last step of ``ktrdr serve api`` and ``ktrdr serve host``,
with limits on what clients can hold.

Without limits a server holds every connection a client opens, for as long as the client
likes: one that sends half a request line and stops keeps its connection (and its slot)
forever. :class:`ServerLimits` bounds that (each has a setting; docs/api.md lists them):

==========================  ===================================  =======
limit                       setting                              default
==========================  ===================================  =======
``max_connections``         ``KTRDR_SERVER_MAX_CONNECTIONS``     100
``keep_alive_s``            ``KTRDR_SERVER_KEEP_ALIVE_S``        5
``request_timeout_s``       ``KTRDR_SERVER_REQUEST_TIMEOUT_S``   30
``max_header_bytes``        ``KTRDR_SERVER_MAX_HEADER_BYTES``    16384
==========================  ===================================  =======

``max_connections`` is uvicorn's ``limit_concurrency`` (beyond it new requests are answered
503; an event stream holds a connection while it is followed), ``keep_alive_s`` its
``timeout_keep_alive`` (an idle connection between requests is closed after it),
``max_header_bytes`` its ``h11_max_incomplete_event_size`` (a longer request head is a 400).
``request_timeout_s`` is this module's: a request must arrive whole (its head and its body)
within that many seconds of the connection opening or of the previous answer, or the
connection is closed. uvicorn alone has no such deadline; a proxy in front (nginx, Caddy)
gives the same protection and TLS, and is the way to serve beyond one machine.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from ktrdr_lib.errors import ConfigError
from ktrdr_lib.settings import read_int

if TYPE_CHECKING:
    import uvicorn
    from litestar import Litestar

__all__ = ["SERVER_LIMIT_SETTINGS", "ServerLimits", "run_server", "server_config"]

log = logging.getLogger(__name__)

SERVER_LIMIT_SETTINGS: dict[str, str] = {
    "max_connections": "KTRDR_SERVER_MAX_CONNECTIONS",
    "keep_alive_s": "KTRDR_SERVER_KEEP_ALIVE_S",
    "request_timeout_s": "KTRDR_SERVER_REQUEST_TIMEOUT_S",
    "max_header_bytes": "KTRDR_SERVER_MAX_HEADER_BYTES",
}


@dataclass(frozen=True, kw_only=True)
class ServerLimits:
    """What one client may hold of a server (see the module's table).

    Raises:
        ConfigError: a limit below 1.
    """

    max_connections: int = 100
    keep_alive_s: int = 5
    request_timeout_s: float = 30.0
    max_header_bytes: int = 16 * 1024

    def __post_init__(self) -> None:
        for field in fields(self):
            value = getattr(self, field.name)
            if value <= 0:
                raise ConfigError(
                    f"{field.name} ({SERVER_LIMIT_SETTINGS[field.name]}) must be > 0, got {value!r}"
                )

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ServerLimits:
        """The limits from the settings (``env``, default ``os.environ``); unset ones keep
        their defaults (:mod:`ktrdr_lib.settings` declares them).

        Raises:
            ConfigError: a setting that is not a whole number >= 1 (named).
        """
        values: dict[str, Any] = {
            name: read_int(setting, env) for name, setting in SERVER_LIMIT_SETTINGS.items()
        }
        return cls(**values)


class _RequestDeadlineProtocol(H11Protocol):
    """uvicorn's h11 protocol, plus a deadline for each request to arrive whole.

    The deadline starts when the connection opens and again after each answer; when it
    passes while the request is still arriving (h11's client side is ``IDLE`` with bytes of a
    head, or ``SEND_BODY``), the connection is closed. A request that has arrived and is being
    answered (an event stream, a long start) is never cut.
    """

    request_timeout_s: float = 30.0
    _deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)  # type: ignore[arg-type]
        self._arm_deadline()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._arm_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_deadline()
        super().connection_lost(exc)

    def _arm_deadline(self) -> None:
        self._disarm_deadline()
        if not self.transport.is_closing():
            self._deadline = self.loop.call_later(self.request_timeout_s, self._deadline_passed)

    def _disarm_deadline(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _deadline_passed(self) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        if self.conn.their_state in (h11.IDLE, h11.SEND_BODY):
            if self.conn.their_state is h11.SEND_BODY or self.conn.trailing_data[0]:
                client = f"{self.client[0]}:{self.client[1]}" if self.client else "a client"
                log.warning(
                    "closed the connection of %s: its request did not arrive within %s s "
                    "(KTRDR_SERVER_REQUEST_TIMEOUT_S)",
                    client,
                    self.request_timeout_s,
                )
            self.transport.close()


def server_config(
    app: Litestar | Any,
    *,
    host: str,
    port: int,
    log_level: str = "info",
    limits: ServerLimits | None = None,
) -> uvicorn.Config:
    """The uvicorn configuration that serves ``app`` on ``host:port`` within ``limits``
    (default: from the settings)."""
    import uvicorn

    limits = limits or ServerLimits.from_env()
    protocol = type(
        "RequestDeadlineProtocol",
        (_RequestDeadlineProtocol,),
        {"request_timeout_s": float(limits.request_timeout_s)},
    )
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        http=protocol,
        limit_concurrency=limits.max_connections,
        timeout_keep_alive=int(limits.keep_alive_s),
        h11_max_incomplete_event_size=limits.max_header_bytes,
    )


def run_server(
    app: Litestar,
    *,
    host: str,
    port: int,
    log_level: str,
    banner: str,
    limits: ServerLimits | None = None,
) -> None:
    """Write ``banner`` (what is served, and how) to stderr, then serve ``app`` on
    ``host:port`` within ``limits`` (default: from the settings) until interrupted."""
    import uvicorn

    config = server_config(app, host=host, port=port, log_level=log_level, limits=limits)
    sys.stderr.write(banner)
    uvicorn.Server(config).run()
