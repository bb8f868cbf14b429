"""The ``ktrdr`` command line.

``ktrdr train STRATEGY`` trains in-process with progress on stderr and the result on stdout;
``ktrdr strategies validate|list`` and ``ktrdr models list`` inspect what is there. Errors end
with a one-line message and a non-zero exit status; Ctrl-C stops a training cleanly.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import threading
import time
from collections.abc import Sequence
from typing import Any, TextIO

import msgspec

from ktrdr_lib.errors import KtrdrError

__all__ = ["main"]

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_CANCELLED = 0, 1, 2, 130


def _csv(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ktrdr", description="Train KTRDR strategy models.")
    sub = parser.add_subparsers(dest="command", required=True)

    train = sub.add_parser("train", help="train a strategy in this process")
    train.add_argument("strategy", help="strategy name (see `ktrdr strategies list`) or YAML path")
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

    models = sub.add_parser("models", help="saved models").add_subparsers(
        dest="action", required=True
    )
    models_list = models.add_parser("list", help="saved models and versions")
    models_list.add_argument("--json", action="store_true")
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

    def show(self, snap: Any) -> None:
        """Render one snapshot."""
        if snap.phase != self._phase and snap.phase not in ("queued",):
            self._phase = snap.phase
            if snap.phase != "train" or not snap.batch:
                self._write(f"[{snap.phase}] {snap.message}")
        resources = snap.resources or {}
        if resources.get("gpu_name") and not self._gpu_shown:
            self._gpu_shown = True
            self._write(
                f"[device] {resources['gpu_name']} · "
                f"{resources.get('gpu_memory_allocated_mb', '?')} / "
                f"{resources.get('gpu_memory_total_mb', '?')} MB"
            )
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
    from ktrdr_lib.orchestrator import TrainingOrchestrator
    from ktrdr_lib.runners import LocalTrainingRunner

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


def _follow(op: Any, view: ProgressLine) -> Any:
    """Show the operation's progress until it is final; Ctrl-C cancels it and waits.

    The snapshots are read in a worker thread so that the main thread, which receives
    Ctrl-C, never sits inside a lock or a join when it arrives.
    """
    finished = threading.Event()

    def pump() -> None:
        try:
            for snap in op.follow():
                view.show(snap)
        finally:
            finished.set()

    threading.Thread(target=pump, name="ktrdr-cli-progress", daemon=True).start()
    while not finished.is_set():
        try:
            finished.wait(0.2)
        except KeyboardInterrupt:
            if op.status in ("pending", "running"):
                view.note("[cancel] Ctrl-C: stopping after the current batch…")
                with contextlib.suppress(KtrdrError):
                    op.cancel(reason="interrupted by Ctrl-C")
    return op.wait()


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
