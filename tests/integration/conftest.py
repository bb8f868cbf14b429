"""Real servers on loopback: uvicorn serving our apps in a thread, started by the test."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LiveServer:
    """A uvicorn server running ``app`` on 127.0.0.1 in a background thread."""

    app: Any
    port: int
    server: Any
    thread: threading.Thread

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self, timeout: float = 30.0) -> None:
        self.server.should_exit = True
        self.thread.join(timeout)


def start_server(app: Any, *, timeout: float = 60.0) -> LiveServer:
    """Start uvicorn on a free loopback port and wait until it accepts requests."""
    import uvicorn

    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"uvicorn did not start on port {port}")
        time.sleep(0.05)
    return LiveServer(app=app, port=port, server=server, thread=thread)


@pytest.fixture
def live_api(synthetic_data_dir: Path, isolated_home: Path) -> Iterator[Callable[..., LiveServer]]:
    """Factory: ``live_api(**create_app_kwargs)`` serves the API on loopback; stopped after
    the test. The orchestrator reads the synthetic data dir and the test's KTRDR_HOME."""
    from api import create_app

    servers: list[LiveServer] = []

    def start(**kwargs: Any) -> LiveServer:
        options = kwargs.pop("orchestrator_options", {})
        options.setdefault("data_dir", synthetic_data_dir)
        options.setdefault("progress_interval", 0.05)
        app = create_app(orchestrator_options=options, **kwargs)
        live = start_server(app)
        servers.append(live)
        return live

    yield start
    for live in servers:
        live.stop()
