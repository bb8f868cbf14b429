"""``ktrdr`` against a running API: real uvicorn on loopback, the CLI as a real subprocess."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from ktrdr_lib.errors import NotFoundError, StateConflictError
from ktrdr_lib.http.client import ApiClient, ApiUnreachableError
from ktrdr_lib.schemas.operations import FinalEvent
from ktrdr_lib.schemas.progress import ProgressSnapshot
from tests.integration.conftest import LiveServer, free_port

pytestmark = pytest.mark.slow  # every test here trains a real model in a child process or server

CLI = [sys.executable, "-m", "ktrdr_lib.cli"]
FINAL = ("completed", "failed", "cancelled")


def _env(home: Path, url: str | None, token: str | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("KTRDR_API_URL", "KTRDR_API_TOKEN")}
    env["KTRDR_HOME"] = str(home)
    if url is not None:
        env["KTRDR_API_URL"] = url
    if token is not None:
        env["KTRDR_API_TOKEN"] = token
    return env


def _cli(*args: str, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, env=env, timeout=timeout)


def _start(live: LiveServer, epochs: int, token: str | None = None) -> str:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = httpx.post(
        f"{live.url}/api/v1/trainings/start",
        json={
            "strategy_name": "small_test",
            "symbols": ["SYNTH"],
            "timeframes": ["1h"],
            "overrides": {"epochs": epochs},
        },
        headers=headers,
        timeout=30,
    )
    assert response.status_code == 200, response.text
    return str(response.json()["task_id"])


def _operation(live: LiveServer, op_id: str) -> dict[str, Any]:
    response = httpx.get(f"{live.url}/api/v1/operations/{op_id}", timeout=30)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


def _wait_for(live: LiveServer, op_id: str, ok: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    deadline = time.monotonic() + 120
    while True:
        info = _operation(live, op_id)
        if ok(info) or time.monotonic() > deadline:
            return info
        time.sleep(0.1)


def _assert_one_line_error(out: subprocess.CompletedProcess[str]) -> None:
    assert out.returncode == 1, (out.stdout, out.stderr)
    assert out.stderr.startswith("error: "), out.stderr
    assert out.stderr.count("\n") == 1, out.stderr
    assert "Traceback" not in out.stderr


def test_train_over_api_to_completion(
    live_api: Callable[..., LiveServer], strategies_dir: Path, isolated_home: Path
) -> None:
    live = live_api()
    env = _env(isolated_home, live.url)
    out = _cli("train", "small_test", "--epochs", "2", "--json", env=env)
    assert out.returncode == 0, out.stderr
    performance = json.loads(out.stdout)
    assert performance["status"] == "completed"
    assert performance["training_metrics"]["epochs_completed"] == 2
    assert set(performance["test_metrics"]) >= {"test_accuracy", "f1_score"}
    evaluation = performance["evaluation"]  # the honest comparison, beside v1's figures
    accuracy = performance["test_metrics"]["test_accuracy"]
    assert evaluation["headline"].startswith(f"test accuracy {accuracy:.3f} vs ")
    assert evaluation["baselines"][0]["name"] == evaluation["strongest_baseline"]
    assert set(evaluation["economics"]) >= {"model", "buy_and_hold", "cost_source"}
    assert evaluation["placebo_runs"] == 0 and evaluation["placebo"] is None
    # the same progress lines as a local run; batch lines only on a terminal
    assert "[load_data]" in out.stderr and "[train] Epoch 1/2" in out.stderr
    assert "[train] Epoch 2/2" in out.stderr and "val_loss" in out.stderr
    assert "Batch " not in out.stderr
    match = re.search(r"\[api\] (\S+) started on ", out.stderr)
    assert match is not None, out.stderr
    op_id = match.group(1)
    assert op_id == performance["task_id"]
    assert _operation(live, op_id)["status"] == "completed"

    listed = _cli("operations", "list", "--json", env=env)
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    assert [(r["operation_id"], r["status"]) for r in rows] == [(op_id, "completed")]

    shown = _cli("operations", "show", op_id, env=env)
    assert shown.returncode == 0, shown.stderr
    assert f"operation   {op_id}" in shown.stdout
    assert "status      completed" in shown.stdout and "small_test" in shown.stdout
    shown_json = json.loads(_cli("operations", "show", op_id, "--json", env=env).stdout)
    assert shown_json["status"] == "completed" and shown_json["operation_id"] == op_id

    models = json.loads(_cli("models", "list", "--json", env=env).stdout)
    assert [m["model_id"] for m in models] == ["small_test/v1"]

    # without --api / KTRDR_API_URL the same commands read the local store (same KTRDR_HOME)
    local_env = _env(isolated_home, None)
    local = json.loads(_cli("operations", "list", "--json", env=local_env).stdout)
    assert [(r["operation_id"], r["status"]) for r in local] == [(op_id, "completed")]
    local_show = _cli("operations", "show", op_id, env=local_env)
    assert local_show.returncode == 0, local_show.stderr
    assert "status      completed" in local_show.stdout
    assert "model small_test/v1" in local_show.stdout

    # the human summary has the local run's lines, led by the honest comparison; --placebo
    # reaches the server, which trains the placebo after the run
    human = _cli("train", "small_test", "--epochs", "1", "--placebo", "1", env=env)
    assert human.returncode == 0, human.stderr
    assert human.stdout.startswith("evaluation      test accuracy ")
    assert "\nplacebo         1 placebo run on random walks: accuracy " in human.stdout
    assert "\n  buy and hold  return " in human.stdout
    assert "strategy        small_test" in human.stdout
    assert "majority-class baseline" in human.stdout
    assert "model           small_test/v2" in human.stdout


def test_ctrl_c_cancels_the_remote_operation(
    live_api: Callable[..., LiveServer], strategies_dir: Path, isolated_home: Path
) -> None:
    live = live_api()
    proc = subprocess.Popen(
        [*CLI, "train", "small_test", "--epochs", "500"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(isolated_home, live.url),
    )
    try:
        assert proc.stderr is not None
        seen = ""
        deadline = time.monotonic() + 120
        while "[train] Epoch 1/500" not in seen and time.monotonic() < deadline:
            line = proc.stderr.readline()
            if not line:
                break
            seen += line
        assert "[train] Epoch 1/500" in seen, seen
        match = re.search(r"\[api\] (\S+) started on ", seen)
        assert match is not None, seen
        op_id = match.group(1)
        proc.send_signal(signal.SIGINT)
        _stdout, rest = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, seen + rest
    assert "[cancel] Ctrl-C" in rest and "cancelled: interrupted by Ctrl-C" in rest
    assert "Traceback" not in rest
    # the CLI waited for the server's confirmation: the operation is already cancelled
    info = _operation(live, op_id)
    assert info["status"] == "cancelled"
    assert info["cancellation_reason"] == "interrupted by Ctrl-C"


def test_operations_follow_and_cancel(
    live_api: Callable[..., LiveServer], strategies_dir: Path, isolated_home: Path
) -> None:
    live = live_api()
    env = _env(isolated_home, live.url)

    short = _start(live, epochs=2)
    followed = _cli("operations", "follow", short, env=env)
    assert followed.returncode == 0, followed.stderr
    assert "[train] Epoch 2/2" in followed.stderr and f"{short} completed" in followed.stderr

    long = _start(live, epochs=500)
    _wait_for(live, long, lambda i: i["progress"]["context"]["phase"] == "train")
    running = json.loads(
        _cli("operations", "list", "--status", "running", "--json", env=env).stdout
    )
    assert [r["operation_id"] for r in running] == [long]

    cancelled = _cli("operations", "cancel", long, "--reason", "test stop", "--wait", env=env)
    assert cancelled.returncode == 0, cancelled.stderr
    assert cancelled.stdout == f"{long}: cancelled (test stop)\n"
    assert _operation(live, long)["status"] == "cancelled"

    again = _cli("operations", "cancel", long, env=env)
    _assert_one_line_error(again)
    assert "cannot be cancelled" in again.stderr and "cancelled" in again.stderr

    ended = _cli("operations", "follow", long, env=env)
    assert ended.returncode == 1 and "cancelled: test stop" in ended.stderr

    missing = _cli("operations", "show", "op_training_nope", env=env)
    _assert_one_line_error(missing)
    assert "Operation not found: op_training_nope" in missing.stderr

    bad_status = _cli("operations", "list", "--status", "sleeping", env=env)
    _assert_one_line_error(bad_status)
    assert "sleeping" in bad_status.stderr


def test_wrong_or_missing_token_is_one_line(
    live_api: Callable[..., LiveServer], strategies_dir: Path, isolated_home: Path
) -> None:
    live = live_api(api_token="right-token-0123456789")
    wrong = _cli("operations", "list", env=_env(isolated_home, live.url, token="wrong"))
    _assert_one_line_error(wrong)
    assert "bearer token" in wrong.stderr and "KTRDR_API_TOKEN" in wrong.stderr

    train = _cli("train", "small_test", env=_env(isolated_home, live.url, token="wrong"))
    _assert_one_line_error(train)

    missing = _cli("models", "list", env=_env(isolated_home, live.url))
    _assert_one_line_error(missing)
    assert "set KTRDR_API_TOKEN" in missing.stderr

    right = _cli(
        "operations", "list", env=_env(isolated_home, live.url, token="right-token-0123456789")
    )
    assert right.returncode == 0, right.stderr
    assert right.stdout == "no operations\n"


def test_unreachable_api_is_one_line(isolated_home: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    for args in (("operations", "list"), ("train", "small_test"), ("models", "list")):
        out = _cli(*args, "--api", url, env=_env(isolated_home, None))
        _assert_one_line_error(out)
        assert f"could not reach the KTRDR API at {url}" in out.stderr
        assert "ktrdr serve api" in out.stderr


def test_train_over_api_rejects_local_only_inputs(
    live_api: Callable[..., LiveServer], strategies_dir: Path, isolated_home: Path
) -> None:
    live = live_api()
    env = _env(isolated_home, live.url)
    path = _cli("train", str(strategies_dir / "small_test.yaml"), env=env)
    _assert_one_line_error(path)
    assert "must be a strategy name" in path.stderr

    unknown = _cli("train", "no_such_strategy", env=env)
    _assert_one_line_error(unknown)
    assert unknown.stderr.startswith("error: Strategy file not found")

    # the server's own 400 comes back as the same one-line error
    direct = _cli("train", "no_such_strategy", "--symbols", "SYNTH", "--timeframes", "1h", env=env)
    _assert_one_line_error(direct)
    assert direct.stderr.startswith("error: Strategy file not found")

    data_dir = _cli("train", "small_test", "--data-dir", "/tmp", env=env)
    _assert_one_line_error(data_dir)
    assert "--data-dir applies to local runs only" in data_dir.stderr


def test_client_maps_errors_and_reads_the_stream(
    live_api: Callable[..., LiveServer], strategies_dir: Path
) -> None:
    live = live_api()
    with ApiClient(live.url + "/api/v1/") as client:
        with pytest.raises(NotFoundError, match="Operation not found: op_x"):
            client.get_operation("op_x")
        started = client.start_training(
            "small_test", symbols=["SYNTH"], timeframes=["1h"], overrides={"epochs": 1}
        )
        events = list(client.events(started.task_id))
        snaps = [e for e in events if isinstance(e, ProgressSnapshot)]
        assert isinstance(events[-1], FinalEvent) and events[-1].status == "completed"
        assert all(isinstance(e, ProgressSnapshot) for e in events[:-1])
        sequences = [s.sequence for s in snaps]
        assert sequences == sorted(set(sequences)) and sequences
        # resuming after the middle repeats nothing and skips nothing
        middle = sequences[len(sequences) // 2]
        resumed = list(client.events(started.task_id, after=middle))
        assert isinstance(resumed[-1], FinalEvent)
        with pytest.raises(StateConflictError, match="cannot be cancelled"):
            client.cancel(started.task_id)


def _sse(snap: ProgressSnapshot) -> bytes:
    import msgspec

    return (
        f"id: {snap.sequence}\r\nevent: progress\r\ndata: "
        f"{msgspec.json.encode(snap).decode()}\r\n\r\n: heartbeat\r\n\r\n"
    ).encode()


class _DroppedStream(httpx.SyncByteStream):
    """Sends some events, then the connection breaks."""

    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks

    def __iter__(self) -> Iterator[bytes]:
        yield from self.chunks
        raise httpx.ReadError("connection reset by peer")


def test_dropped_stream_resumes_with_last_event_id() -> None:
    snaps = [ProgressSnapshot(operation_id="op_a", sequence=i, status="running") for i in (1, 2, 3)]
    seen_ids: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        last = request.headers.get("last-event-id")
        seen_ids.append(last)
        if last is None:  # first connection: two events, then it drops
            return httpx.Response(200, stream=_DroppedStream([_sse(snaps[0]), _sse(snaps[1])]))
        final = json.dumps({"operation_id": "op_a", "status": "completed", "sequence": 3})
        body = _sse(snaps[1]) + _sse(snaps[2]) + f"event: final\ndata: {final}\n\n".encode()
        return httpx.Response(200, content=body, headers={"content-type": "text/event-stream"})

    client = ApiClient("http://api.test", transport=httpx.MockTransport(handler))
    events = list(client.events("op_a"))
    assert seen_ids == [None, "2"]
    assert [e.sequence for e in events if isinstance(e, ProgressSnapshot)] == [1, 2, 3]
    assert events[-1] == FinalEvent(operation_id="op_a", status="completed", sequence=3)


def test_stream_gives_up_after_bounded_reconnects() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused")

    client = ApiClient(
        "http://api.test", reconnect_attempts=1, transport=httpx.MockTransport(handler)
    )
    with pytest.raises(ApiUnreachableError, match="could not reach the KTRDR API"):
        list(client.events("op_a"))
