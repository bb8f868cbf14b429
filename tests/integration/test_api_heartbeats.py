"""Event-stream heartbeats over the wire: a comment line and nothing else, on an operation's
stream and on a sweep's, so a client never sees an empty event while nothing happens.

The streamed operations are records another host owns (left alone at start-up, never ending
here), so each stream goes idle at once; no training runs.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx

from ktrdr_lib.operations.store import OperationStore

from .conftest import LiveServer

API = "/api/v1"
ELSEWHERE = "another-host:1:1"  # an owner on another host: its records are left as they are


def _store_idle_operations(home: Path) -> None:
    store = OperationStore(home / "operations.db")
    store.create("op_training_idle", metadata={"symbol": "SYNTH"}, owner=ELSEWHERE)
    store.transition("op_training_idle", "running")
    store.create(
        "op_sweep_idle",
        operation_type="sweep",
        mode="ray",
        owner=ELSEWHERE,
        metadata={
            "strategy": "small_test",
            "space": {"model.training.learning_rate": [0.01]},
            "metric": "val_loss",
            "mode": "min",
            "search": "grid",
            "early_stop": None,
            "max_concurrent": 1,
            "trial_operation_ids": [],
            "trial_configs": [],
        },
    )
    store.transition("op_sweep_idle", "running")
    store.close()


def _first_events(http: httpx.Client, path: str, count: int) -> list[str]:
    """The first ``count`` raw events of a stream (each without its blank line)."""
    text = ""
    with http.stream("GET", path) as response:
        assert response.status_code == 200
        for chunk in response.iter_text():
            text += chunk
            if text.count("\r\n\r\n") >= count:
                break
    return text.split("\r\n\r\n")[:count]


def test_heartbeats_are_a_comment_line_only(
    live_api: Callable[..., LiveServer], isolated_home: Path
) -> None:
    _store_idle_operations(isolated_home)
    server = live_api(sse_poll_s=0.02, sse_heartbeat_s=0.05)
    with httpx.Client(base_url=server.url + API, timeout=httpx.Timeout(30.0)) as http:
        # Its stored snapshot is the empty first one (sequence 0): nothing to send but beats.
        beats = _first_events(http, "/operations/op_training_idle/events", 3)
        assert beats == [": heartbeat"] * 3

        first, *beats = _first_events(http, "/sweeps/op_sweep_idle/events", 3)
        assert first.startswith(
            'event: sweep\r\ndata: {"operation":{"operation_id":"op_sweep_idle"'
        )
        assert beats == [": heartbeat"] * 2
