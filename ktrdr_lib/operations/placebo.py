"""Placebo runs: after a run, the same strategy trained on random walks matched to its data.

A run asked for ``placebo_runs=N`` trains normally; then, still ``running`` (its progress in
the ``evaluate`` phase says which placebo trains), it trains the same strategy with the same
settings and seed N times on placebo data (:mod:`ktrdr_lib.data.placebo`), each a child
operation of its own (``metadata.placebo_of``) through the same runner: in this process, a
child process or on Ray, with its progress, cancel and result. Placebo models are not kept
(``load_model`` never returns one). The run's result then carries the comparison
(:class:`~ktrdr_lib.schemas.results.PlaceboReport` in ``evaluation.placebo``).

Cancelling the run while placebos train cancels the one training; an abort ends the run
``cancelled`` (its model stays saved); a graceful stop keeps the result with the placebos that
completed.
"""

from __future__ import annotations

import shutil
import statistics
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from ktrdr_lib.errors import KtrdrError, OperationCancelled
from ktrdr_lib.progress.sinks import OperationChannel
from ktrdr_lib.schemas.progress import ProgressSnapshot
from ktrdr_lib.schemas.results import PlaceboReport, TrainingResult
from ktrdr_lib.timestamps import utc_now

if TYPE_CHECKING:
    from ktrdr_lib.progress.tracker import ProgressTracker

# The executor and its live operations are duck-typed here: ``operations.live`` calls this
# module, so importing it back would make a cycle. ``live`` is a LiveOperation,
# ``executor`` an OperationExecutor.
LiveOperation = Any
OperationExecutor = Any

__all__ = ["run_placebos"]


def _forward_cancel(parent: LiveOperation, child: LiveOperation, done: threading.Event) -> None:
    """The parent's cancel (and an abort escalating it) to the placebo that trains."""
    sent: bool | None = None  # the graceful flag sent
    while not done.is_set():
        if not parent.token.wait(0.1):
            continue
        graceful = parent.token.graceful
        if sent is None or (sent and not graceful):
            child.token.cancel(graceful=graceful, reason=parent.token.reason or "cancelled")
            sent = graceful
        if not graceful:
            return
        done.wait(0.05)


def run_placebos(
    executor: OperationExecutor,
    live: LiveOperation,
    result: TrainingResult,
    tracker: ProgressTracker,
    register: Callable[[LiveOperation], None] | None,
) -> TrainingResult:
    """Train ``live``'s placebos and return ``result`` with their report.

    Raises:
        OperationCancelled: the run was aborted while a placebo trained.
    """
    from ktrdr_lib.data.placebo import write_placebo_data
    from ktrdr_lib.pipeline.context import new_operation_id

    context = live.context
    evaluation = result.evaluation
    runs = context.placebo_runs
    if evaluation is None or runs <= 0:
        return result
    lower_is_better = evaluation.score_name == "mae"
    report_ids: list[str] = []
    scores: list[float] = []
    returns: list[float] = []
    sharpes: list[float | None] = []
    notes: list[str] = []
    root = Path(tempfile.mkdtemp(prefix="ktrdr-placebo-"))
    try:
        for index in range(runs):
            if live.token.is_set:
                if not live.token.graceful:
                    raise OperationCancelled(live.token.reason or "cancelled")
                notes.append(f"stopped after {index} of {runs}: {live.token.reason}")
                break
            tracker.on_phase(
                "evaluate", f"Placebo {index + 1} of {runs}: the same training on a random walk"
            )
            data = write_placebo_data(context, index=index, directory=root / f"data_{index}")
            child_id = new_operation_id()
            child_context = msgspec.structs.replace(
                context,
                operation_id=child_id,
                data_dir=str(data),
                models_dir=str(root / "models"),
                placebo_runs=0,
                placebo_of=context.operation_id,
                checkpoint_dir="",
                resume_from=None,
                resumed_from=None,
                loggers=[],
                detailed_analytics=False,
                created_at=utc_now(),
            )
            snapshot = ProgressSnapshot(
                operation_id=child_id,
                total_epochs=child_context.total_epochs,
                message=f"Queued: placebo {index + 1} of {runs} for {context.operation_id}",
                updated_at=utc_now(),
            )
            child = type(live)(  # a LiveOperation, like the run's own
                child_context, OperationChannel(child_id, on_publish=executor.writer.submit)
            )
            child.record = executor.store.create(
                child_id,
                mode=context.mode,
                metadata={
                    **child_context.metadata(),
                    "placebo_of": context.operation_id,
                    "placebo_index": index,
                },
                progress=snapshot,
                context=child_context,
            )
            child.channel.publish(snapshot)
            if register is not None:
                register(child)
            report_ids.append(child_id)
            finished = threading.Event()
            forwarder = threading.Thread(
                target=_forward_cancel,
                args=(live, child, finished),
                name=f"ktrdr-placebo-{child_id}",
                daemon=True,
            )
            forwarder.start()
            try:
                executor.run_safely(child)
            finally:
                finished.set()
                forwarder.join()
            try:
                record = executor.store.get(child_id)
            except KtrdrError:
                continue
            placebo = record.result.evaluation if record.result is not None else None
            if record.status == "completed" and placebo is not None:
                scores.append(placebo.model_score)
                if placebo.economics is not None:
                    returns.append(placebo.economics.model.total_return)
                    sharpes.append(placebo.economics.model.sharpe)
            elif record.status == "failed":
                notes.append(f"placebo {index + 1} failed: {record.error_message}")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    report = _report(runs, report_ids, scores, evaluation.model_score, lower_is_better)
    report = msgspec.structs.replace(
        report, total_returns=returns, sharpes=sharpes, note="; ".join(notes)
    )
    note = _note(report, evaluation.score_name)
    updated = msgspec.structs.replace(
        evaluation, placebo_runs=runs, placebo=report, placebo_note=note
    )
    return msgspec.structs.replace(result, evaluation=updated)


def _report(
    runs: int, ids: list[str], scores: list[float], real: float, lower_is_better: bool
) -> PlaceboReport:
    if not scores:
        return PlaceboReport(runs=runs, operation_ids=ids)
    mean = statistics.fmean(scores)
    spread = statistics.stdev(scores) if len(scores) > 1 else None
    edge = (mean - real) if lower_is_better else (real - mean)
    z = None if not spread else edge / spread
    return PlaceboReport(
        runs=runs,
        operation_ids=ids,
        scores=[round(s, 6) for s in scores],
        mean=round(mean, 6),
        spread=None if spread is None else round(spread, 6),
        edge=round(edge, 6),
        z_score=None if z is None else round(z, 3),
    )


def _note(report: PlaceboReport, score_name: str) -> str:
    done = len(report.scores)
    if done == 0:
        return f"no placebo completed of {report.runs}" + (
            f": {report.note}" if report.note else ""
        )
    spread = f" ± {report.spread:.3f}" if report.spread is not None else ""
    verdict = ""
    if report.z_score is not None:
        verdict = (
            "; within noise: no edge over a random walk"
            if abs(report.z_score) < 2
            else "; beyond the placebos' noise"
        )
    return (
        f"{done} placebo run{'s' if done != 1 else ''} on random walks: {score_name} "
        f"{report.mean:.3f}{spread}; edge {report.edge:+.3f}"
        + (f", z {report.z_score:+.2f}" if report.z_score is not None else "")
        + verdict
    )
