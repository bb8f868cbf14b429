"""Cancellation under DDP: a real two-process CPU (gloo) run that rank 0 stops mid-epoch.

``ddp_worker.py`` trains the small strategy through ``run_training_pipeline`` with
``strategy="ddp"``, ``devices=2``; Lightning re-runs the script for rank 1. Only rank 0's token
is ever set, so rank 1 can stop only through ``CancelCallback``'s cross-rank agreement, which
happens every ``sync_every`` batches. Each rank writes a JSON report; these tests read them.
A hang fails the test at the subprocess timeout instead of hanging the suite.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

from ktrdr_lib.progress.cancel_callback import CancelCallback
from ktrdr_lib.progress.cancellation import CancelToken
from ktrdr_lib.training.batches import TensorBatches
from tests.conftest import SMALL_STRATEGY

pytestmark = pytest.mark.slow

WORKER = Path(__file__).with_name("ddp_worker.py")
TIMEOUT_S = 240
REQUEST_EPOCH = 1  # 0-based: the second epoch, so one full epoch ran before the request
REQUEST_BATCH = 3  # not a multiple of sync_every: the agreement comes a few batches later
# The pipeline builds CancelCallback(token) with the default sync_every.
SYNC_EVERY = CancelCallback(CancelToken()).sync_every
DIST_ENV = ("LOCAL_RANK", "NODE_RANK", "GLOBAL_RANK", "WORLD_SIZE", "RANK", "GROUP_RANK")

Report = dict[str, Any]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _run_ddp_worker(root: Path, kind: str) -> tuple[Report, Report]:
    """Run the worker (both ranks) and return the rank 0 and rank 1 reports."""
    strategy = root / "small_test.yaml"
    strategy.write_text(SMALL_STRATEGY, encoding="utf-8")
    out = root / "out"
    env = {k: v for k, v in os.environ.items() if k not in DIST_ENV}
    env.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(_free_port()),
        KTRDR_HOME=str(root / "home"),
        PYTHONUNBUFFERED="1",
    )
    command = [
        sys.executable,
        str(WORKER),
        "--strategy",
        str(strategy),
        "--data-dir",
        str(root / "data"),
        "--out",
        str(out),
        "--kind",
        kind,
        "--epoch",
        str(REQUEST_EPOCH),
        "--batch",
        str(REQUEST_BATCH),
    ]
    # Own process group: on a hang, both ranks (rank 1 is rank 0's child) are killed together.
    proc = subprocess.Popen(
        command,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        log, _ = proc.communicate(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        log, _ = proc.communicate()
        pytest.fail(f"DDP {kind} run hung for {TIMEOUT_S} s; output tail:\n{log[-4000:]}")
    assert proc.returncode == 0, f"worker exited {proc.returncode}:\n{log[-4000:]}"
    reports = []
    for rank in (0, 1):
        path = out / f"rank{rank}.json"
        assert path.exists(), f"rank {rank} wrote no report; output tail:\n{log[-4000:]}"
        reports.append(json.loads(path.read_text(encoding="utf-8")))
    return reports[0], reports[1]


@pytest.fixture(scope="module")
def abort_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Report, Report]:
    """A DDP run whose rank 0 requests an abort at (REQUEST_EPOCH, REQUEST_BATCH)."""
    return _run_ddp_worker(tmp_path_factory.mktemp("ddp_abort"), "abort")


@pytest.fixture(scope="module")
def graceful_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Report, Report]:
    """A DDP run whose rank 0 requests a graceful stop at (REQUEST_EPOCH, REQUEST_BATCH)."""
    return _run_ddp_worker(tmp_path_factory.mktemp("ddp_graceful"), "graceful")


def _check_ranks(rank0: Report, rank1: Report) -> None:
    assert (rank0["rank"], rank1["rank"]) == (0, 1)
    assert rank0["world_size"] == rank1["world_size"] == 2
    assert rank0["child_exit_codes"] == [0], "rank 1 did not exit cleanly"
    # Only rank 0 ever held a cancel request.
    assert rank0["requested"] == [REQUEST_EPOCH, REQUEST_BATCH]
    assert rank0["token_set"] and rank0["token_observed"]
    assert rank1["requested"] is None and not rank1["token_set"]


def _stop_batch(report: Report) -> int:
    epoch, batch = report["last_started"]
    assert epoch == REQUEST_EPOCH, f"rank {report['rank']} stopped in epoch {epoch}"
    return int(batch)


def test_abort_on_rank_zero_stops_both_ranks_at_the_same_batch(
    abort_run: tuple[Report, Report],
) -> None:
    rank0, rank1 = abort_run
    _check_ranks(rank0, rank1)
    assert rank0["outcome"] == rank1["outcome"] == "cancelled"
    assert rank0["exception"] == rank1["exception"] == "OperationCancelled"
    assert rank0["error"] == "test: rank 0 asked to stop"
    stop0, stop1 = _stop_batch(rank0), _stop_batch(rank1)
    assert stop0 == stop1
    assert stop0 % SYNC_EVERY == 0  # the agreement batch
    assert 0 <= stop0 - REQUEST_BATCH < SYNC_EVERY
    # An abort raises before the agreement batch runs: it is not among the finished ones.
    assert rank0["completed"][-1] == rank1["completed"][-1] == stop0
    assert len(rank0["completed"]) == REQUEST_EPOCH + 1


def test_graceful_on_rank_zero_ends_both_ranks_after_that_epoch_without_error(
    graceful_run: tuple[Report, Report],
) -> None:
    rank0, rank1 = graceful_run
    _check_ranks(rank0, rank1)
    assert rank0["outcome"] == rank1["outcome"] == "completed"
    assert rank0["exception"] is None and rank1["exception"] is None
    # Graceful: the epoch of the request runs to its end on both ranks (the ranks agree at
    # the epoch's end), then no further epoch starts.
    per_epoch = rank0["num_training_batches"][-1]
    assert _stop_batch(rank0) == _stop_batch(rank1) == per_epoch - 1
    assert rank0["completed"] == rank1["completed"] == [per_epoch] * (REQUEST_EPOCH + 1)
    assert rank0["early_stopped"] and rank1["early_stopped"]
    assert rank0["epochs_completed"] == rank1["epochs_completed"] == REQUEST_EPOCH + 1
    assert rank0["cancellation_reason"] == "test: rank 0 asked to stop"
    # One saved model, written by rank 0 alone.
    assert rank0["model_id"] == "small_test/v1"
    assert rank1["model_id"] is None


@pytest.mark.parametrize("run", ["abort_run", "graceful_run"])
def test_every_rank_gets_the_same_batches_per_epoch(
    run: str, request: pytest.FixtureRequest
) -> None:
    rank0, rank1 = request.getfixturevalue(run)
    assert rank0["loader_batches"] == rank1["loader_batches"]
    assert rank0["loader_samples"] == rank1["loader_samples"]
    assert rank0["num_training_batches"] == rank1["num_training_batches"]
    assert rank0["loader_batches"] == rank0["num_training_batches"]
    # The first epoch ran in full on both ranks, batch for batch.
    assert rank0["completed"][0] == rank1["completed"][0] == rank0["num_training_batches"][0]


@pytest.mark.parametrize("run", ["abort_run", "graceful_run"])
def test_progress_comes_from_rank_zero_only(run: str, request: pytest.FixtureRequest) -> None:
    rank0, rank1 = request.getfixturevalue(run)
    # Rank 0 emitted at least the forced emit at the end of the full first epoch, plus batches.
    assert rank0["tracker_emitted"] == rank0["snapshots"] > rank0["completed"][0]
    assert rank1["tracker_emitted"] == rank1["snapshots"] == 0


@pytest.mark.parametrize(("n", "world_size"), [(1769, 2), (1000, 2), (10, 3), (101, 4)])
@pytest.mark.parametrize("shuffle", [True, False])
def test_tensor_batches_shard_equally_and_disjointly(
    n: int, world_size: int, shuffle: bool
) -> None:
    x = torch.arange(n, dtype=torch.float32).unsqueeze(1)
    y = torch.arange(n)
    shards = [
        TensorBatches(x, y, 8, shuffle=shuffle, seed=3, rank=rank, world_size=world_size)
        for rank in range(world_size)
    ]
    sizes = [[len(yb) for _, yb in shard] for shard in shards]
    assert all(s == sizes[0] for s in sizes)  # same batch count and sizes on every rank
    assert all(len(shard) == len(sizes[0]) for shard in shards)
    assert sum(sizes[0]) == n // world_size  # the remainder is dropped, never padded
    seen = torch.cat([torch.cat([yb for _, yb in shard]) for shard in shards])
    assert len(set(seen.tolist())) == len(seen)  # no sample on two ranks
