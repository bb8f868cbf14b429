"""The ``ktrdr`` command line.

``ktrdr train STRATEGY`` trains in-process with progress on stderr and the result on stdout;
``ktrdr strategies validate|list`` and ``ktrdr models list`` inspect what is there;
``ktrdr operations list|show|follow|cancel`` work on the operations store. Errors end with a
one-line message and a non-zero exit status; Ctrl-C stops a training cleanly.

With ``--api URL`` (or ``KTRDR_API_URL``; ``KTRDR_API_TOKEN`` is sent as the bearer token)
``train``, ``operations`` and ``models list`` drive a running ``ktrdr serve api`` instead: the
same progress lines come from its event stream, and Ctrl-C cancels the remote operation and
waits for the server to confirm. That needs httpx (the ``api`` extra), imported only then.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, TextIO

import msgspec

from ktrdr_lib.errors import ConfigError, KtrdrError, StateConflictError

if TYPE_CHECKING:
    from ktrdr_lib.http.client import ApiClient
    from ktrdr_lib.schemas.operations import OperationSnapshot
    from ktrdr_lib.schemas.progress import ProgressSnapshot

__all__ = ["main"]

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_CANCELLED = 0, 1, 2, 130


def _csv(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def _remote_options() -> argparse.ArgumentParser:
    remote = argparse.ArgumentParser(add_help=False)
    group = remote.add_argument_group("remote API")
    group.add_argument(
        "--api",
        metavar="URL",
        help="drive the KTRDR API at URL (default KTRDR_API_URL; KTRDR_API_TOKEN is sent as "
        "the bearer token)",
    )
    group.add_argument(
        "--local", action="store_true", help="ignore KTRDR_API_URL; work in this process"
    )
    return remote


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ktrdr", description="Train KTRDR strategy models.")
    sub = parser.add_subparsers(dest="command", required=True)
    remote = _remote_options()

    train = sub.add_parser(
        "train", parents=[remote], help="train a strategy (in this process, or on --api)"
    )
    train.add_argument(
        "strategy",
        help="strategy name (see `ktrdr strategies list`) or YAML path; a name with --api",
    )
    train.add_argument("--symbols", type=_csv, help="comma-separated, e.g. AAPL,MSFT")
    train.add_argument("--timeframes", type=_csv, help="comma-separated, e.g. 1h,4h")
    train.add_argument("--start-date", help="first bar, ISO date")
    train.add_argument("--end-date", help="last bar, ISO date")
    train.add_argument("--epochs", type=int, help="override the strategy's epochs")
    train.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
    train.add_argument("--data-dir", help="OHLCV directory (default KTRDR_DATA_DIR or samples)")
    train.add_argument("--json", action="store_true", help="print the result as JSON")
    train.add_argument("--no-save", action="store_true", help="do not save the model")

    strategies = sub.add_parser("strategies", help="strategy files").add_subparsers(
        dest="action", required=True
    )
    validate = strategies.add_parser("validate", help="check strategy files, report problems")
    validate.add_argument("files", nargs="+")
    strategies.add_parser("list", help="strategies found by name")

    serve = sub.add_parser("serve", help="run a server").add_subparsers(
        dest="action", required=True
    )
    serve_api = serve.add_parser("api", help="the HTTP API (Litestar under uvicorn)")
    serve_api.add_argument("--host", default="127.0.0.1", help="bind address (default loopback)")
    serve_api.add_argument("--port", type=int, default=8000)
    serve_api.add_argument(
        "--local-runner",
        choices=("process", "thread"),
        default=None,
        help="train local runs in a child process (default) or inside the server process",
    )
    serve_api.add_argument(
        "--allow-remote",
        action="store_true",
        help="allow a non-loopback address without KTRDR_API_TOKEN (an open API)",
    )
    serve_host = serve.add_parser("host", help="the training host (token in KTRDR_HOST_TOKEN)")
    serve_host.add_argument("--host", default="127.0.0.1", help="bind address (default loopback)")
    serve_host.add_argument("--port", type=int, default=5002)
    serve_host.add_argument("--accelerator", default="auto", help="Lightning accelerator")
    serve_host.add_argument("--devices", default="1", help="device count, 'auto' or '0,1'")
    serve_host.add_argument("--strategy", default="auto", help="Lightning strategy (e.g. ddp)")
    serve_host.add_argument("--precision", default=None, help="Lightning precision (bf16-mixed)")
    serve_host.add_argument(
        "--insecure-no-token",
        action="store_true",
        help="run without KTRDR_HOST_TOKEN (loopback addresses only)",
    )

    models = sub.add_parser("models", help="saved models").add_subparsers(
        dest="action", required=True
    )
    models_list = models.add_parser("list", parents=[remote], help="saved models and versions")
    models_list.add_argument("--json", action="store_true")

    operations = sub.add_parser(
        "operations", help="training operations (local store, or --api)"
    ).add_subparsers(dest="action", required=True)
    ops_list = operations.add_parser("list", parents=[remote], help="operations, newest first")
    ops_list.add_argument(
        "--status", help="pending, running, completed, failed, cancelled (or cancelling, ...)"
    )
    ops_list.add_argument("--limit", type=int, default=20, help="at most N rows (default 20)")
    ops_list.add_argument("--json", action="store_true")
    ops_show = operations.add_parser("show", parents=[remote], help="one operation")
    ops_show.add_argument("operation_id")
    ops_show.add_argument("--json", action="store_true")
    ops_follow = operations.add_parser(
        "follow", parents=[remote], help="show an operation's progress until it ends"
    )
    ops_follow.add_argument("operation_id")
    ops_cancel = operations.add_parser("cancel", parents=[remote], help="stop an operation")
    ops_cancel.add_argument("operation_id")
    ops_cancel.add_argument(
        "--graceful", action="store_true", help="finish the epoch, evaluate and save first"
    )
    ops_cancel.add_argument("--reason", help="why (stored with the operation)")
    ops_cancel.add_argument(
        "--wait", action="store_true", help="wait until the operation has stopped"
    )
    return parser


class ProgressLine:
    """Renders ProgressSnapshots as text: a line per phase and per epoch, and on a terminal a
    live ``Epoch e/E · Batch b/B · loss · ETA`` line redrawn at most every ``interval``."""

    def __init__(self, stream: TextIO, interval: float = 0.25) -> None:
        self.stream = stream
        self.interval = interval
        self.tty = stream.isatty()
        self._last_draw = 0.0
        self._open_line = False
        self._phase: str | None = None
        self._epoch_shown = 0
        self._gpu_shown = False

    def _write(self, text: str, *, transient: bool = False) -> None:
        if self._open_line:
            self.stream.write("\r\x1b[2K")
            self._open_line = False
        self.stream.write(text if transient else text + "\n")
        self._open_line = transient
        self.stream.flush()

    def note(self, text: str) -> None:
        """A line of its own (e.g. a cancel notice)."""
        self._write(text)

    def show(self, snap: ProgressSnapshot) -> None:
        """Render one snapshot."""
        if snap.phase != self._phase and snap.phase not in ("queued",):
            self._phase = snap.phase
            if snap.phase != "train" or not snap.batch:
                self._write(f"[{snap.phase}] {snap.message}")
        res = snap.resources
        if res.gpu_name and not self._gpu_shown:
            self._gpu_shown = True
            allocated = "?" if res.gpu_memory_allocated_mb is None else res.gpu_memory_allocated_mb
            total = "?" if res.gpu_memory_total_mb is None else res.gpu_memory_total_mb
            self._write(f"[device] {res.gpu_name} · {allocated} / {total} MB")
        if snap.metrics_epoch > self._epoch_shown:
            self._epoch_shown = snap.metrics_epoch
            figures = " · ".join(
                f"{k} {v:.4f}"
                for k, v in snap.metrics.items()
                if v is not None and k != "train_loss_batch"
            )
            self._write(f"[train] Epoch {snap.metrics_epoch}/{snap.total_epochs} · {figures}")
        elif snap.phase == "train" and snap.batch and self.tty:
            now = time.monotonic()
            if now - self._last_draw >= self.interval:
                self._last_draw = now
                line = f"[train] {snap.message}"
                loss = snap.metrics.get("train_loss_batch")
                if loss is not None:
                    line += f" · loss {loss:.4f}"
                if snap.eta_s is not None:
                    line += f" · ETA {snap.eta_s:.0f}s"
                self._write(line, transient=True)


def _render_result(result: Any, stream: TextIO) -> None:
    data = msgspec.to_builtins(result)
    tm, test = data["training_metrics"], data.get("test_metrics") or {}
    info, summary, artifacts = data["session_info"], data["data_summary"], data["artifacts"]
    lines = [
        (
            f"strategy        {info['strategy']}  ({', '.join(info['symbols'])} "
            f"{', '.join(info['timeframes'])}, base {info['base_timeframe']})"
        ),
        f"operation       {info['operation_id']}  mode {info['mode']}",
        f"samples         {summary['samples']}  features {summary['feature_count']}",
        f"labels (train)  {summary['label_distribution'].get('train')}",
        (
            f"epochs          {tm['epochs_completed']} (best {tm['best_epoch']}, early stopped "
            f"{tm['early_stopped']}) in {tm['training_time_s']:.1f}s"
        ),
        f"final loss      train {tm['final_train_loss']:.4f}  val {tm['final_val_loss']:.4f}",
    ]
    if test:
        lines.append(
            f"test            accuracy {test['accuracy']:.3f}  f1 {test['f1']:.3f}  "
            f"loss {test['loss']:.4f}  majority-class baseline "
            f"{test['majority_baseline_accuracy']:.3f}"
        )
    if artifacts.get("model_id"):
        lines.append(f"model           {artifacts['model_id']}  {artifacts['model_path']}")
    if info.get("cancellation_reason"):
        lines.append(f"stopped early   {info['cancellation_reason']}")
    stream.write("\n".join(lines) + "\n")


def _quiet_lightning() -> None:
    """Keep the terminal for our progress: Lightning's banner lines and tips are noise here."""
    import logging
    import warnings

    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
    logging.getLogger("lightning.fabric").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=".*LeafSpec.*")


def _train(args: argparse.Namespace) -> int:
    url = _api_url(args)
    if url is not None:
        return _train_remote(args, url)
    from ktrdr_lib.operations.orchestrator import TrainingOrchestrator
    from ktrdr_lib.runners.local import LocalTrainingRunner

    _quiet_lightning()
    orchestrator = TrainingOrchestrator(
        data_dir=args.data_dir, runner=LocalTrainingRunner(save_model=not args.no_save)
    )
    try:
        op = orchestrator.start_training(
            args.strategy,
            symbols=args.symbols,
            timeframes=args.timeframes,
            start_date=args.start_date,
            end_date=args.end_date,
            epochs=args.epochs,
            seed=args.seed,
        )
        view = ProgressLine(sys.stderr)
        final = _follow(op, view)
    finally:
        orchestrator.shutdown(cancel_running=True)
    if final.status == "cancelled":
        sys.stderr.write(f"cancelled: {final.cancellation_reason}\n")
        return EXIT_CANCELLED
    if final.status != "completed":
        raise KtrdrError(final.error_message or f"training ended {final.status}")
    result = op.result()
    if args.json:
        sys.stdout.write(msgspec.json.encode(result).decode() + "\n")
    else:
        _render_result(result, sys.stdout)
    return EXIT_OK


def _pump(
    source: Iterable[Any],
    handle: Callable[[Any], None],
    *,
    on_interrupt: Callable[[int], bool],
) -> None:
    """Feed ``source`` to ``handle`` in a worker thread until it ends.

    The main thread, which receives Ctrl-C, only waits on an Event, so it never sits inside a
    lock or a join when the signal arrives. Each Ctrl-C calls ``on_interrupt(count)``; when it
    returns False the KeyboardInterrupt propagates. An error raised by the worker is re-raised
    here.
    """
    finished = threading.Event()
    failure: list[BaseException] = []

    def run() -> None:
        try:
            for item in source:
                handle(item)
        except BaseException as exc:  # handed to the main thread
            failure.append(exc)
        finally:
            finished.set()

    threading.Thread(target=run, name="ktrdr-cli-progress", daemon=True).start()
    interrupts = 0
    while not finished.is_set():
        try:
            finished.wait(0.2)
        except KeyboardInterrupt:
            interrupts += 1
            if not on_interrupt(interrupts):
                raise
    if failure:
        raise failure[0]


def _follow(op: Any, view: ProgressLine) -> Any:
    """Show the operation's progress until it is final; Ctrl-C cancels it and waits."""

    def interrupt(_count: int) -> bool:
        if op.status in ("pending", "running"):
            view.note("[cancel] Ctrl-C: stopping after the current batch…")
            with contextlib.suppress(KtrdrError):
                op.cancel(reason="interrupted by Ctrl-C")
        return True

    _pump(op.follow(), view.show, on_interrupt=interrupt)
    return op.wait()


# -- against a running API ---------------------------------------------------------------------


def _api_url(args: argparse.Namespace) -> str | None:
    """The API to drive: ``--api``, else KTRDR_API_URL unless ``--local``; None → local."""
    if getattr(args, "api", None):
        return str(args.api)
    if getattr(args, "local", False):
        return None
    return os.environ.get("KTRDR_API_URL") or None


def _client(url: str) -> ApiClient:
    try:
        from ktrdr_lib.http.client import ApiClient
    except ImportError as exc:
        raise ConfigError(
            f"--api / KTRDR_API_URL needs httpx ({exc}); install the api extra: "
            "pip install 'ktrdr_lib[api]'"
        ) from exc
    return ApiClient(url, token=os.environ.get("KTRDR_API_TOKEN") or None)


def _remote_strategy(client: ApiClient, name: str) -> dict[str, Any]:
    """The server's listing for strategy ``name`` (it resolves names, not paths)."""
    if "/" in name or "\\" in name or name.endswith((".yaml", ".yml")):
        raise ConfigError(
            f"with --api, STRATEGY must be a strategy name the server knows, not a file path "
            f"({name!r}); see `GET {client.base_url}/api/v1/strategies`, or train locally "
            "with --local"
        )
    listing = client.strategies()
    for item in listing:
        if item.get("name") == name:
            if not item.get("valid", True):
                problems = "; ".join(item.get("problems") or []) or "it does not load"
                raise ConfigError(f"strategy {name!r} on the server is invalid: {problems}")
            found: dict[str, Any] = item
            return found
    names = ", ".join(sorted(str(i.get("name")) for i in listing)) or "none"
    raise ConfigError(
        f"Strategy file not found: {name!r} is not a strategy of the server at "
        f"{client.base_url} (it has: {names}); put the file in the server's "
        "KTRDR_STRATEGIES_DIR or use one of those names"
    )


def _train_remote(args: argparse.Namespace, url: str) -> int:
    from ktrdr_lib.schemas.operations import FinalEvent

    for flag, given in (("--data-dir", args.data_dir), ("--no-save", args.no_save)):
        if given:
            raise ConfigError(
                f"{flag} applies to local runs only; the server uses its own data and saves "
                "every model (leave it out, or add --local)"
            )
    with _client(url) as client:
        symbols, timeframes = args.symbols, args.timeframes
        if not symbols or not timeframes:
            listing = _remote_strategy(client, args.strategy)
            symbols = symbols or listing.get("symbols") or []
            timeframes = timeframes or listing.get("timeframes") or []
        overrides = {"epochs": args.epochs} if args.epochs is not None else None
        started = client.start_training(
            args.strategy,
            symbols=symbols,
            timeframes=timeframes,
            start_date=args.start_date,
            end_date=args.end_date,
            overrides=overrides,
            seed=args.seed,
        )
        op_id = str(started["task_id"])
        view = ProgressLine(sys.stderr)
        view.note(f"[api] {op_id} started on {client.base_url}")
        finals: list[FinalEvent] = []

        def handle(event: Any) -> None:
            if isinstance(event, FinalEvent):
                finals.append(event)
            else:
                view.show(event)

        def interrupt(count: int) -> bool:
            if count > 1:
                view.note(f"[cancel] not waiting; the server is stopping {op_id}")
                return False
            view.note(f"[cancel] Ctrl-C: cancelling {op_id} on the server…")
            try:
                client.cancel(op_id, reason="interrupted by Ctrl-C")
            except StateConflictError:
                pass  # it ended meanwhile; the stream brings its final status
            except KtrdrError as exc:
                view.note(f"[cancel] could not cancel: {_one_line(exc.detail)}")
                return False
            return True

        _pump(client.events(op_id), handle, on_interrupt=interrupt)
        if finals:
            final = finals[0]
            status, error, reason = final.status, final.error_message, final.cancellation_reason
        else:  # the stream ended without a final event: ask for the status
            info = client.wait(op_id, timeout=30.0)
            status = str(info.get("status_detail") or info["status"])
            error, reason = info.get("error_message"), info.get("cancellation_reason")
        if status == "cancelled":
            sys.stderr.write(f"cancelled: {reason or 'cancelled on the server'}\n")
            return EXIT_CANCELLED
        if status != "completed":
            raise KtrdrError(f"operation {op_id} {status}: {error or 'no reason given'}")
        performance = client.performance(op_id)
        if args.json:
            sys.stdout.write(msgspec.json.encode(performance).decode() + "\n")
        else:
            _render_performance(performance, client.get_operation(op_id), sys.stdout)
    return EXIT_OK


def _fmt(value: Any, spec: str) -> str:
    return "?" if value is None else format(value, spec)


def _render_performance(perf: dict[str, Any], info: dict[str, Any], stream: TextIO) -> None:
    """The local run's summary, from what the API reports (``/performance`` + the operation)."""
    tm, test, model = perf["training_metrics"], perf.get("test_metrics") or {}, perf["model_info"]
    meta = info.get("metadata") or {}
    params = meta.get("parameters") or {}
    seconds = tm.get("training_time_minutes")
    lines = [
        (
            f"strategy        {params.get('strategy_name', '?')}  "
            f"({', '.join(params.get('symbols') or [])} "
            f"{', '.join(params.get('timeframes') or [])}, "
            f"base {params.get('base_timeframe', '?')})"
        ),
        f"operation       {perf['task_id']}  mode {meta.get('mode', '?')}",
        (
            f"epochs          {tm.get('epochs_completed')} (best {tm.get('best_epoch')}, early "
            f"stopped {tm.get('early_stopped')}) in "
            f"{_fmt(None if seconds is None else seconds * 60.0, '.1f')}s"
        ),
        (
            f"final loss      train {_fmt(tm.get('final_train_loss'), '.4f')}  "
            f"val {_fmt(tm.get('final_val_loss'), '.4f')}"
        ),
    ]
    if test:
        lines.append(
            f"test            accuracy {_fmt(test.get('test_accuracy'), '.3f')}  "
            f"f1 {_fmt(test.get('f1_score'), '.3f')}  loss {_fmt(test.get('test_loss'), '.4f')}"
            f"  majority-class baseline {_fmt(test.get('majority_baseline_accuracy'), '.3f')}"
        )
    if model.get("model_id"):
        lines.append(f"model           {model['model_id']}  {model.get('model_path', '')}")
    stream.write("\n".join(lines) + "\n")


# -- operations ----------------------------------------------------------------------------------


def _local_orchestrator() -> Any:
    from ktrdr_lib.operations.orchestrator import TrainingOrchestrator

    return TrainingOrchestrator()


def _duration(start: str | None, end: str | None) -> float | None:
    from datetime import UTC, datetime

    if not start:
        return None
    begin = datetime.fromisoformat(start.replace("Z", "+00:00"))
    finish = datetime.fromisoformat(end.replace("Z", "+00:00")) if end else datetime.now(UTC)
    return round((finish - begin).total_seconds(), 3)


def _local_row(record: OperationSnapshot) -> dict[str, Any]:
    """A local record in the API's list-row shape, so both print alike."""
    return {
        "operation_id": record.operation_id,
        "operation_type": record.operation_type,
        "status": record.status,
        "status_detail": record.status,
        "created_at": record.created_at,
        "progress_percentage": record.progress.percentage,
        "current_step": record.progress.message,
        "symbol": str(record.metadata.get("symbol", "")),
        "duration_seconds": _duration(record.started_at, record.finished_at),
    }


def _operations_list(args: argparse.Namespace) -> int:
    if args.limit < 1:
        raise ConfigError(f"--limit must be >= 1, got {args.limit}")
    url = _api_url(args)
    if url is not None:
        with _client(url) as client:
            page = client.list_operations(status=args.status, limit=args.limit)
        rows: list[dict[str, Any]] = page["data"]
        total = int(page["total_count"])
    else:
        orchestrator = _local_orchestrator()
        try:
            status = args.status
            if status is not None:
                status = {"running": ["running", "cancelling"]}.get(status, [status])
            local = orchestrator.list_operations(status=status, limit=args.limit)
        finally:
            orchestrator.shutdown()
        rows, total = [_local_row(r) for r in local.items], local.total_count
    if args.json:
        sys.stdout.write(msgspec.json.encode(rows).decode() + "\n")
        return EXIT_OK
    if not rows:
        sys.stdout.write("no operations\n")
    for row in rows:
        status = row.get("status_detail") or row["status"]
        sys.stdout.write(
            f"{row['operation_id']:44} {status:11} {row['progress_percentage']:6.1f}%  "
            f"{row['created_at']:28} {row.get('current_step') or ''}\n"
        )
    if total > len(rows):
        sys.stdout.write(f"({len(rows)} of {total}; --limit shows more)\n")
    return EXIT_OK


def _show_block(view: dict[str, Any]) -> str:
    params = view.get("parameters") or {}
    metrics = view.get("metrics") or {}
    lines = [
        f"operation   {view['operation_id']}  ({view['operation_type']}, mode {view['mode']})",
        f"status      {view['status']}",
        (
            f"strategy    {params.get('strategy_name', '?')}  "
            f"{','.join(params.get('symbols') or [])} {','.join(params.get('timeframes') or [])}"
            f"  epochs {params.get('epochs', '?')}"
        ),
        f"created     {view['created_at']}",
        f"started     {view.get('started_at') or '-'}",
        f"finished    {view.get('finished_at') or '-'}",
        f"progress    {view['percentage']:.1f}%  {view.get('message') or ''}",
    ]
    if view.get("metrics_epoch"):
        figures = " · ".join(
            f"{k} {v:.4f}" for k, v in metrics.items() if v is not None and k != "train_loss_batch"
        )
        lines.append(f"epoch {view['metrics_epoch']:<5} {figures}")
    if view.get("error_message"):
        lines.append(f"error       {_one_line(str(view['error_message']))}")
    if view.get("cancellation_reason"):
        lines.append(f"cancelled   {view['cancellation_reason']}")
    summary = view.get("result") or {}
    if summary:
        lines.append(
            f"result      test accuracy {_fmt(summary.get('test_accuracy'), '.3f')}  "
            f"model {summary.get('model_id') or '-'}"
        )
    return "\n".join(lines) + "\n"


def _operations_show(args: argparse.Namespace) -> int:
    url = _api_url(args)
    if url is not None:
        with _client(url) as client:
            info = client.get_operation(args.operation_id)
        if args.json:
            sys.stdout.write(msgspec.json.encode(info).decode() + "\n")
            return EXIT_OK
        progress = info.get("progress") or {}
        context = progress.get("context") or {}
        view = {
            "operation_id": info["operation_id"],
            "operation_type": info["operation_type"],
            "mode": (info.get("metadata") or {}).get("mode", "?"),
            "status": info.get("status_detail") or info["status"],
            "parameters": (info.get("metadata") or {}).get("parameters"),
            "created_at": info["created_at"],
            "started_at": info.get("started_at"),
            "finished_at": info.get("completed_at"),
            "percentage": float(progress.get("percentage") or 0.0),
            "message": progress.get("current_step"),
            "metrics": context.get("metrics"),
            "metrics_epoch": context.get("metrics_epoch"),
            "error_message": info.get("error_message"),
            "cancellation_reason": info.get("cancellation_reason"),
            "result": info.get("result_summary"),
        }
    else:
        orchestrator = _local_orchestrator()
        try:
            record: OperationSnapshot = orchestrator.get_operation(args.operation_id)
        finally:
            orchestrator.shutdown()
        if args.json:
            sys.stdout.write(msgspec.json.encode(record).decode() + "\n")
            return EXIT_OK
        result = record.result
        view = {
            "operation_id": record.operation_id,
            "operation_type": record.operation_type,
            "mode": record.mode,
            "status": record.status,
            "parameters": record.metadata.get("parameters"),
            "created_at": record.created_at,
            "started_at": record.started_at,
            "finished_at": record.finished_at,
            "percentage": record.progress.percentage,
            "message": record.progress.message,
            "metrics": record.progress.metrics,
            "metrics_epoch": record.progress.metrics_epoch,
            "error_message": record.error_message,
            "cancellation_reason": record.cancellation_reason,
            "result": {
                "test_accuracy": result.test_metrics.accuracy if result.test_metrics else None,
                "model_id": result.artifacts.model_id,
            }
            if result is not None
            else None,
        }
    sys.stdout.write(_show_block(view))
    return EXIT_OK


def _end_of_follow(op_id: str, status: str, error: str | None, reason: str | None) -> int:
    if status == "completed":
        sys.stderr.write(f"{op_id} completed\n")
        return EXIT_OK
    if status == "cancelled":
        sys.stderr.write(f"cancelled: {reason or 'cancelled'}\n")
        return EXIT_ERROR
    raise KtrdrError(f"operation {op_id} {status}: {error or 'no reason given'}")


def _stop_following(_count: int) -> bool:
    return False


def _operations_follow(args: argparse.Namespace) -> int:
    """Progress until the operation ends; Ctrl-C stops watching and leaves it running."""
    from ktrdr_lib.schemas.progress import ProgressSnapshot

    op_id = args.operation_id
    view = ProgressLine(sys.stderr)
    url = _api_url(args)
    try:
        if url is not None:
            from ktrdr_lib.schemas.operations import FinalEvent

            with _client(url) as client:
                finals: list[FinalEvent] = []

                def handle(event: Any) -> None:
                    if isinstance(event, ProgressSnapshot):
                        view.show(event)
                    else:
                        finals.append(event)

                _pump(client.events(op_id), handle, on_interrupt=_stop_following)
                if finals:
                    final = finals[0]
                    return _end_of_follow(
                        op_id, final.status, final.error_message, final.cancellation_reason
                    )
                info = client.get_operation(op_id)
                return _end_of_follow(
                    op_id,
                    str(info.get("status_detail") or info["status"]),
                    info.get("error_message"),
                    info.get("cancellation_reason"),
                )
        orchestrator = _local_orchestrator()
        try:
            _pump(orchestrator.follow(op_id), view.show, on_interrupt=_stop_following)
            record = orchestrator.get_operation(op_id)
        finally:
            orchestrator.shutdown()
        return _end_of_follow(
            op_id, record.status, record.error_message, record.cancellation_reason
        )
    except KeyboardInterrupt:
        view.note(
            f"stopped following; {op_id} keeps running (`ktrdr operations cancel {op_id}` stops it)"
        )
        return EXIT_CANCELLED


def _operations_cancel(args: argparse.Namespace) -> int:
    op_id = args.operation_id
    url = _api_url(args)
    if url is not None:
        with _client(url) as client:
            data = client.cancel(op_id, graceful=args.graceful, reason=args.reason)
            status, reason = str(data["status"]), data.get("cancellation_reason")
            if args.wait and status != "cancelled":
                info = client.wait(op_id)
                status = str(info.get("status_detail") or info["status"])
                reason = info.get("cancellation_reason") or reason
    else:
        orchestrator = _local_orchestrator()
        try:
            record = orchestrator.cancel(op_id, graceful=args.graceful, reason=args.reason)
            if args.wait:
                record = orchestrator.wait(op_id)
            status, reason = record.status, record.cancellation_reason
        finally:
            orchestrator.shutdown()
    sys.stdout.write(f"{op_id}: {status} ({reason or 'cancel requested'})\n")
    return EXIT_OK


def _strategies_validate(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ktrdr_lib.strategy.loader import check_strategy_text

    bad = 0
    for name in args.files:
        path = Path(name)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            sys.stdout.write(f"{name}: cannot read: {exc.strerror or exc}\n")
            bad += 1
            continue
        problems = check_strategy_text(text, file=str(path))
        if problems:
            bad += 1
            for problem in problems:
                sys.stdout.write(problem.render() + "\n")
        else:
            sys.stdout.write(f"{name}: OK\n")
    return EXIT_ERROR if bad else EXIT_OK


def _strategies_list(_: argparse.Namespace) -> int:
    from ktrdr_lib.strategy.discovery import list_strategies

    for item in list_strategies():
        state = "ok" if item.valid else f"INVALID ({len(item.problems)} problems)"
        where = f"{','.join(item.symbols)} {','.join(item.timeframes)}".strip()
        sys.stdout.write(f"{item.name:32} {where:24} {state:10} {item.path}\n")
    return EXIT_OK


def _models_list(args: argparse.Namespace) -> int:
    url = _api_url(args)
    if url is not None:
        return _models_list_remote(args, url)
    from ktrdr_lib.models.store import list_models

    models = list_models()
    if args.json:
        sys.stdout.write(msgspec.json.encode(models).decode() + "\n")
        return EXIT_OK
    if not models:
        sys.stdout.write("no saved models (train one with `ktrdr train STRATEGY`)\n")
    for m in models:
        test_acc = "" if m.test_accuracy is None else f"test acc {m.test_accuracy:.3f}"
        sys.stdout.write(f"{m.model_id:40} {m.created_at:28} {test_acc}\n")
    return EXIT_OK


def _models_list_remote(args: argparse.Namespace, url: str) -> int:
    with _client(url) as client:
        models: list[dict[str, Any]] = client.list_models()
    if args.json:
        sys.stdout.write(msgspec.json.encode(models).decode() + "\n")
        return EXIT_OK
    if not models:
        sys.stdout.write(f"no saved models on {url}\n")
    for m in models:
        acc = m.get("test_accuracy")
        test_acc = "" if acc is None else f"test acc {acc:.3f}"
        sys.stdout.write(f"{m['model_id']:40} {m.get('created_at') or '':28} {test_acc}\n")
    return EXIT_OK


def _serve_api(args: argparse.Namespace) -> int:
    from api.server import serve

    serve(args.host, args.port, allow_remote=args.allow_remote, local_runner=args.local_runner)
    return EXIT_OK


def _serve_host(args: argparse.Namespace) -> int:
    from host.server import serve

    serve(
        args.host,
        args.port,
        accelerator=args.accelerator,
        devices=args.devices,
        strategy=args.strategy,
        precision=args.precision,
        insecure_no_token=args.insecure_no_token,
    )
    return EXIT_OK


def _one_line(detail: str) -> str:
    parts = [line.strip() for line in detail.splitlines() if line.strip()]
    text = ""
    for part in parts:
        text += part if not text else (" " if text.endswith(":") else "; ") + part
    return text


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status."""
    args = _parser().parse_args(argv)
    handlers = {
        ("train", None): _train,
        ("strategies", "validate"): _strategies_validate,
        ("strategies", "list"): _strategies_list,
        ("models", "list"): _models_list,
        ("serve", "api"): _serve_api,
        ("serve", "host"): _serve_host,
        ("operations", "list"): _operations_list,
        ("operations", "show"): _operations_show,
        ("operations", "follow"): _operations_follow,
        ("operations", "cancel"): _operations_cancel,
    }
    handler = handlers[(args.command, getattr(args, "action", None))]
    try:
        return handler(args)
    except KtrdrError as exc:
        sys.stderr.write("error: " + _one_line(exc.detail) + "\n")
        return EXIT_ERROR
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        return EXIT_CANCELLED


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
