"""The guards every route passes besides the bearer token's: open mode's browser checks and
the body's nesting depth.

**Open mode.** A server without a token (the API's default on loopback, the host's
``--insecure-no-token``) must still not be driven by the web pages its user visits. A page can
POST to ``http://127.0.0.1:8000`` without asking first when the body is ``text/plain``, and
with DNS rebinding (a name of the attacker's that first resolves to the attacker, then to
127.0.0.1) it can also read the answers. So, while no token is set, every request

* that carries a body must say ``Content-Type: application/json`` (415 otherwise): a page
  cannot send that type to another origin without the browser asking the server first, and
  this server never says yes;
* must name this machine in its ``Host`` header (``localhost``, ``127.0.0.1`` or any loopback
  address, ``[::1]``; any port) or a host in ``KTRDR_ALLOWED_HOSTS`` (403 otherwise): a
  rebound name is not one of them;
* must not come from a page on another origin: an ``Origin`` header must be the server's own
  (its scheme, ``Host`` and port) or one in ``KTRDR_ALLOWED_ORIGINS`` (403 otherwise).

Programs (the CLI, :class:`~ktrdr_lib.http.client.ApiClient`, the host client, ``curl`` with
``-H 'Content-Type: application/json'``, a notebook's kernel) send no ``Origin``, name the
address they connect to and send JSON, so they pass. With a token none of this applies: a page
cannot send the token.

**Body depth.** A JSON body nesting deeper than ``KTRDR_MAX_JSON_DEPTH`` levels (32) is a 400
before it is decoded (decoding a very deep one exhausts the stack).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

from litestar import Request
from litestar.connection import ASGIConnection
from litestar.exceptions import HTTPException, PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler

from ktrdr_lib.errors import ConfigError
from ktrdr_lib.http.addresses import is_loopback
from ktrdr_lib.settings import read_raw
from web.limits import LIMIT_SETTINGS, RequestLimits, nests_deeper_than

__all__ = [
    "ALLOWED_HOSTS_ENV",
    "ALLOWED_ORIGINS_ENV",
    "ForeignRequestError",
    "UnsupportedMediaTypeError",
    "body_depth_guard",
    "hosts_answered",
    "open_mode_guard",
    "parse_list_setting",
]

ALLOWED_HOSTS_ENV = "KTRDR_ALLOWED_HOSTS"
ALLOWED_ORIGINS_ENV = "KTRDR_ALLOWED_ORIGINS"
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}


class UnsupportedMediaTypeError(HTTPException):
    """415: a body that is not JSON, sent to a server without a token."""

    status_code = 415


class ForeignRequestError(PermissionDeniedException):
    """403: a request for another host name, or from a page on another origin, sent to a
    server without a token."""


def parse_list_setting(raw: str | None) -> frozenset[str]:
    """A comma-separated setting as lower-case entries without blanks or trailing ``/``."""
    items = (item.strip().lower().rstrip("/") for item in (raw or "").split(","))
    return frozenset(item for item in items if item)


def hosts_answered(bind: str, env: Mapping[str, str] | None = None) -> list[str]:
    """The host names a server without a token answers besides this machine's: those in
    ``KTRDR_ALLOWED_HOSTS`` (``env``, default ``os.environ``) and the address it binds to,
    unless that is a wildcard (``0.0.0.0``, ``::``), which names no host."""
    named = sorted(parse_list_setting(read_raw(ALLOWED_HOSTS_ENV, env)))
    address = bind.strip().strip("[]").lower()
    if address not in ("", "0.0.0.0", "::") and address not in named:
        named.append(address)
    return named


def _host_and_port(netloc: str, scheme: str) -> tuple[str, int] | None:
    """``(hostname, port)`` of ``host[:port]`` (``[::1]:8000`` too), or ``None`` when it is
    not one."""
    try:
        parts = urlsplit(f"//{netloc}")
        port = parts.port
    except ValueError:
        return None
    if not parts.hostname:
        return None
    return parts.hostname, port if port is not None else _DEFAULT_PORTS.get(scheme, 80)


def _host_allowed(hostname: str, allowed: Iterable[str]) -> bool:
    allowed = set(allowed)
    return "*" in allowed or hostname in allowed or is_loopback(hostname)


def _check_media_type(request: ASGIConnection[Any, Any, Any, Any]) -> None:
    headers = request.headers
    length = headers.get("content-length", "").strip()
    has_body = "transfer-encoding" in headers or (length not in ("", "0"))
    if not has_body:
        return
    sent = headers.get("content-type", "")
    if sent.partition(";")[0].strip().lower() != "application/json":
        raise UnsupportedMediaTypeError(
            detail=(
                f"Content-Type {sent or '(none)'!r} is not accepted: send the body as JSON with "
                "'Content-Type: application/json'. This server has no token, so it takes only "
                "JSON bodies (a web page cannot send those to it)."
            )
        )


def _check_host_and_origin(connection: ASGIConnection[Any, Any, Any, Any]) -> None:
    state = connection.app.state
    allowed_hosts: frozenset[str] = state.get("allowed_hosts", frozenset())
    allowed_origins: frozenset[str] = state.get("allowed_origins", frozenset())
    scheme = connection.url.scheme
    raw_host = connection.headers.get("host")
    own: tuple[str, int] | None = None
    if raw_host is not None:
        own = _host_and_port(raw_host, scheme)
        if own is None or not _host_allowed(own[0], allowed_hosts):
            raise ForeignRequestError(
                detail=(
                    f"Host {raw_host!r} is not this machine's: a server without a token answers "
                    "only requests for localhost, 127.0.0.1 or [::1] (or a name in "
                    f"{ALLOWED_HOSTS_ENV}). Connect to one of those, add the name to "
                    f"{ALLOWED_HOSTS_ENV}, or give the server a token."
                )
            )
    origin = connection.headers.get("origin")
    if origin is None:
        return
    normalized = origin.strip().lower().rstrip("/")
    if normalized in allowed_origins:
        return
    parts = urlsplit(normalized) if normalized != "null" else None
    source = _host_and_port(parts.netloc, parts.scheme) if parts and parts.netloc else None
    if source is None or own is None or source != own:
        raise ForeignRequestError(
            detail=(
                f"Origin {origin!r} is another site: a server without a token refuses requests "
                "from web pages on other origins. Send the request from a program (no Origin "
                f"header), list the page's origin in {ALLOWED_ORIGINS_ENV}, or give the server "
                "a token."
            )
        )


async def open_mode_guard(
    connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler
) -> None:
    """While the server has no token (``app.state.bearer_token`` is ``None``): JSON bodies
    only (415), this machine's host names only, no foreign origins (403); see the module.

    ``async`` for the reason :func:`web.auth.bearer_guard` is.
    """
    if connection.app.state.get("bearer_token") is not None:
        return
    _check_host_and_origin(connection)
    _check_media_type(connection)


async def body_depth_guard(
    connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler
) -> None:
    """A 400 for a body that nests deeper than ``app.state.request_limits.max_json_depth``,
    before anything decodes it (the body is read once; the handler reuses it)."""
    if not isinstance(connection, Request) or connection.method not in _BODY_METHODS:
        return
    limits: RequestLimits | None = connection.app.state.get("request_limits")
    if limits is None:
        return
    body = await connection.body()
    if nests_deeper_than(body, limits.max_json_depth):
        raise ConfigError(
            f"the JSON body nests deeper than {limits.max_json_depth} levels "
            f"({LIMIT_SETTINGS['max_json_depth']} on the server); a request needs a few. "
            "Flatten it (overrides take dotted paths: {'model.training.epochs': 5})."
        )
