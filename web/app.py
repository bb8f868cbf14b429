"""The one Litestar app shape both servers have: a framework-free service behind thin routes.

``api/`` serves :class:`~api.service.TrainingApi` and ``host/`` serves
:class:`~host.service.TrainingHost` the same way: the routes under one path prefix, the service
injected into every handler that names it (from ``app.state``, where the server's start-up hook
puts it), the guards (the bearer token's; open mode's browser checks and the body's nesting
depth, :mod:`web.guards`), the shared error handlers, a body-size limit and the OpenAPI schema
at ``/schema``. What differs (the routes, how the service is built and shut down, the token's
setting, the limits) is passed in.

Example:
    >>> app = create_service_app(  # doctest: +SKIP
    ...     prefix="/host/v1", route_handlers=[SessionsController, health], service="host",
    ...     on_startup=[start], on_shutdown=[stop], token="s3cret",
    ...     token_env="KTRDR_HOST_TOKEN", title="KTRDR training host",
    ...     limits=RequestLimits.from_env())
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from litestar import Litestar, Router
from litestar.datastructures import State
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.types import ControllerRouterHandler, LifespanHook

from ktrdr_lib import __version__
from ktrdr_lib.settings import read_raw
from web.auth import bearer_guard
from web.errors import exception_handlers
from web.guards import (
    ALLOWED_HOSTS_ENV,
    ALLOWED_ORIGINS_ENV,
    body_depth_guard,
    open_mode_guard,
    parse_list_setting,
)
from web.limits import RequestLimits

__all__ = ["DEFAULT_MAX_BODY", "create_service_app"]

DEFAULT_MAX_BODY = 1_000_000


def create_service_app(
    *,
    prefix: str,
    route_handlers: Sequence[ControllerRouterHandler],
    service: str,
    on_startup: Sequence[LifespanHook],
    on_shutdown: Sequence[LifespanHook],
    token: str | None,
    token_env: str,
    title: str,
    description: str | None = None,
    server_name: str = "the server",
    max_body_bytes: int = DEFAULT_MAX_BODY,
    max_body_env: str = "KTRDR_API_MAX_BODY",
    limits: RequestLimits | None = None,
    allowed_hosts: Iterable[str] | None = None,
    allowed_origins: Iterable[str] | None = None,
    state: Mapping[str, Any] | None = None,
) -> Litestar:
    """Build a server's app around its service.

    Args:
        prefix: the path every route is under (``/api/v1``).
        route_handlers: the controllers and handlers.
        service: the name handlers take the service under, and its key in ``app.state``
            (``None`` there until ``on_startup`` sets it, unless ``state`` gives it).
        on_startup: hooks that build the service (and what it needs).
        on_shutdown: hooks that shut it down.
        token: the bearer token every route but the public ones needs (``None``: open).
        token_env: the setting the token comes from, named in 401 answers.
        title: the OpenAPI title.
        description: the OpenAPI description.
        server_name: where unexpected errors are said to be logged ("the host").
        max_body_bytes: request bodies above this are answered 413.
        max_body_env: the setting ``max_body_bytes`` comes from, named in 413 answers.
        limits: the caps on requests (default :meth:`RequestLimits.from_env`); the body-depth
            guard reads ``max_json_depth``.
        allowed_hosts: host names besides this machine's that a server without a token
            answers (default ``KTRDR_ALLOWED_HOSTS``, comma-separated; ``*``: any).
        allowed_origins: origins (``https://dash.example:8443``) whose pages a server without
            a token answers (default ``KTRDR_ALLOWED_ORIGINS``).
        state: more of ``app.state`` (e.g. an orchestrator given at construction).
    """

    def provide(state: State) -> Any:
        return state[service]

    return Litestar(
        route_handlers=[Router(path=prefix, route_handlers=list(route_handlers))],
        dependencies={service: Provide(provide, sync_to_thread=False)},
        guards=[bearer_guard, open_mode_guard, body_depth_guard],
        exception_handlers=exception_handlers(server_name),
        on_startup=list(on_startup),
        on_shutdown=list(on_shutdown),
        state=State(
            {
                service: None,
                **(state or {}),
                "bearer_token": token,
                "bearer_token_env": token_env,
                "max_body_env": max_body_env,
                "request_limits": limits if limits is not None else RequestLimits.from_env(),
                "allowed_hosts": _entries(allowed_hosts, ALLOWED_HOSTS_ENV),
                "allowed_origins": _entries(allowed_origins, ALLOWED_ORIGINS_ENV),
            }
        ),
        request_max_body_size=max_body_bytes,
        openapi_config=OpenAPIConfig(title=title, version=__version__, description=description),
        debug=False,
    )


def _entries(given: Iterable[str] | None, setting: str) -> frozenset[str]:
    if given is None:
        return parse_list_setting(read_raw(setting))
    return parse_list_setting(",".join(given))
