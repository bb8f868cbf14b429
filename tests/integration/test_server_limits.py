"""What one client may hold of a server (:mod:`web.server`), on a real uvicorn on loopback.

A client that sends half a request and stops held its connection forever; connections had
no bound. Each test opens raw sockets against a tiny ASGI app served with the same
configuration ``ktrdr serve api|host`` uses.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import uvicorn

from ktrdr_lib.errors import ConfigError
from web.guards import hosts_answered
from web.server import ServerLimits, server_config

from .conftest import free_port

HANG_GUARD_S = 20.0  # only so a broken limit fails instead of hanging; nothing is timed


async def _app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Reads the whole body, waits ``?wait`` seconds, answers 200 with the body's size."""
    if scope["type"] != "http":
        return
    size, more = 0, True
    while more:
        message = await receive()
        size += len(message.get("body", b""))
        more = message.get("more_body", False)
    query = scope["query_string"].decode()
    if query.startswith("wait="):
        await asyncio.sleep(float(query[5:]))
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": str(size).encode()})


@pytest.fixture
def serve() -> Iterator[Callable[[ServerLimits], int]]:
    servers: list[tuple[uvicorn.Server, threading.Thread]] = []

    def start(limits: ServerLimits) -> int:
        port = free_port()
        config = server_config(_app, host="127.0.0.1", port=port, log_level="error", limits=limits)
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + HANG_GUARD_S
        while not server.started:
            assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.02)
        servers.append((server, thread))
        return port

    yield start
    for server, thread in servers:
        server.should_exit = True
        thread.join(HANG_GUARD_S)


def _connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=HANG_GUARD_S)
    return sock


def _read_all(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def _read_response(sock: socket.socket) -> bytes:
    """One whole answer of the app (chunked: it ends with an empty chunk)."""
    data = b""
    while not data.endswith(b"\r\n0\r\n\r\n"):
        chunk = sock.recv(65536)
        assert chunk, f"the server closed the connection mid-answer: {data!r}"
        data += chunk
    return data


@pytest.mark.parametrize(
    "partial",
    [
        b"",  # connects and sends nothing
        b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ",  # half a request head
        b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\n0123456789",  # a body
    ],
)
def test_a_request_that_does_not_arrive_in_time_loses_its_connection(
    serve: Callable[[ServerLimits], int], partial: bytes
) -> None:
    port = serve(ServerLimits(request_timeout_s=0.3, keep_alive_s=60))
    with _connect(port) as sock:
        sock.sendall(partial)
        try:
            leftover = _read_all(sock)  # returns once the server closes the connection
        except TimeoutError:
            pytest.fail("the server kept a connection whose request never arrived")
    assert b"200" not in leftover


def test_a_slow_answer_to_a_whole_request_is_not_cut(
    serve: Callable[[ServerLimits], int],
) -> None:
    port = serve(ServerLimits(request_timeout_s=0.2))
    with _connect(port) as sock:
        sock.sendall(b"POST /?wait=0.6 HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 3\r\n\r\nabc")
        answer = _read_response(sock)
        assert answer.startswith(b"HTTP/1.1 200") and answer.endswith(b"\r\n1\r\n3\r\n0\r\n\r\n")
        # the connection stays usable for the next request
        sock.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert _read_response(sock).startswith(b"HTTP/1.1 200")


def test_connections_beyond_the_limit_are_answered_503(
    serve: Callable[[ServerLimits], int],
) -> None:
    # uvicorn counts the connection asking: with a limit of 2, one is served at a time
    port = serve(ServerLimits(max_connections=2))
    with _connect(port) as first:
        first.sendall(b"GET /?wait=1 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")  # holds a slot
        time.sleep(0.1)  # so the server takes the first request in first (order, not timing)
        with _connect(port) as second:
            second.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            assert _read_all(second).startswith(b"HTTP/1.1 503")
        assert first.recv(65536).startswith(b"HTTP/1.1 200")


def test_a_request_head_growing_past_the_header_limit_is_a_400(
    serve: Callable[[ServerLimits], int],
) -> None:
    port = serve(ServerLimits(max_header_bytes=4096))
    with _connect(port) as sock:  # a head that keeps coming and never ends
        sock.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + b"a" * 8192)
        assert _read_all(sock).startswith(b"HTTP/1.1 400")
    with _connect(port) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Small: " + b"a" * 1024 + b"\r\n\r\n")
        assert sock.recv(65536).startswith(b"HTTP/1.1 200")


def test_limits_come_from_the_settings() -> None:
    env = {
        "KTRDR_SERVER_MAX_CONNECTIONS": "7",
        "KTRDR_SERVER_KEEP_ALIVE_S": "3",
        "KTRDR_SERVER_REQUEST_TIMEOUT_S": "9",
        "KTRDR_SERVER_MAX_HEADER_BYTES": "8192",
    }
    limits = ServerLimits.from_env(env)
    config = server_config(_app, host="127.0.0.1", port=1, limits=limits)
    assert config.limit_concurrency == 7 and config.timeout_keep_alive == 3
    assert config.h11_max_incomplete_event_size == 8192
    assert config.http.request_timeout_s == 9.0  # type: ignore[union-attr]
    with pytest.raises(ConfigError, match="KTRDR_SERVER_MAX_CONNECTIONS='none'"):
        ServerLimits.from_env({"KTRDR_SERVER_MAX_CONNECTIONS": "none"})


def test_serve_refuses_an_empty_or_short_token_before_serving(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from api.server import serve as serve_api
    from host.server import serve as serve_host

    monkeypatch.setenv("KTRDR_API_TOKEN", "")  # read as "no authentication" before
    with pytest.raises(ConfigError, match="KTRDR_API_TOKEN is set but empty"):
        serve_api()
    monkeypatch.setenv("KTRDR_HOST_TOKEN", "s3cret")
    with pytest.raises(ConfigError, match="KTRDR_HOST_TOKEN is 6 characters long"):
        serve_host()


def test_an_open_server_also_answers_the_address_it_binds_to() -> None:
    assert hosts_answered("127.0.0.1", {}) == ["127.0.0.1"]
    assert hosts_answered("0.0.0.0", {}) == []  # a wildcard names no host
    named = hosts_answered("[fd00::5]", {"KTRDR_ALLOWED_HOSTS": "ktrdr.lan, Box "})
    assert named == ["box", "ktrdr.lan", "fd00::5"]
