"""The ``ktrdr`` command line.

``ktrdr train STRATEGY`` trains in-process with progress on stderr and the result on stdout;
``ktrdr strategies validate|list`` and ``ktrdr models list`` inspect what is there. Errors end
with a one-line message and a non-zero exit status; Ctrl-C stops a training cleanly.
"""

from __future__ import annotations

import argparse
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


class _TerminalProgress:
    """Phase lines and a throttled epoch/batch line on a text stream."""

    def __init__(self, stream: TextIO, interval: float = 0.5) -> None:
        self.stream = stream
        self.interval = interval
        self.tty = stream.isatty()
        self._last = 0.0
        self._open_line = False

    def _write(self, text: str, *, transient: bool = False) -> None:
        if self._open_line:
            self.stream.write("\r\x1b[2K" if self.tty else "\n")
            self._open_line = False
        self.stream.write(text if transient else text + "\n")
        self._open_line = transient
        self.stream.flush()

    def on_phase(self, phase: str, message: str) -> None:
        self._write(f"[{phase}] {message}")

    def batch(self, line: str) -> None:
        now = time.monotonic()
        if self.tty and now - self._last >= self.interval:
            self._last = now
            self._write(line, transient=True)

    def epoch(self, line: str) -> None:
        self._write(line)


def _progress_callback(view: _TerminalProgress) -> Any:
    import lightning.pytorch as pl

    class TerminalProgressCallback(pl.Callback):
        def __init__(self) -> None:
            self.started = time.monotonic()
            self.epoch_started = self.started

        def on_train_epoch_start(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
            self.epoch_started = time.monotonic()

        def on_train_batch_end(
            self, trainer: pl.Trainer, module: pl.LightningModule, *args: Any
        ) -> None:
            total = int(trainer.num_training_batches)
            batch = int(args[-1]) + 1
            loss = getattr(module, "last_batch_loss", None)
            text = f"[train] Epoch {trainer.current_epoch + 1}/{trainer.max_epochs} · "
            text += f"Batch {batch}/{total}"
            if loss is not None:
                text += f" · loss {loss:.4f}"
            view.batch(text)

        def on_validation_end(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
            if trainer.sanity_checking:
                return
            metrics = getattr(module, "epoch_metrics", {}) or {}
            shown = " · ".join(f"{k} {v:.4f}" for k, v in metrics.items() if isinstance(v, float))
            seconds = time.monotonic() - self.epoch_started
            view.epoch(
                f"[train] Epoch {trainer.current_epoch + 1}/{trainer.max_epochs} · "
                f"{shown} · {seconds:.2f}s"
            )

    return TerminalProgressCallback()


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
    from ktrdr_lib.cancellation import CancelToken
    from ktrdr_lib.context import build_training_context
    from ktrdr_lib.errors import OperationCancelled
    from ktrdr_lib.pipeline import run_training_pipeline

    context = build_training_context(
        args.strategy,
        symbols=args.symbols,
        timeframes=args.timeframes,
        start_date=args.start_date,
        end_date=args.end_date,
        epochs=args.epochs,
        seed=args.seed,
        data_dir=args.data_dir,
    )
    _quiet_lightning()
    view = _TerminalProgress(sys.stderr)
    token = CancelToken()
    outcome: dict[str, Any] = {}

    finished = threading.Event()

    def work() -> None:
        try:
            outcome["result"] = run_training_pipeline(
                context,
                observer=view,
                token=token,
                callbacks=[_progress_callback(view)],
                save_model=not args.no_save,
            )
        except BaseException as exc:  # handed to the main thread, which reports it
            outcome["error"] = exc
        finally:
            finished.set()

    worker = threading.Thread(target=work, name=f"train-{context.operation_id}", daemon=True)
    worker.start()
    # Wait on an Event, not Thread.join: a KeyboardInterrupt that lands inside join() can
    # leave the thread looking finished while it still runs.
    while not finished.is_set():
        try:
            finished.wait(0.2)
        except KeyboardInterrupt:
            if not token.is_set:
                view.epoch("[cancel] Ctrl-C: stopping after the current batch…")
            token.cancel(reason="interrupted by Ctrl-C")
    worker.join()
    error = outcome.get("error")
    if isinstance(error, OperationCancelled):
        sys.stderr.write(f"cancelled: {error.detail}\n")
        return EXIT_CANCELLED
    if error is not None:
        raise error
    result = outcome["result"]
    if args.json:
        sys.stdout.write(msgspec.json.encode(result).decode() + "\n")
    else:
        _render_result(result, sys.stdout)
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
