"""API load: v1 status reads and SSE followers against a live training, side by side with
the same training unloaded, in one run.

The API is served by uvicorn in a subprocess (``--serve``; ``create_app()`` with its own
orchestrator on a temp KTRDR_HOME, synthetic hourly bars and a strategy written by this
script; access log off as in ``ktrdr serve api --log-level warning``). Torch trains on
``--torch-threads`` threads (default 1, so one core trains and the other serves and loads).
Trainings are started through ``POST /api/v1/trainings/start``. ``--local-runner`` says where
they train: ``process`` (default, as ``ktrdr serve api`` does: a child process per run, its
own GIL), ``thread`` (inside the server process, sharing its GIL with the request handlers),
or ``both`` (the whole plan once per runner, a fresh server each, figures side by side).

1. A short calibration run sizes the epochs so one training takes about ``--train-s``.
2. Four trainings in the order baseline, loaded, loaded, baseline (so a drift of a shared
   machine's speed hits both alike). **baseline**: no load (one light poller, 4 reads/s,
   watches progress). **loaded**: once its second epoch has begun, ``--clients`` asyncio
   clients (one keep-alive httpx connection each) loop ``GET /api/v1/operations/{id}`` for
   ``--load-s`` seconds, while 3 SSE clients follow ``/operations/{id}/events`` to the end.

Training speed is batches per second of training clock (``elapsed_s`` and ``items_processed``
of the progress snapshots) over the same window in each run: from the start of the second
epoch, for ``--load-s`` seconds. Reported: reads/s, p50/p99/max latency, errors, SSE events,
client and server CPU, the ratio mean loaded / mean baseline (goal: reads/s ≥ 1000, p99 <
50 ms, ratio ≥ 0.90) and baseline2/baseline1, the noise of the machine in this run.

Then the GET handler path is timed in-process stage by stage (store read, v1 mapping, JSON
encode, the whole Litestar app through ASGI) on the finished run's record, to say where a
read's time goes.

Run: ``python bench/api_load.py [--clients 8] [--load-s 8] [--train-s 14] [--local-runner both]``
(about 80 s per runner)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from _shared import small_strategy_yaml

ROOT = Path(__file__).resolve().parent.parent
STRATEGY_NAME = "load_bench"
STRATEGY = small_strategy_yaml(
    "load_bench",
    description="a small strategy trained for many epochs while the API is loaded",
    epochs=10,
)


# -- server ------------------------------------------------------------------------------------


def serve(port: int, home: Path, data_dir: Path, torch_threads: int, local_runner: str) -> None:
    """The ``--serve`` mode: the API with its own orchestrator, until SIGTERM."""
    import logging
    import warnings

    import torch
    import uvicorn

    warnings.simplefilter("ignore")
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    torch.set_num_threads(torch_threads)
    if os.environ.get("BENCH_SWITCH_INTERVAL"):  # experiment: the GIL hand-off interval
        sys.setswitchinterval(float(os.environ["BENCH_SWITCH_INTERVAL"]))
    from api import create_app

    app = create_app(
        api_token=None,
        orchestrator_options={"home": home, "data_dir": data_dir, "max_concurrent": 1},
        local_runner="process" if local_runner == "process" else "thread",
    )
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


class ServerProcess:
    """The ``--serve`` subprocess; knows its URL and reads its CPU time from /proc."""

    def __init__(self, home: Path, data_dir: Path, torch_threads: int, local_runner: str) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = int(sock.getsockname()[1])
        env = dict(os.environ, KTRDR_HOME=str(home), KTRDR_STRATEGIES_DIR=str(home / "strat"))
        env.pop("KTRDR_API_TOKEN", None)
        env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
        self.proc = subprocess.Popen(
            [
                *(sys.executable, __file__, "--serve", str(self.port), str(home), str(data_dir)),
                *("--torch-threads", str(torch_threads), "--local-runner", local_runner),
            ],
            env=env,
        )
        self.url = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 90
        while True:
            try:
                if httpx.get(f"{self.url}/api/v1/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("the API server did not start")
            time.sleep(0.2)

    def cpu_s(self) -> float:
        """User + system CPU seconds of the server process so far, with those of its training
        processes once they have ended (a run's child is counted when the run is over)."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks = sum(int(f) for f in fields[11:15])  # utime, stime, cutime, cstime
        return ticks / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


# -- measuring ---------------------------------------------------------------------------------


@dataclass
class Progress:
    """(training elapsed_s, items_processed, epoch) points seen from any reader."""

    points: list[tuple[float, int, int]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    batches_per_epoch: int = 0

    def add(self, context: dict[str, Any]) -> None:
        point = (
            float(context.get("elapsed_s") or 0.0),
            int(context.get("items_processed") or 0),
            int(context.get("epoch") or 0),
        )
        with self.lock:
            self.points.append(point)
            self.batches_per_epoch = max(
                self.batches_per_epoch, int(context.get("total_batches") or 0)
            )

    def seconds_per_epoch(self) -> float | None:
        """Training seconds per epoch, from the first to the last point seen while training."""
        training = sorted(p for p in self.points if p[1] > 0 and p[2] >= 1)
        if len(training) < 2 or training[-1][0] <= training[0][0] or not self.batches_per_epoch:
            return None
        rate = (training[-1][1] - training[0][1]) / (training[-1][0] - training[0][0])
        return self.batches_per_epoch / rate if rate > 0 else None

    def window_rate(self, start_elapsed: float, length_s: float) -> float | None:
        """Batches per training second between the first point at or after
        ``start_elapsed`` and the last one at or before ``start_elapsed + length_s``."""
        inside = sorted(p for p in self.points if start_elapsed <= p[0] <= start_elapsed + length_s)
        if len(inside) < 2 or inside[-1][0] <= inside[0][0]:
            return None
        return (inside[-1][1] - inside[0][1]) / (inside[-1][0] - inside[0][0])

    def second_epoch_start(self) -> float | None:
        """Training elapsed_s when epoch 2 was first seen."""
        seen = [p[0] for p in self.points if p[2] >= 2]
        return min(seen) if seen else None


@dataclass
class LoadFigures:
    """What the load clients saw."""

    latencies_ms: list[float] = field(default_factory=list)
    errors: int = 0
    duration_s: float = 0.0
    sse_events: list[int] = field(default_factory=list)
    sse_finals: int = 0
    sse_errors: int = 0
    client_cpu_s: float = 0.0


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)]


async def _reader(
    client: httpx.AsyncClient,
    path: str,
    stop_at: float,
    figs: LoadFigures,
    progress: Progress,
    interval: float,
) -> None:
    next_at = time.perf_counter()
    while time.perf_counter() < stop_at:
        if interval:  # paced (--rate): one read every ``interval`` seconds
            next_at += interval
            await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
        began = time.perf_counter()
        try:
            response = await client.get(path)
            elapsed = (time.perf_counter() - began) * 1000.0
            if response.status_code != 200:
                figs.errors += 1
                continue
            figs.latencies_ms.append(elapsed)
            progress.add(response.json()["data"]["progress"]["context"])
        except httpx.HTTPError:
            figs.errors += 1


async def _follower(url: str, figs: LoadFigures, progress: Progress) -> None:
    events, last_id = 0, 0
    message: dict[str, str] = {}
    try:
        async with (
            httpx.AsyncClient(timeout=httpx.Timeout(10.0, read=120.0)) as client,
            client.stream("GET", url) as response,
        ):
            async for line in response.aiter_lines():
                if line:
                    name, _, value = line.partition(":")
                    message[name] = value.strip()
                    continue
                kind = message.get("event")  # a blank line ends a message
                if kind == "progress":
                    seq = int(message["id"])
                    if seq <= last_id:
                        figs.sse_errors += 1  # ids must increase
                    last_id = seq
                    events += 1
                    progress.add(json.loads(message["data"]))
                elif kind == "final":
                    figs.sse_finals += 1
                message = {}
    except httpx.HTTPError:
        figs.sse_errors += 1
    figs.sse_events.append(events)


async def _load(
    url: str, op_id: str, clients: int, load_s: float, rate: float, progress: Progress
) -> tuple[LoadFigures, list[asyncio.Task[None]]]:
    figs = LoadFigures()
    followers = [
        asyncio.create_task(_follower(f"{url}/api/v1/operations/{op_id}/events", figs, progress))
        for _ in range(3)
    ]
    pool = [
        httpx.AsyncClient(base_url=url, timeout=10.0, limits=httpx.Limits(max_connections=1))
        for _ in range(clients)
    ]
    path = f"/api/v1/operations/{op_id}"
    for client in pool:  # connect before the clock starts
        await client.get(path)
    cpu0, began = time.process_time(), time.perf_counter()
    stop_at = began + load_s
    interval = clients / rate if rate else 0.0
    await asyncio.gather(*(_reader(c, path, stop_at, figs, progress, interval) for c in pool))
    figs.duration_s = time.perf_counter() - began
    figs.client_cpu_s = time.process_time() - cpu0
    for client in pool:
        await client.aclose()
    return figs, followers


def _start(url: str, epochs: int, task_id: str) -> str:
    body = {
        "symbols": ["SYNTH"],
        "timeframes": ["1h"],
        "strategy_name": STRATEGY_NAME,
        "task_id": task_id,
        "overrides": {"epochs": epochs},
    }
    response = httpx.post(f"{url}/api/v1/trainings/start", json=body, timeout=60)
    response.raise_for_status()
    return str(response.json()["task_id"])


def _poll_until(url: str, op_id: str, progress: Progress, *, epoch: int | None) -> dict[str, Any]:
    """Read 4×/s until the run reaches ``epoch`` (or, with None, is final)."""
    with httpx.Client(base_url=url, timeout=10) as client:
        while True:
            data = client.get(f"/api/v1/operations/{op_id}").json()["data"]
            progress.add(data["progress"]["context"])
            if data["status"] in ("completed", "failed", "cancelled"):
                if data["status"] != "completed":
                    raise RuntimeError(
                        f"training {op_id} {data['status']}: {data['error_message']}"
                    )
                return data
            if epoch is not None and data["progress"]["context"].get("epoch", 0) >= epoch:
                return data
            time.sleep(0.25)


@dataclass
class RunFigures:
    """One training run."""

    name: str
    progress: Progress
    total_s: float
    load: LoadFigures | None = None
    server_cpu_s: float = 0.0


def run_training(
    server: ServerProcess,
    name: str,
    epochs: int,
    clients: int,
    load_s: float | None,
    rate: float = 0.0,
) -> RunFigures:
    """One training, with the load during its window when ``load_s`` is given."""
    progress = Progress()
    op_id = _start(server.url, epochs, f"bench_{name}_{os.getpid()}")
    _poll_until(server.url, op_id, progress, epoch=2)
    figs = None
    cpu0 = server.cpu_s()
    if load_s is not None:

        async def loaded() -> LoadFigures:
            figs, followers = await _load(server.url, op_id, clients, load_s, rate, progress)
            await asyncio.wait_for(asyncio.gather(*followers), timeout=300)
            return figs

        figs = asyncio.run(loaded())
    final = _poll_until(server.url, op_id, progress, epoch=None)
    return RunFigures(
        name=name,
        progress=progress,
        total_s=float(final["progress"]["context"].get("elapsed_s") or 0.0),
        load=figs,
        server_cpu_s=server.cpu_s() - cpu0,
    )


# -- the GET path, stage by stage --------------------------------------------------------------


def profile_get_path(home: Path, op_id: str, repeats: int = 2000) -> dict[str, float]:
    """Microseconds per call of each stage of ``GET /operations/{id}``, in this process."""
    import warnings

    import msgspec

    from api import create_app
    from api.v1 import operation_info
    from ktrdr_lib.operations.orchestrator import TrainingOrchestrator
    from ktrdr_lib.operations.store import OperationStore
    from ktrdr_lib.schemas.v1 import OperationEnvelope

    store = OperationStore(home / "operations.db")
    orchestrator = TrainingOrchestrator(home=home, store=store)
    record = orchestrator.get_operation(op_id)
    info = operation_info(record)
    envelope = OperationEnvelope(success=True, data=info)
    encoder = msgspec.json.Encoder()

    def per_call_us(fn: Any) -> float:
        best = math.inf
        for _ in range(3):
            began = time.perf_counter()
            for _ in range(repeats):
                fn()
            best = min(best, (time.perf_counter() - began) / repeats * 1e6)
        return best

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        app = create_app(orchestrator, api_token=None)
    path = f"/api/v1/operations/{op_id}"
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"127.0.0.1")],  # an open API answers this machine's names only
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
        "state": {},
    }

    async def asgi_calls(n: int) -> float:
        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start" and message["status"] != 200:
                raise RuntimeError(f"GET {path} answered {message['status']}")

        best = math.inf
        for _ in range(3):
            began = time.perf_counter()
            for _ in range(n):
                await app(dict(scope), receive, send)  # type: ignore[arg-type]
            best = min(best, (time.perf_counter() - began) / n * 1e6)
        return best

    figures = {
        "store read (orchestrator.get_operation)": per_call_us(
            lambda: orchestrator.get_operation(op_id)
        ),
        "v1 mapping (operation_info)": per_call_us(lambda: operation_info(record)),
        "JSON encode (msgspec)": per_call_us(lambda: encoder.encode(envelope)),
        "whole app via ASGI (no server)": asyncio.run(asgi_calls(repeats)),
    }
    orchestrator.shutdown(timeout=5)
    return figures


# -- main --------------------------------------------------------------------------------------


def bench_runner(
    args: argparse.Namespace, local_runner: str, home: Path, data: Path
) -> list[RunFigures]:
    """Calibration, then baseline, loaded, loaded, baseline on a fresh server."""
    (home / "strat").mkdir(parents=True)
    (home / "strat" / f"{STRATEGY_NAME}.yaml").write_text(STRATEGY, encoding="utf-8")
    server = ServerProcess(home, data, args.torch_threads, local_runner)
    try:
        calibration = run_training(server, "calibration", 3, args.clients, None)
        # batches/s while training: a child process's start-up is not training time
        per_epoch = calibration.progress.seconds_per_epoch() or calibration.total_s / 3
        epochs = max(6, math.ceil(args.train_s / per_epoch))
        print(
            f"[{local_runner}] server {server.url}; {args.bars} bars; {per_epoch:.2f} s/epoch → "
            f"{epochs} epochs per run; torch threads for training: {args.torch_threads}; "
            f"{os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.1f}",
            flush=True,
        )
        runs = []
        # ABBA, so a drift of the machine's speed hits both variants alike
        plan = [("baseline1", None), ("loaded1", args.load_s)]
        plan += [("loaded2", args.load_s), ("baseline2", None)]
        for name, load in plan:
            runs.append(run_training(server, name, epochs, args.clients, load, args.rate))
    finally:
        server.stop()
    return runs


def main() -> None:
    """Baseline, loaded, loaded, baseline trainings per local runner; print reads/s, latency
    and the training-speed ratio."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--clients", type=int, default=8, help="concurrent GET clients")
    parser.add_argument("--load-s", type=float, default=8.0, help="seconds of load per run")
    parser.add_argument("--train-s", type=float, default=14.0, help="target seconds per run")
    parser.add_argument("--bars", type=int, default=12_000, help="synthetic 1h bars")
    parser.add_argument("--torch-threads", type=int, default=1)
    parser.add_argument(
        "--rate", type=float, default=0.0, help="pace the GET clients to this many reads/s"
    )
    parser.add_argument(
        "--local-runner",
        choices=("process", "thread", "both"),
        default="process",
        help="train in a child process (as `ktrdr serve api`), in the server, or compare both",
    )
    parser.add_argument(
        "--serve", nargs=3, metavar=("PORT", "HOME", "DATA"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.serve:
        port, home, data = args.serve
        serve(int(port), Path(home), Path(data), args.torch_threads, args.local_runner)
        return

    from ktrdr_lib.data.synthetic import generate_ohlcv, write_ohlcv_csv

    began = time.perf_counter()
    runners = ["process", "thread"] if args.local_runner == "both" else [args.local_runner]
    results: dict[str, list[RunFigures]] = {}
    with tempfile.TemporaryDirectory(prefix="api_load_") as tmp:
        data = Path(tmp) / "data"
        data.mkdir()
        write_ohlcv_csv(generate_ohlcv(args.bars, timeframe="1h", seed=3), data / "SYNTH_1h.csv")
        for runner in runners:
            results[runner] = bench_runner(args, runner, Path(tmp) / f"home_{runner}", data)
        home = Path(tmp) / f"home_{runners[0]}"
        stages = profile_get_path(home, f"bench_loaded1_{os.getpid()}")
    verdicts = {runner: report(runner, runs, args) for runner, runs in results.items()}
    print("\nGET /operations/{id}, per call in-process (µs):")
    for stage, us in stages.items():
        print(f"  {stage:<42} {us:>8.1f}")
    if len(verdicts) > 1:
        print("\nside by side (training speed loaded/baseline; reads/s; p99 ms):")
        for runner, (ratio, reads_s, p99, _) in verdicts.items():
            shown = f"{ratio:.3f}" if ratio is not None else "n/a"
            print(f"  {runner:<8} {shown:>7} {reads_s:>8.0f} {p99:>8.2f}")
    for runner, (*_, met) in verdicts.items():
        print(
            f"goals with the {runner} runner (≥ 1000 reads/s, p99 < 50 ms, slowdown < 10 %): "
            f"{'MET' if met else 'MISSED'}"
        )
    print(f"bench wall time {time.perf_counter() - began:.0f} s")


def report(
    runner: str, runs: list[RunFigures], args: argparse.Namespace
) -> tuple[float | None, float, float, bool]:
    """Print one runner's figures; return (speed ratio, min reads/s, max p99, goals met)."""
    rates: dict[str, float] = {}
    print(f"\n== local runner: {runner} ==")
    print(f"{'run':<10} {'train s':>8} {'batches/s in window':>20} {'server+train CPU s':>19}")
    for run in runs:
        start = run.progress.second_epoch_start()
        rate = None if start is None else run.progress.window_rate(start, args.load_s)
        if rate is not None:
            rates[run.name] = rate
        shown = f"{rate:.1f}" if rate is not None else "n/a"
        print(f"{run.name:<10} {run.total_s:>8.2f} {shown:>20} {run.server_cpu_s:>19.1f}")
    all_reads_s: list[float] = []
    all_p99: list[float] = []
    for run in runs:
        figs = run.load
        if figs is None:
            continue
        reads = len(figs.latencies_ms)
        reads_s = reads / figs.duration_s if figs.duration_s else 0.0
        p99 = _pct(figs.latencies_ms, 0.99) if reads else math.inf
        all_reads_s.append(reads_s)
        all_p99.append(p99)
        pacing = f" paced to {args.rate:.0f}/s" if args.rate else ""
        print(
            f"\n{run.name}: {args.clients} GET clients{pacing} for {figs.duration_s:.1f} s → "
            f"{reads} reads, {reads_s:.0f} reads/s; latency p50 "
            f"{_pct(figs.latencies_ms, 0.5) if reads else math.nan:.2f} ms, p99 {p99:.2f} ms, "
            f"max {max(figs.latencies_ms, default=math.nan):.1f} ms; errors {figs.errors}"
        )
        print(
            f"  3 SSE clients: progress events {figs.sse_events}, final events "
            f"{figs.sse_finals}/3, errors {figs.sse_errors}; load-client CPU "
            f"{figs.client_cpu_s / figs.duration_s * 100:.0f} % of a core"
        )
    baselines = [rates[n] for n in ("baseline1", "baseline2") if n in rates]
    loaded = [rates[n] for n in ("loaded1", "loaded2") if n in rates]
    ratio = statistics.fmean(loaded) / statistics.fmean(baselines) if loaded and baselines else None
    print()
    if ratio is not None:
        print(f"training speed, mean loaded / mean baseline: {ratio:.3f}  (goal ≥ 0.90)")
    if len(baselines) == 2:
        print(f"baseline2 / baseline1 (this machine's noise): {baselines[1] / baselines[0]:.3f}")
    reads_ok = bool(all_reads_s) and min(all_reads_s) >= 1000 and max(all_p99) < 50
    goals = reads_ok and ratio is not None and ratio >= 0.90
    return (
        ratio,
        min(all_reads_s, default=0.0),
        max(all_p99, default=math.inf),
        goals,
    )


if __name__ == "__main__":
    main()
