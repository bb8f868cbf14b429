"""A training host killed mid-run: the host-mode operation fails within the retry budget set
by ``KTRDR_HOST_RETRY_BUDGET_S``, with the reason in ``error_message``.

The host is a real ``ktrdr serve host`` process on a loopback port, killed with SIGKILL (no
graceful shutdown: the port just stops answering). The orchestrator is configured only through
the environment, as ``ktrdr serve api`` would be.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from ktrdr_lib.operations.orchestrator import TrainingOrchestrator
from tests.integration.conftest import free_port

pytestmark = pytest.mark.slow  # starts a host process and trains on it

TOKEN = "budget-s3cret-0123456789"
BUDGET_S = 1.5
# What may come on top of the budget: noticing the host is gone (one poll interval, 0.5 s),
# the refused attempts themselves, and the thread bookkeeping. Generous for a loaded machine.
MARGIN_S = 8.0


def _start_host(port: int, home: Path, data_dir: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "KTRDR_HOST_TOKEN": TOKEN,
        "KTRDR_HOME": str(home),
        "KTRDR_DATA_DIR": str(data_dir),
    }
    command = [sys.executable, "-m", "ktrdr_lib.cli", "serve", "host", "--port", str(port)]
    proc = subprocess.Popen(
        [*command, "--accelerator", "cpu"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the training host exited with {proc.returncode} at start-up")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/host/v1/health", timeout=2).is_success:
                return proc
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError("the training host did not answer /health within 120 s")


@pytest.mark.usefixtures("strategies_dir")
def test_a_killed_host_fails_the_operation_within_the_budget_with_the_reason(
    tmp_path: Path, synthetic_data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = free_port()
    host = _start_host(port, tmp_path / "host_home", synthetic_data_dir)
    url = f"http://127.0.0.1:{port}"
    monkeypatch.setenv("KTRDR_HOST_URL", url)
    monkeypatch.setenv("KTRDR_HOST_TOKEN", TOKEN)
    monkeypatch.setenv("KTRDR_HOST_RETRY_BUDGET_S", str(BUDGET_S))
    orch = TrainingOrchestrator(
        home=tmp_path / "local_home", data_dir=synthetic_data_dir, progress_interval=0.05
    )
    try:
        handle = orch.start_training("small_test", mode="host", epochs=500)
        for snap in handle.follow(timeout=120):
            if snap.phase == "train" and snap.batch > 0:
                break
        assert handle.info().status == "running"
        host.kill()
        host.wait(30)
        killed_at = time.monotonic()
        record = handle.wait(BUDGET_S + MARGIN_S)
        took = time.monotonic() - killed_at
    finally:
        if host.poll() is None:
            host.kill()
            host.wait(30)
        orch.shutdown(cancel_running=True, timeout=30)
    assert record.status == "failed", (record.status, took)
    assert BUDGET_S <= took <= BUDGET_S + MARGIN_S
    message = record.error_message or ""
    assert f"the training host at {url} did not answer for " in message
    assert "connection refused" in message
    assert f"retry budget {BUDGET_S:g} s" in message
