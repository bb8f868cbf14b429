"""Every ``ktrdr`` command, written once over a :class:`~ktrdr_lib.cli.backend.Backend`.

A command takes the parsed arguments and a backend, prints results on stdout and progress
and notices on stderr, and returns the exit status; errors are raised as
:class:`~ktrdr_lib.errors.KtrdrError` for :func:`ktrdr_lib.cli.main` to print as one line.

Exit statuses: 0 success; 1 an error, an invalid strategy file, a failed sweep, or a followed
run that did not complete; 130 a training or sweep that ended cancelled (Ctrl-C, say).

Example:
    >>> from ktrdr_lib.cli.local import LocalBackend
    >>> args = build_parser().parse_args(["models", "list"])      # doctest: +SKIP
    >>> models_list(args, LocalBackend())                        # doctest: +SKIP
    no saved models (train one with `ktrdr train STRATEGY`)
    0
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec

from ktrdr_lib.cli.parser import parse_space
from ktrdr_lib.cli.render import (
    ProgressLine,
    SweepTable,
    analytics_text,
    feature_report_lines,
    model_row,
    one_line,
    operation_row,
    operation_text,
    strategy_row,
    summary_text,
    sweep_ranking_text,
)
from ktrdr_lib.cli.watch import stop_waiting, watch
from ktrdr_lib.errors import ConfigError, KtrdrError, StateConflictError
from ktrdr_lib.schemas.operations import FinalEvent
from ktrdr_lib.schemas.requests import TrainingRequest
from ktrdr_lib.schemas.sweeps import SweepRequest
from ktrdr_lib.settings import read_str

if TYPE_CHECKING:
    from ktrdr_lib.cli.backend import Backend, StreamEvent
    from ktrdr_lib.schemas.status import TrainingMode

__all__ = [
    "COMMANDS",
    "EXIT_CANCELLED",
    "EXIT_ERROR",
    "EXIT_OK",
    "Command",
    "follow_operation",
    "models_list",
    "operations_cancel",
    "operations_follow",
    "operations_list",
    "operations_prune",
    "operations_resume",
    "operations_show",
    "strategies_list",
    "strategies_migrate",
    "strategies_validate",
    "sweep",
    "train",
]

EXIT_OK, EXIT_ERROR, EXIT_CANCELLED = 0, 1, 130

Command = Callable[[argparse.Namespace, "Backend"], int]


def _print(text: str) -> None:
    sys.stdout.write(text)


def _print_json(document: object) -> None:
    sys.stdout.write(msgspec.json.encode(document).decode() + "\n")


def follow_operation(
    backend: Backend,
    operation_id: str,
    view: ProgressLine,
    *,
    on_interrupt: Callable[[int], bool] = stop_waiting,
) -> FinalEvent:
    """Show the operation's progress until it ends; returns how it ended.

    Args:
        backend: where the operation lives.
        operation_id: the operation.
        view: where its snapshots are drawn.
        on_interrupt: what Ctrl-C does (see :func:`~ktrdr_lib.cli.watch.watch`).
    """
    finals: list[FinalEvent] = []

    def handle(event: StreamEvent) -> None:
        if isinstance(event, FinalEvent):
            finals.append(event)
        else:
            view.show(event)

    watch(backend.events(operation_id), handle, on_interrupt=on_interrupt)
    if finals:
        return finals[0]
    record = backend.wait(operation_id, timeout=30.0)  # the stream ended without its end
    return FinalEvent(
        operation_id=operation_id,
        status=record.status,
        error_message=record.error_message,
        cancellation_reason=record.cancellation_reason,
        sequence=record.progress.sequence,
    )


def _failure(final: FinalEvent) -> KtrdrError:
    reason = final.error_message or "no reason given"
    return KtrdrError(f"operation {final.operation_id} {final.status}: {reason}")


# -- train ---------------------------------------------------------------------------------------


def train(args: argparse.Namespace, backend: Backend) -> int:
    """``ktrdr train``: start (or ``--resume`` a stopped run), show progress until the end,
    print the result.

    Ctrl-C asks the run to stop and waits for it (a second Ctrl-C stops waiting for a run on
    an API; one in this process is stopped by the backend on the way out).
    """
    if args.resume is not None:
        if args.strategy is not None:
            raise ConfigError(
                f"give either a STRATEGY to train or --resume {args.resume}, not both: a "
                "resumed run trains the strategy it started with"
            )
        given = [flag for flag, value in _where_flags(args) if value is not None]
        if given:
            raise ConfigError(
                f"{' and '.join(given)}: a resumed run trains where it started, with what it "
                f"reserved; leave {' and '.join(given)} out with --resume"
            )
        _refuse_run_flags_on_resume(args)
        if args.placebo is not None:
            raise ConfigError(
                "--placebo: a resumed run trains the placebos its start asked for; leave "
                "--placebo out with --resume"
            )
        return _run_to_end(args, backend, backend.resume(args.resume))
    if args.strategy is None:
        raise ConfigError("give a STRATEGY to train (or --resume OPERATION_ID)")
    mode: TrainingMode = args.mode or "local"
    _check_mode_flags(args, mode, backend)
    request = TrainingRequest(
        symbols=args.symbols,
        timeframes=args.timeframes,
        start_date=args.start_date,
        end_date=args.end_date,
        epochs=args.epochs,
        **({} if args.seed is None else {"seed": args.seed}),
        detailed_analytics=args.analytics,
        loggers=args.logger,
        num_cpus=args.num_cpus,
        num_gpus=args.num_gpus,
        placebo_runs=0 if args.placebo is None else args.placebo,
    )
    return _run_to_end(args, backend, backend.start_training(args.strategy, request, mode=mode))


def _refuse_run_flags_on_resume(args: argparse.Namespace) -> None:
    """A resumed run continues exactly as it started (its checkpoint is checked against the
    strategy, data and request it started with), so flags that would shape a run are refused
    rather than silently ignored."""
    given = [
        flag
        for flag, value in (
            ("--symbols", args.symbols),
            ("--timeframes", args.timeframes),
            ("--start-date", args.start_date),
            ("--end-date", args.end_date),
            ("--epochs", args.epochs),
            ("--seed", args.seed),
            ("--data-dir", args.data_dir),
            ("--analytics", args.analytics or None),
            ("--logger", args.logger),
        )
        if value is not None
    ]
    if given:
        names = " and ".join(given)
        raise ConfigError(
            f"{names}: a resumed run continues with the symbols, dates, epochs, seed, data and "
            "loggers it started with (its checkpoint is checked against them, so it ends where "
            f"the uninterrupted run would); leave {names} out with --resume, or start a new "
            "run with them"
        )


def _where_flags(args: argparse.Namespace) -> list[tuple[str, object]]:
    return [("--mode", args.mode), ("--num-cpus", args.num_cpus), ("--num-gpus", args.num_gpus)]


def _check_mode_flags(args: argparse.Namespace, mode: str, backend: Backend) -> None:
    """Refuse the flags the chosen mode would not use, and ray mode without a cluster."""
    if mode != "ray":
        given = [
            flag
            for flag, value in (
                ("--num-cpus", args.num_cpus),
                ("--num-gpus", args.num_gpus),
                ("--ray-address", args.ray_address),
            )
            if value is not None
        ]
        if given:
            names = " and ".join(given)
            raise ConfigError(
                f"{names}: for --mode ray only (this run trains {mode}); add --mode ray or "
                f"leave {names} out"
            )
    if mode == "host" and args.no_save:
        raise ConfigError(
            "--no-save applies to local and ray runs; a training host saves every model "
            "(leave it out, or use --mode local)"
        )
    if mode == "host" and args.placebo:
        raise ConfigError(
            "--placebo applies to local and ray runs: placebos train where the orchestrator "
            "runs, not on a training host (leave it out, or use --mode local)"
        )
    if backend.location is None:
        _check_ray_address(args, "--mode ray" if mode == "ray" else None)


def _check_ray_address(args: argparse.Namespace, needed_by: str | None) -> None:
    """In this process, ``needed_by`` (a flag or command) needs a Ray cluster to train on."""
    if needed_by is None or args.ray_address or read_str("KTRDR_RAY_ADDRESS"):
        return
    raise ConfigError(
        f"{needed_by} trains on Ray and no cluster is given: add --ray-address ADDRESS "
        "(ray://head:10001, head:6379, or 'local' for a Ray in this process) or set "
        "KTRDR_RAY_ADDRESS"
    )


def operations_prune(args: argparse.Namespace, backend: Backend) -> int:
    """``ktrdr operations prune``: forget finished operations past the retention policy, then
    remove the checkpoints of completed runs past their keep time and of operations no longer
    stored; print what went and what is left."""
    if args.keep_days is not None and args.keep_days < 0:
        raise ConfigError(f"--keep-days must be >= 0, got {args.keep_days}")
    if args.operations_days is not None and args.operations_days < 0:
        raise ConfigError(f"--operations-days must be >= 0, got {args.operations_days}")
    if args.keep_operations is not None and args.keep_operations < 0:
        raise ConfigError(f"--keep-operations must be >= 0, got {args.keep_operations}")
    forgotten = backend.forget_finished(
        keep_days=args.operations_days, keep_count=args.keep_operations
    )
    for op_id in forgotten:
        _print(f"forgot {op_id}\n")
    _print(f"{len(forgotten)} finished operation(s) forgotten\n")
    removed, left = backend.prune_checkpoints(keep_days=args.keep_days)
    for op_id in removed:
        _print(f"removed checkpoints of {op_id}\n")
    _print(f"{len(removed)} removed; checkpoints now use {left:,} bytes\n")
    return EXIT_OK


def operations_resume(args: argparse.Namespace, backend: Backend) -> int:
    """``ktrdr operations resume``: continue a stopped run from its last checkpoint (as a new,
    linked operation), show its progress, print the result."""
    return _run_to_end(args, backend, backend.resume(args.operation_id))


def _run_to_end(args: argparse.Namespace, backend: Backend, op_id: str) -> int:
    """Follow a started run to its end; print its summary (``--json``: its document)."""
    view = ProgressLine(sys.stderr)
    where = backend.location
    if where is not None:
        view.note(f"[api] {op_id} started on {where}")

    def interrupt(count: int) -> bool:
        if count > 1:
            if where is None:
                return True  # this process stops it within a batch: keep waiting
            view.note(f"[cancel] not waiting; the server is stopping {op_id}")
            return False
        if where is None:
            view.note("[cancel] Ctrl-C: stopping after the current batch…")
        else:
            view.note(f"[cancel] Ctrl-C: cancelling {op_id} on the server…")
        try:
            backend.cancel(op_id, reason="interrupted by Ctrl-C")
        except StateConflictError:
            pass  # it ended meanwhile; the stream brings its final status
        except KtrdrError as exc:
            view.note(f"[cancel] could not cancel: {one_line(exc.detail)}")
            return False
        return True

    final = follow_operation(backend, op_id, view, on_interrupt=interrupt)
    if final.status == "cancelled":
        sys.stderr.write(f"cancelled: {final.cancellation_reason or 'cancelled'}\n")
        return EXIT_CANCELLED
    if final.status != "completed":
        raise _failure(final)
    if args.json:
        _print_json(backend.result_document(op_id))
    else:
        _print(summary_text(backend.get_operation(op_id)))
    return EXIT_OK


# -- sweep ---------------------------------------------------------------------------------------


def _sweep_request(args: argparse.Namespace) -> SweepRequest:
    """The parsed ``ktrdr sweep`` arguments as the sweep's request (flags checked)."""
    if args.early_stop is None:
        given = [
            flag
            for flag, value in (
                ("--grace-period", args.grace_period),
                ("--reduction-factor", args.reduction_factor),
            )
            if value is not None
        ]
        if given:
            names = " and ".join(given)
            raise ConfigError(
                f"{names}: these tune early stopping, which is off; add --early-stop asha or "
                f"leave {names} out"
            )
    return SweepRequest(
        strategy=args.strategy,
        space=parse_space(args.space),
        metric=args.metric,
        mode=args.direction,
        search=args.search,
        num_samples=args.samples,
        max_concurrent=args.max_concurrent,
        early_stop=args.early_stop,
        grace_period=1 if args.grace_period is None else args.grace_period,
        reduction_factor=2.0 if args.reduction_factor is None else args.reduction_factor,
        best_model_name=args.best_model_name,
        symbols=args.symbols,
        timeframes=args.timeframes,
        start_date=args.start_date,
        end_date=args.end_date,
        epochs=args.epochs,
        seed=args.seed,
        num_cpus=args.num_cpus,
        num_gpus=args.num_gpus,
    )


def sweep(args: argparse.Namespace, backend: Backend) -> int:
    """``ktrdr sweep``: start a sweep on Ray, show its trials live until it ends, print the
    ranking and the best model.

    Ctrl-C cancels every trial and waits for the sweep to end (a second Ctrl-C stops waiting
    for a sweep on an API; one from this process is stopped by the backend on the way out).
    The exit status is 0 when the sweep completed, 130 when it was cancelled, 1 when it failed.
    """
    request = _sweep_request(args)
    where = backend.location
    if where is None:
        _check_ray_address(args, "ktrdr sweep")
    sweep_id = backend.start_sweep(request)
    table = SweepTable(sys.stderr)
    table.note(f"[sweep] {sweep_id} started" + (f" on {where}" if where else ""))

    def interrupt(count: int) -> bool:
        if count > 1:
            if where is None:
                return True  # every trial stops within a batch: keep waiting
            table.note(f"[cancel] not waiting; the server is stopping {sweep_id}")
            return False
        table.note(f"[cancel] Ctrl-C: cancelling every trial of {sweep_id}…")
        try:
            backend.cancel(sweep_id, reason="interrupted by Ctrl-C")
        except StateConflictError:
            pass  # it ended meanwhile
        except KtrdrError as exc:
            table.note(f"[cancel] could not cancel: {one_line(exc.detail)}")
            return False
        return True

    watch(backend.sweep_snapshots(sweep_id), table.show, on_interrupt=interrupt)
    final = backend.get_sweep(sweep_id)
    record = final.operation
    if args.json:
        _print_json(final)
    else:
        _print(sweep_ranking_text(final))
    if record.status == "completed":
        return EXIT_OK
    if record.status == "cancelled":
        sys.stderr.write(f"cancelled: {record.cancellation_reason or 'cancelled'}\n")
        return EXIT_CANCELLED
    reason = record.error_message or "no reason given"
    raise KtrdrError(f"sweep {sweep_id} {record.status}: {reason}")


# -- operations ----------------------------------------------------------------------------------


def operations_list(args: argparse.Namespace, backend: Backend) -> int:
    """``ktrdr operations list``: newest first, at most ``--limit``."""
    if args.limit < 1:
        raise ConfigError(f"--limit must be >= 1, got {args.limit}")
    page = backend.list_operations(status=args.status, limit=args.limit)
    if args.json:
        _print_json(page.data)
        return EXIT_OK
    if not page.data:
        _print("no operations\n")
    for row in page.data:
        _print(operation_row(row))
    if page.total_count > len(page.data):
        _print(f"({len(page.data)} of {page.total_count}; --limit shows more)\n")
    return EXIT_OK


def operations_show(args: argparse.Namespace, backend: Backend) -> int:
    """``ktrdr operations show``: one operation (``--analytics``: its detailed analytics)."""
    if args.analytics:
        analytics = backend.analytics(args.operation_id)
        if args.json:
            _print_json(analytics)
        else:
            _print(operation_text(backend.get_operation(args.operation_id)))
            _print(analytics_text(analytics))
        return EXIT_OK
    if args.json:
        _print_json(backend.operation_document(args.operation_id))
    else:
        _print(operation_text(backend.get_operation(args.operation_id)))
    return EXIT_OK


def operations_follow(args: argparse.Namespace, backend: Backend) -> int:
    """``ktrdr operations follow``: progress until the operation ends; Ctrl-C stops watching
    and leaves it running."""
    op_id = args.operation_id
    view = ProgressLine(sys.stderr)
    try:
        final = follow_operation(backend, op_id, view)
    except KeyboardInterrupt:
        view.note(
            f"stopped following; {op_id} keeps running (`ktrdr operations cancel {op_id}` stops it)"
        )
        return EXIT_CANCELLED
    if final.status == "completed":
        sys.stderr.write(f"{op_id} completed\n")
        return EXIT_OK
    if final.status == "cancelled":
        sys.stderr.write(f"cancelled: {final.cancellation_reason or 'cancelled'}\n")
        return EXIT_ERROR
    raise _failure(final)


def operations_cancel(args: argparse.Namespace, backend: Backend) -> int:
    """``ktrdr operations cancel``: ask it to stop (``--wait``: until it has)."""
    op_id = args.operation_id
    record = backend.cancel(op_id, graceful=args.graceful, reason=args.reason)
    if args.wait and not record.is_final:
        record = backend.wait(op_id)
    _print(f"{op_id}: {record.status} ({record.cancellation_reason or 'cancel requested'})\n")
    return EXIT_OK


# -- models and strategies -----------------------------------------------------------------------


def models_list(args: argparse.Namespace, backend: Backend) -> int:
    """``ktrdr models list``."""
    models = backend.list_models()
    if args.json:
        _print_json(models)
        return EXIT_OK
    if not models:
        where = backend.location
        hint = f"on {where}" if where else "(train one with `ktrdr train STRATEGY`)"
        _print(f"no saved models {hint}\n")
    for model in models:
        _print(model_row(model))
    return EXIT_OK


def strategies_validate(args: argparse.Namespace, backend: Backend) -> int:
    """``ktrdr strategies validate FILE...``: every problem and notice of each file, with
    ``file:line``; 1 if any file has problems (notices never fail it)."""
    bad = 0
    for name in args.files:
        path = Path(name)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            _print(f"{name}: cannot read: {exc.strerror or exc}\n")
            bad += 1
            continue
        check = backend.check_strategy(text, file=str(path))
        for problem in check.problems:
            _print(problem.render() + "\n")
        for notice in check.notices:
            _print(notice.render() + "\n")
        layout = f"{check.layout} layout" if check.layout else "not a strategy"
        notices = len(check.notices)
        counted = f", {notices} notice{'s' if notices != 1 else ''}" if notices else ""
        if check.problems:
            bad += 1
            problems = len(check.problems)
            _print(
                f"{name}: INVALID ({layout}, {problems} problem{'s' * (problems != 1)}{counted})\n"
            )
        else:
            _print(f"{name}: OK ({layout}{counted})\n")
            if args.data and not _report_features(args, backend, name):
                bad += 1
    return EXIT_ERROR if bad else EXIT_OK


def _report_features(args: argparse.Namespace, backend: Backend, name: str) -> bool:
    """``validate --data`` for one valid file: its inputs' activity on the training rows;
    ``False`` when its data cannot be prepared (the reason is printed)."""
    request = TrainingRequest(
        symbols=args.symbols,
        timeframes=args.timeframes,
        start_date=args.start_date,
        end_date=args.end_date,
    )
    try:
        report = backend.check_features(name, request)
    except KtrdrError as error:
        _print(f"{name}: data: {error}\n")
        return False
    for line in feature_report_lines(report):
        _print(f"  {line}\n")
    dead, constant = len(report.dead), len(report.constant)
    verdict = "every input fires" if not dead and not constant else "training still runs"
    _print(f"{name}: data OK ({dead} dead, {constant} constant input(s); {verdict})\n")
    return True


def strategies_migrate(args: argparse.Namespace, backend: Backend) -> int:
    """``ktrdr strategies migrate FILE``: the file in the v3 layout, its notices as comments.

    Raises:
        StrategyError: the file has problems (printed as ``file:line: path: message``).
        ConfigError: the file cannot be read.
    """
    path = Path(args.file)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{args.file}: cannot read: {exc.strerror or exc}") from exc
    _print(backend.migrate_strategy(text, file=str(path)))
    return EXIT_OK


def strategies_list(args: argparse.Namespace, backend: Backend) -> int:
    """``ktrdr strategies list``."""
    for item in backend.list_strategies():
        _print(strategy_row(item))
    return EXIT_OK


COMMANDS: dict[tuple[str, str | None], Command] = {
    ("train", None): train,
    ("sweep", None): sweep,
    ("strategies", "validate"): strategies_validate,
    ("strategies", "list"): strategies_list,
    ("strategies", "migrate"): strategies_migrate,
    ("models", "list"): models_list,
    ("operations", "list"): operations_list,
    ("operations", "show"): operations_show,
    ("operations", "follow"): operations_follow,
    ("operations", "cancel"): operations_cancel,
    ("operations", "resume"): operations_resume,
    ("operations", "prune"): operations_prune,
}
"""``(command, action)`` → the command (``serve`` is :mod:`ktrdr_lib.cli.serve`)."""
