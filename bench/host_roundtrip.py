"""Host round trip: the same training locally and through a training host on loopback.

One run of this script starts a real training host (``ktrdr serve host``) in a **subprocess**
on a free loopback port (so the host trains in its own process, as it would on a GPU box),
writes seeded synthetic hourly bars to a temp data directory that both sides read, and drives
everything through one :class:`TrainingOrchestrator` (SQLite store under a temp
``KTRDR_HOME``). It measures, side by side:

* **overhead of the remote path**: wall time from ``start_training`` to ``wait()`` returning
  ``completed`` for the same strategy, data and seed, (a) ``mode="local"`` (training in this
  process) and (b) ``mode="host"`` (session start, polling, result, model download, checksum
  and import into the local ModelStore). Printed as the ratio host / local, next to the
  training time each side reports in ``training_metrics.training_time_s`` so the compute
  difference and the path overhead can be told apart: the time outside training, host minus
  local, is what the remote path adds whatever else loads the CPUs (it is also given as a
  share of a 1-minute run). ``--pairs`` local/host pairs run in alternating order, after a
  short warm-up run on each side so neither pays first-fit start-up costs in a timed run.
  The local warm-up also times an epoch, and the timed runs get as many epochs as take
  ``--target-s`` (30 s) locally at that pace, so the runs keep their length whether the CPUs
  are idle or shared (a batch of this MLP takes ~1 ms on 2 idle cores, >10 ms on busy ones).
  Both sides train with ``--threads`` torch threads (default 1: on a small shared machine,
  two-thread torch pools fighting other work make timings erratic). Goal: < 10 %.
* **cancel latency in host mode**: ``--cancels`` runs, each cancelled (abort) at a random
  point 0-``--max-delay`` s after the orchestrator first reports a training batch; the time
  from ``op.cancel()`` to ``op.wait()`` returning ``cancelled``, p50/p95. The host's own
  status of every session is read afterwards (it must be ``cancelled`` too). Goal: p95 < 1 s.
* **progress freshness**: for each host snapshot the orchestrator carried during the timed
  host run, the delay from the host creating it (its ``updated_at``) to the orchestrator's
  snapshot carrying it (that snapshot's ``updated_at``, stamped when it was forwarded; same
  machine clock), p50/p95. The host snapshots are seen by wrapping the runner's HTTP
  transport (the injectable seam of :class:`HostTrainingRunner`) in one that records each
  status answer; forwarded snapshots are matched to host ones by phase, message, epoch,
  batch and items. Goal: p95 ≤ one poll interval.

The host run is configured exactly as ``TrainingOrchestrator(host_url=..., host_token=...)``
would configure it (:func:`host_runner_from_env` builds ``HostTrainingRunner(url, token)``
with the defaults); the only difference is the recording transport.

Run: ``python bench/host_roundtrip.py [--target-s 30] [--pairs 2] [--cancels 10] [--threads 1]``
(about 3 minutes with the defaults. Other work sharing the CPUs makes the raw wall-time ratio
noisy, not the time outside training; the run prints the load average.).
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections import defaultdict, deque
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import msgspec
import torch
from _shared import percentile, small_strategy_yaml

from ktrdr_lib.data.synthetic import generate_ohlcv, write_ohlcv_csv
from ktrdr_lib.http.host_client import HostClient
from ktrdr_lib.operations.handle import OperationHandle
from ktrdr_lib.operations.orchestrator import TrainingOrchestrator
from ktrdr_lib.runners.host import HostTrainingRunner
from ktrdr_lib.schemas.host import HOST_PREFIX, HOST_TOKEN_ENV, HostSessionStatus
from ktrdr_lib.schemas.progress import ProgressSnapshot

TOKEN = "bench-host-token"

STRATEGY = small_strategy_yaml(
    "host_bench",
    description="the host round-trip benchmark's strategy (MLP 50-25 on RSI/SMA fuzzy sets)",
    epochs=10,
)

CANCEL_EPOCHS = 10_000  # cancelled runs would train for hours


# -- measuring helpers ---------------------------------------------------------------------


def epoch_seconds(stamp: str) -> float:
    """An ISO-8601 ``updated_at`` (``...Z``) as POSIX seconds."""
    return datetime.fromisoformat(stamp).timestamp()


def snapshot_key(snap: ProgressSnapshot) -> tuple[Any, ...]:
    """What a forwarded snapshot keeps of the host's one (see ProgressTracker.forward)."""
    return (snap.phase, snap.message, snap.epoch, snap.batch, snap.items_processed)


@dataclass
class HostAnswer:
    """One status answer of the host, as the runner received it."""

    received_at: float  # time.time()
    progress: ProgressSnapshot


class RecordingTransport(httpx.BaseTransport):
    """An HTTP transport that records every ``GET /sessions/{id}`` answer, then passes it on."""

    def __init__(self) -> None:
        self._inner = httpx.HTTPTransport()
        self._lock = threading.Lock()
        self.answers: list[HostAnswer] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """Send ``request``; decode and keep session status answers."""
        response = self._inner.handle_request(request)
        path = request.url.path
        if request.method == "GET" and path.startswith(f"{HOST_PREFIX}/sessions/"):
            tail = path[len(f"{HOST_PREFIX}/sessions/") :]
            if "/" not in tail and response.status_code == 200:
                body = response.read()
                received = time.time()
                status = msgspec.json.decode(body, type=HostSessionStatus)
                with self._lock:
                    self.answers.append(HostAnswer(received, status.progress))
        return response

    def close(self) -> None:
        """Close the wrapped transport."""
        self._inner.close()

    def take(self) -> list[HostAnswer]:
        """The answers recorded so far; the record starts empty again."""
        with self._lock:
            answers, self.answers = self.answers, []
        return answers


# -- the host subprocess -------------------------------------------------------------------


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class HostProcess:
    """``ktrdr serve host`` in a subprocess with its own KTRDR_HOME, reading ``data_dir``."""

    def __init__(self, root: Path, data_dir: Path, threads: int) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = root / "host.log"
        env = dict(os.environ)
        env.update(
            {
                HOST_TOKEN_ENV: TOKEN,
                "KTRDR_HOME": str(root / "host_home"),
                "KTRDR_DATA_DIR": str(data_dir),
                "PYTHONWARNINGS": "ignore",
                "OMP_NUM_THREADS": str(threads),  # torch's intra-op threads, as here
            }
        )
        ktrdr = shutil.which("ktrdr", path=str(Path(sys.executable).parent))
        command = [ktrdr] if ktrdr else [sys.executable, "-m", "ktrdr_lib.cli"]
        command += ["serve", "host", "--port", str(self.port)]
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            command, env=env, stdout=self._log, stderr=subprocess.STDOUT
        )

    def wait_ready(self, timeout: float = 90.0) -> dict[str, Any]:
        """Poll ``GET /health`` until the host answers; returns the health body."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            try:
                response = httpx.get(f"{self.url}{HOST_PREFIX}/health", timeout=2.0)
            except httpx.TransportError:
                time.sleep(0.2)
                continue
            if response.status_code == 200:
                body: dict[str, Any] = response.json()
                return body
            time.sleep(0.2)
        raise RuntimeError(f"the training host did not start; its log:\n{self.log_tail()}")

    def log_tail(self, lines: int = 40) -> str:
        """The last lines of the host's log."""
        self._log.flush()
        text = self.log_path.read_text(encoding="utf-8", errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        """Ask the host to shut down (SIGTERM), kill it if it does not."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self._log.close()


# -- the measurements ----------------------------------------------------------------------


@dataclass
class TimedRun:
    """One completed run and what was seen of it."""

    mode: str
    wall_s: float
    training_time_s: float
    epochs: int
    batches_per_epoch: int
    snapshots: list[ProgressSnapshot]
    epoch_durations: list[float]


def timed_run(orch: TrainingOrchestrator, strategy: Path, mode: str, epochs: int) -> TimedRun:
    """Train to completion in ``mode``; wall time from start_training to wait() returning."""
    seen: list[ProgressSnapshot] = []
    started = time.perf_counter()
    op = orch.start_training(strategy, mode=mode, epochs=epochs)  # type: ignore[arg-type]
    for snap in op.follow(timeout=120):
        seen.append(snap)
    record = op.wait(timeout=300)
    wall = time.perf_counter() - started
    if record.status != "completed":
        raise RuntimeError(f"the {mode} run ended {record.status}: {record.error_message}")
    result = op.result()
    return TimedRun(
        mode=mode,
        wall_s=wall,
        training_time_s=result.training_metrics.training_time_s or 0.0,
        epochs=result.training_metrics.epochs_completed,
        batches_per_epoch=record.progress.total_batches,
        snapshots=seen,
        epoch_durations=[
            row.duration_s for row in op.metrics().epochs if row.duration_s is not None
        ],
    )


@dataclass
class Freshness:
    """Delays of carried host snapshots, in seconds."""

    host_to_local: list[float]
    host_to_received: list[float]
    host_snapshots_made: int
    host_snapshots_carried: int
    polls: int


def freshness(run: TimedRun, answers: list[HostAnswer]) -> Freshness:
    """Match forwarded snapshots to the host snapshots they carry and time the hand-over."""
    # The runner forwards each answer with a newer sequence, in order: pair them first in,
    # first out per key (a host can repeat a key, e.g. at an epoch end).
    forwarded: dict[tuple[Any, ...], deque[HostAnswer]] = defaultdict(deque)
    last_sequence = -1
    for answer in answers:
        if answer.progress.sequence > last_sequence:
            last_sequence = answer.progress.sequence
            forwarded[snapshot_key(answer.progress)].append(answer)
    host_to_local: list[float] = []
    host_to_received: list[float] = []
    for snap in run.snapshots:
        if snap.status in ("completed", "failed", "cancelled") or not snap.host_session_id:
            continue
        waiting = forwarded.get(snapshot_key(snap))
        if not waiting:
            continue
        carried = waiting.popleft()
        made = epoch_seconds(carried.progress.updated_at)
        host_to_local.append(epoch_seconds(snap.updated_at) - made)
        host_to_received.append(carried.received_at - made)
    return Freshness(
        host_to_local=host_to_local,
        host_to_received=host_to_received,
        host_snapshots_made=max((a.progress.sequence for a in answers), default=0),
        host_snapshots_carried=len(host_to_local),
        polls=len(answers),
    )


@dataclass
class Cancel:
    """One measured cancel in host mode."""

    client_s: float
    recorded_final_ms: float | None
    status: str
    host_status: str
    batch_at_cancel: int


def measure_cancel(
    orch: TrainingOrchestrator, client: HostClient, strategy: Path, delay: float, seed: int
) -> Cancel:
    """Start a host run, cancel it ``delay`` s after its first training batch is reported."""
    op: OperationHandle = orch.start_training(
        strategy, mode="host", epochs=CANCEL_EPOCHS, seed=seed
    )
    batch = 0
    for snap in op.follow(timeout=120):
        if snap.phase == "train" and snap.batch > 0:
            batch = snap.batch
            break
        if snap.status in ("completed", "failed", "cancelled"):
            raise RuntimeError(f"cancel run ended {snap.status} before training: {snap.message}")
    time.sleep(delay)
    asked = time.perf_counter()
    op.cancel(reason="host round-trip benchmark")
    record = op.wait(timeout=60)
    client_s = time.perf_counter() - asked
    if not record.is_final:
        raise RuntimeError("a host run did not stop within 60 s after cancel()")
    host_status = "?"
    if record.host_session_id:
        host_status = client.session(record.host_session_id).status
    recorded = [
        latency.final_ms
        for latency in orch.health().last_cancel_latencies
        if latency.operation_id == op.operation_id
    ]
    return Cancel(
        client_s=client_s,
        recorded_final_ms=recorded[-1] if recorded else None,
        status=record.status,
        host_status=host_status,
        batch_at_cancel=batch,
    )


def stats(values: list[float], scale: float = 1.0, digits: int = 0) -> str:
    """``p50 … p95 … max …`` of ``values`` times ``scale``."""
    if not values:
        return "no samples"
    p50, p95 = percentile(values, 50) * scale, percentile(values, 95) * scale
    return f"p50 {p50:.{digits}f}  p95 {p95:.{digits}f}  max {max(values) * scale:.{digits}f}"


def verdict(met: bool) -> str:
    """``met`` / ``MISSED``."""
    return "met" if met else "MISSED"


def main() -> None:
    """Run the three measurements and print the figures and whether each goal is met."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bars", type=int, default=20_000, help="synthetic hourly bars")
    parser.add_argument(
        "--epochs",
        type=int,
        default=None,
        help="epochs of the timed runs (default: as many as take --target-s locally)",
    )
    parser.add_argument(
        "--target-s", type=float, default=30.0, help="local training time to size runs for"
    )
    parser.add_argument("--pairs", type=int, default=2, help="timed local/host run pairs")
    parser.add_argument("--cancels", type=int, default=10, help="host runs to cancel (>= 10)")
    parser.add_argument(
        "--max-delay", type=float, default=1.0, help="longest wait before a cancel (s)"
    )
    parser.add_argument("--poll-interval", type=float, default=0.5, help="runner poll (s)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random delays")
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads on each side (0: torch's default)"
    )
    args = parser.parse_args()
    if min(args.cancels, args.pairs) < 1 or (args.epochs is not None and args.epochs < 1):
        parser.error("--cancels, --epochs and --pairs must be >= 1")
    for name in ("lightning.pytorch", "lightning.fabric", "ktrdr_lib", "httpx"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    rng = random.Random(args.seed)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    bench_started = time.perf_counter()
    load_before = os.getloadavg()[0]

    with tempfile.TemporaryDirectory(prefix="ktrdr-host-bench-") as tmp:
        root = Path(tmp)
        data_dir = root / "data"
        data_dir.mkdir()
        write_ohlcv_csv(
            generate_ohlcv(args.bars, timeframe="1h", seed=7), data_dir / "SYNTH_1h.csv"
        )
        strategy = root / "host_bench.yaml"
        strategy.write_text(STRATEGY, encoding="utf-8")
        os.environ["KTRDR_HOME"] = str(root / "local_home")
        host = HostProcess(root, data_dir, args.threads)  # starts while this process warms up
        transport = RecordingTransport()
        runner = HostTrainingRunner(
            host.url, TOKEN, poll_interval=args.poll_interval, transport=transport
        )
        orch = TrainingOrchestrator(home=root / "local_home", data_dir=data_dir, host_runner=runner)
        client = HostClient(host.url, TOKEN)
        try:
            # warm-up (first-fit costs in this process) and calibration: seconds per epoch
            warm = timed_run(orch, strategy, "local", 3)
            epoch_s = min(warm.epoch_durations[1:] or warm.epoch_durations)  # warmed pace
            epochs = args.epochs or max(2, min(2000, math.ceil(args.target_s / epoch_s)))
            health = host.wait_ready()
            timed_run(orch, strategy, "host", 1)  # warm-up: the same on the host
            transport.take()
            locals_: list[TimedRun] = []
            remotes: list[TimedRun] = []
            answers: list[list[HostAnswer]] = []
            for pair in range(args.pairs):  # alternate the order: drift hits both sides
                for mode in ("local", "host") if pair % 2 == 0 else ("host", "local"):
                    run = timed_run(orch, strategy, mode, epochs)
                    if mode == "local":
                        locals_.append(run)
                    else:
                        remotes.append(run)
                        answers.append(transport.take())
            fresh = [freshness(run, got) for run, got in zip(remotes, answers, strict=True)]
            cancels = [
                measure_cancel(orch, client, strategy, rng.uniform(0.0, args.max_delay), seed)
                for seed in range(args.cancels)
            ]
        except Exception:
            sys.stderr.write(f"--- host log tail ---\n{host.log_tail()}\n")
            raise
        finally:
            orch.shutdown(cancel_running=True, timeout=30)
            client.close()
            runner.close()
            host.stop()
    total = time.perf_counter() - bench_started

    devices = ", ".join(str(d.get("name")) for d in health.get("devices", []))
    print(
        f"host round trip: strategy host_bench (MLP 50-25, batch 64) on {args.bars} synthetic "
        f"1h bars = {locals_[0].batches_per_epoch} batches/epoch, {epochs} epochs (an epoch "
        f"took {epoch_s:.2f} s in the warm-up; target {args.target_s:g} s locally), "
        f"{torch.get_num_threads()} torch thread(s) on each side; host "
        f"`ktrdr serve host` in a subprocess on loopback (device {health.get('device')}: "
        f"{devices}); runner poll interval {args.poll_interval:g} s; {total:.0f} s in all"
    )
    local_wall = sum(run.wall_s for run in locals_)
    host_wall = sum(run.wall_s for run in remotes)
    overhead = host_wall / local_wall - 1.0
    # Time outside training on each side: what the remote path adds, whatever the CPU load.
    path_s = statistics.median(
        (h.wall_s - h.training_time_s) - (lo.wall_s - lo.training_time_s)
        for h, lo in zip(remotes, locals_, strict=True)
    )
    path_overhead = path_s / statistics.median(run.wall_s for run in locals_)
    print(
        f"\n1. wall time, start_training → wait() returns completed ({args.pairs} local/host "
        "pairs, order alternated, after a warm-up run on each side)"
    )
    for index, (lo, h) in enumerate(zip(locals_, remotes, strict=True), start=1):
        print(
            f"  pair {index}: local {lo.wall_s:5.1f} s (training {lo.training_time_s:5.1f} s)  "
            f"host {h.wall_s:5.1f} s (training on the host {h.training_time_s:5.1f} s)  "
            f"ratio {h.wall_s / lo.wall_s:.3f}"
        )
    print(
        f"  host / local (summed wall time) = {host_wall / local_wall:.3f} → remote-path "
        f"overhead {overhead * 100:+.1f} %; goal < 10 %: {verdict(overhead < 0.10)}"
    )
    print(
        f"  time outside training, host minus local: median {path_s:.2f} s = "
        f"{path_overhead * 100:+.1f} % of a local run (session start, polling, result, "
        "model download + import; insensitive to CPU contention)"
    )
    minute = path_s / 60.0
    print(
        f"  on a 1-minute run that is {minute * 100:+.1f} %; goal < 10 %: {verdict(minute < 0.10)}"
    )
    print(f"  load average (1 min) at start {load_before:.2f}, at end {os.getloadavg()[0]:.2f}")

    statuses = sorted({c.status for c in cancels})
    host_statuses = sorted({c.host_status for c in cancels})
    client_ms = [c.client_s for c in cancels]
    recorded = [c.recorded_final_ms / 1e3 for c in cancels if c.recorded_final_ms is not None]
    p95 = percentile(client_ms, 95)
    print(
        f"\n2. cancel latency in host mode over {len(cancels)} cancels "
        f"(each 0-{args.max_delay:g} s after the first training batch was reported)"
    )
    print(f"  final status: orchestrator {statuses}, host {host_statuses}")
    print(f"  op.cancel() → wait() returns cancelled: {stats(client_ms, 1e3)} ms")
    if recorded:
        print(f"  token set → final (orchestrator health): {stats(recorded, 1e3)} ms")
    both = statuses == ["cancelled"] and host_statuses == ["cancelled"]
    print(f"  p95 {p95 * 1e3:.0f} ms; goal < 1000 ms: {verdict(p95 < 1.0 and both)}")

    interval = args.poll_interval
    to_local = [d for f in fresh for d in f.host_to_local]
    to_received = [d for f in fresh for d in f.host_to_received]
    carried = sum(f.host_snapshots_carried for f in fresh)
    made = sum(f.host_snapshots_made for f in fresh)
    polls = sum(f.polls for f in fresh)
    print(
        f"\n3. progress freshness during the timed host runs: {carried} host snapshots carried "
        f"by the orchestrator (the host made {made}; ones superseded between polls are never "
        f"fetched), {polls} status polls"
    )
    print(f"  host updated_at → poll answer received: {stats(to_received, 1e3)} ms")
    print(f"  host updated_at → orchestrator snapshot: {stats(to_local, 1e3)} ms")
    p95_fresh = percentile(to_local, 95)
    print(
        f"  p95 {p95_fresh * 1e3:.0f} ms; goal ≤ one poll interval ({interval * 1e3:.0f} ms): "
        f"{verdict(bool(to_local) and p95_fresh <= interval)}"
    )


if __name__ == "__main__":
    main()
