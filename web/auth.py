"""The bearer-token guard: when a server has a token, every route but the public ones needs it.

A server puts the expected token in ``app.state.bearer_token`` (``None``: no authentication)
and the name of the setting that holds it in ``app.state.bearer_token_env`` (for the error
message). Handlers marked ``opt={"public": True}`` (health) are open; they can still tell an
authenticated caller (:func:`has_bearer_token`) and answer it more. A token is checked when the
server is built (:func:`check_token`): an empty one is an error, not "no authentication".
"""

from __future__ import annotations

import hmac
from typing import Any

from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException
from litestar.handlers.base import BaseRouteHandler

from ktrdr_lib.errors import ConfigError

__all__ = ["MIN_TOKEN_LENGTH", "bearer_guard", "check_token", "has_bearer_token", "require_token"]

MIN_TOKEN_LENGTH = 16
_MAKE_ONE = "python -c 'import secrets; print(secrets.token_urlsafe(32))'"


def check_token(token: str | None, *, setting: str) -> str | None:
    """``token`` when it is fit to guard a server; ``None`` stays ``None`` (no authentication).

    Raises:
        ConfigError: the token is empty or blank (which would otherwise read as "no
            authentication"), has spaces at either end, or is shorter than
            ``MIN_TOKEN_LENGTH`` characters; the message names ``setting`` and how to make a
            good one.
    """
    if token is None:
        return None
    if not token.strip():
        raise ConfigError(
            f"{setting} is set but empty: unset it to run without authentication (loopback "
            f"only), or set it to a random string of at least {MIN_TOKEN_LENGTH} characters, "
            f"e.g. the output of {_MAKE_ONE}"
        )
    if token != token.strip():
        raise ConfigError(
            f"{setting} starts or ends with white space; clients cannot send it in a header. "
            "Set it without the spaces."
        )
    if len(token) < MIN_TOKEN_LENGTH:
        raise ConfigError(
            f"{setting} is {len(token)} characters long; a token needs at least "
            f"{MIN_TOKEN_LENGTH} so it cannot be guessed. Make one with {_MAKE_ONE}"
        )
    return token


def has_bearer_token(connection: ASGIConnection[Any, Any, Any, Any]) -> bool:
    """Whether the connection may see what the token protects: the server has no token, or
    the connection sent the right one (compared in constant time)."""
    state = connection.app.state
    try:
        require_token(
            state.get("bearer_token"),
            connection.headers.get("authorization"),
            setting=state.get("bearer_token_env", "token"),
        )
    except NotAuthorizedException:
        return False
    return True


def require_token(expected: str | None, header: str | None, *, setting: str) -> None:
    """Raise NotAuthorizedException unless ``header`` is ``Bearer <expected>``.

    Compares in constant time. ``expected=None`` means authentication is off; ``setting``
    names where the token comes from (``KTRDR_API_TOKEN``) in the message.
    """
    if expected is None:
        return
    scheme, _, supplied = (header or "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        supplied.strip().encode(), expected.encode()
    ):
        raise NotAuthorizedException(
            f"missing or wrong bearer token; send 'Authorization: Bearer <{setting}>'"
        )


async def bearer_guard(
    connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler
) -> None:
    """Litestar guard reading the expected token from ``app.state.bearer_token``.

    ``async`` although it never awaits: Litestar runs a sync guard in a worker thread, a
    thread hop (and, next to a training thread, a GIL hand-off) on every request.
    """
    if handler.opt.get("public"):
        return
    state = connection.app.state
    require_token(
        state.get("bearer_token"),
        connection.headers.get("authorization"),
        setting=state.get("bearer_token_env", "token"),
    )
