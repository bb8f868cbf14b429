"""The text every progress view shares: numbers, durations, progress lines, the summary table.

These are plain functions of snapshots and records; they import no toolkit (no ipywidgets, no
IPython), so the notebook widget, the HTML view, the text view and the command line can all
say the same thing the same way.

* pieces: :func:`duration_text`, :func:`number_text`, :func:`position_text`,
  :func:`times_text`, :func:`metrics_text`, :func:`device_text`;
* whole lines, as the text view prints them: :func:`phase_line`, :func:`device_line`,
  :func:`epoch_line`, :func:`progress_line`, :func:`final_line`;
* what happened to a run that ended, in one line: :func:`outcome_text` (``Completed: 20
  epochs, test accuracy 0.61``, ``Cancelled after epoch 3: <reason>``, ``Stopped after epoch
  5 (graceful): model saved``);
* the one summary of a run: :func:`summary_rows` gives ``(label, value)`` rows, which
  :func:`table_text` and :func:`table_html` lay out; it leads with the honest comparison
  (:func:`evaluation_rows`: the model against its strongest baseline, the signal economics,
  the placebo runs).

Example:
    >>> from ktrdr_lib.schemas.progress import ProgressSnapshot
    >>> snap = ProgressSnapshot(
    ...     operation_id="op_1", status="running", phase="train", percentage=42.4,
    ...     epoch=2, total_epochs=5, batch=10, total_batches=20, elapsed_s=75.0, eta_s=42.0,
    ... )
    >>> progress_line(snap)
    '[train]  42.4% · Epoch 2/5 · Batch 10/20 · elapsed 1:15 · ETA 0:42'
    >>> print(table_text([("operation", "op_1 (completed)"), ("epochs", "5")]), end="")
    ───────────────────────────
    operation  op_1 (completed)
    epochs     5
    ───────────────────────────
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from ktrdr_lib.schemas.status import FINAL_STATUSES

if TYPE_CHECKING:
    from ktrdr_lib.schemas.operations import OperationSnapshot
    from ktrdr_lib.schemas.progress import ProgressSnapshot
    from ktrdr_lib.schemas.results import HonestEvaluation, SignalEconomics

__all__ = [
    "device_line",
    "device_text",
    "duration_text",
    "economics_text",
    "epoch_line",
    "evaluation_rows",
    "final_line",
    "metrics_text",
    "number_text",
    "outcome_text",
    "phase_line",
    "position_text",
    "progress_line",
    "return_text",
    "summary_rows",
    "table_html",
    "table_text",
    "times_text",
]

# -- pieces ----------------------------------------------------------------------------------


def duration_text(seconds: float | None) -> str:
    """A duration as ``m:ss`` or ``h:mm:ss``; ``–`` when unknown.

    Example:
        >>> duration_text(75.0), duration_text(3725), duration_text(None)
        ('1:15', '1:02:05', '–')
    """
    if seconds is None or not math.isfinite(seconds):
        return "–"
    total = round(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def number_text(value: object, digits: int = 4) -> str:
    """A number with ``digits`` decimals; ``–`` for anything that is not a number.

    Example:
        >>> number_text(0.81234), number_text(0.61, 3), number_text(None)
        ('0.8123', '0.610', '–')
    """
    return f"{value:.{digits}f}" if isinstance(value, int | float) else "–"


def position_text(snap: ProgressSnapshot) -> str:
    """Where training is (``Epoch e/E · Batch b/B``), or the snapshot's message outside it."""
    if snap.total_epochs and snap.epoch:
        text = f"Epoch {snap.epoch}/{snap.total_epochs}"
        if snap.total_batches:
            text += f" · Batch {snap.batch}/{snap.total_batches}"
        return text
    return snap.message


def times_text(snap: ProgressSnapshot) -> str:
    """``elapsed m:ss · ETA m:ss`` (no ETA once the run is final)."""
    text = f"elapsed {duration_text(snap.elapsed_s)}"
    if snap.status not in FINAL_STATUSES:
        text += f" · ETA {duration_text(snap.eta_s)}"
    return text


def metrics_text(metrics: Mapping[str, float | None]) -> str:
    """The latest loss and accuracy per split (``train loss 0.8123 acc 0.610 · val ...``).

    Falls back to the last batch's loss before the first epoch ends; empty when there is
    nothing to show.
    """
    parts = []
    for split in ("train", "val"):
        loss, acc = metrics.get(f"{split}_loss"), metrics.get(f"{split}_accuracy")
        if loss is not None or acc is not None:
            parts.append(f"{split} loss {number_text(loss)} acc {number_text(acc, 3)}")
    if not parts and metrics.get("train_loss_batch") is not None:
        parts.append(f"batch loss {number_text(metrics['train_loss_batch'])}")
    return " · ".join(parts)


def device_text(snap: ProgressSnapshot) -> str:
    """The GPU a run trains on, its memory and load (and the host session); empty on CPU."""
    res = snap.resources
    if not (res.gpu_name or res.gpu_used):
        return ""
    text = f"GPU {res.gpu_name or res.device or 'cuda'}"
    if res.gpu_memory_allocated_mb is not None:
        total = "?" if res.gpu_memory_total_mb is None else res.gpu_memory_total_mb
        text += f" · {res.gpu_memory_allocated_mb} / {total} MB"
    if res.gpu_utilization_percent is not None:
        text += f" · {res.gpu_utilization_percent}% busy"
    if snap.host_session_id:
        text += f" · host session {snap.host_session_id}"
    return text


def return_text(value: float | None) -> str:
    """A fraction as a signed percentage (``+12.3 %``); ``–`` when unknown.

    Example:
        >>> return_text(0.1234), return_text(-0.02), return_text(None)
        ('+12.3 %', '-2.0 %', '–')
    """
    return f"{100 * value:+.1f} %" if isinstance(value, int | float) else "–"


def _share_text(value: float | None) -> str:
    return f"{100 * value:.1f} %" if isinstance(value, int | float) else "–"


def economics_text(figures: SignalEconomics) -> str:
    """What a position series earned on the test split, in one line whose figures line up
    with the same line of another series (fixed widths).

    Example:
        >>> from ktrdr_lib.schemas.results import SignalEconomics
        >>> figures = SignalEconomics(
        ...     bars=400, total_return=0.123, annualised_return=0.081, sharpe=0.853,
        ...     max_drawdown=0.098, hit_rate=0.542, turnover=0.12, exposure=0.96,
        ... )
        >>> economics_text(figures).split(" · ")  # doctest: +NORMALIZE_WHITESPACE
        ['return  +12.3 %', 'a year   +8.1 %', 'Sharpe  0.85', 'max drawdown  -9.8 %',
         'hit rate  54.2 %', 'exposure  96.0 %', 'turnover 0.120']
    """
    text = (
        f"return {return_text(figures.total_return):>8} · "
        f"a year {return_text(figures.annualised_return):>8} · "
        f"Sharpe {number_text(figures.sharpe, 2):>5} · "
        f"max drawdown {return_text(-figures.max_drawdown):>7} · "
        f"hit rate {_share_text(figures.hit_rate):>7} · "
        f"exposure {_share_text(figures.exposure):>7} · "
        f"turnover {number_text(figures.turnover, 3)}"
    )
    if figures.costs:
        text += f" · costs {_share_text(figures.costs)}"
    return text


def _score_text(value: float | None, score_name: str) -> str:
    return number_text(value, 5 if score_name == "mae" else 3)


def evaluation_rows(evaluation: HonestEvaluation) -> list[tuple[str, str]]:
    """The honest comparison's rows, which lead a run's summary (:func:`summary_rows`).

    Args:
        evaluation: the result's :class:`~ktrdr_lib.schemas.results.HonestEvaluation`.

    Returns:
        ``evaluation`` (the headline: the model against the strongest baseline its label
        kind has); ``baselines`` (every baseline's score on the test rows, the strongest
        first, with its macro F1 for a classifier); ``economics`` (the decision rules) with a
        row each for the ``model``, ``buy and hold`` and the strongest ``baseline`` (when it
        takes positions) and ``costs`` (where the cost came from), when the test split had
        next bars; then ``placebo`` (what the placebo runs say, or how to ask for them) and
        ``placebos`` (each placebo's score and return) when any completed. Sub-rows' labels
        start with two spaces.

    Example:
        >>> rows = evaluation_rows(op.result().evaluation)   # doctest: +SKIP
        >>> rows[1]                                          # doctest: +SKIP
        ('baselines', 'accuracy (f1): swing_state_retrace 0.757 (0.702) · majority 0.512 (0.226)')
    """
    name = evaluation.score_name
    rows = [("evaluation", evaluation.headline)]
    if name == "mae":
        scores = " · ".join(f"{b.name} {_score_text(b.score, name)}" for b in evaluation.baselines)
        rows.append(("baselines", f"mae: {scores}"))
    else:
        scores = " · ".join(
            f"{b.name} {_score_text(b.score, name)}"
            + ("" if b.f1 is None else f" ({number_text(b.f1, 3)})")
            for b in evaluation.baselines
        )
        rows.append(("baselines", f"{name} (f1): {scores}"))
    economics = evaluation.economics
    if economics is not None:
        rules = "; ".join(economics.rules)
        rows.append(("economics", f"test split, {economics.model.bars:,} bars: {rules}"))
        rows.append(("  model", economics_text(economics.model)))
        rows.append(("  buy and hold", economics_text(economics.buy_and_hold)))
        if economics.strongest_baseline is not None:
            baseline = economics_text(economics.strongest_baseline)
            rows.append(("  baseline", f"{baseline} ({evaluation.strongest_baseline})"))
        rows.append(("  costs", economics.cost_source))
    rows.append(("placebo", evaluation.placebo_note))
    placebo = evaluation.placebo
    if placebo is not None and placebo.scores:
        figures = f"{name} " + " · ".join(_score_text(s, name) for s in placebo.scores)
        if placebo.total_returns:
            figures += "; return " + " · ".join(return_text(r) for r in placebo.total_returns)
        if placebo.note:
            figures += f"; {placebo.note}"
        rows.append(("  placebos", figures))
    return rows


# -- lines -----------------------------------------------------------------------------------


def phase_line(snap: ProgressSnapshot) -> str:
    """The line that opens a phase: ``[load_data]   5.0% · Loading bars``."""
    return f"[{snap.phase}] {snap.percentage:5.1f}% · {snap.message}"


def device_line(snap: ProgressSnapshot) -> str:
    """``[device] GPU ...`` for a run on a GPU; empty on CPU (see :func:`device_text`)."""
    device = device_text(snap)
    return f"[device] {device}" if device else ""


def epoch_line(snap: ProgressSnapshot, epoch: int) -> str:
    """The line for a finished epoch: position, the epoch's metrics, elapsed and ETA.

    Args:
        snap: the snapshot that brought the epoch's figures.
        epoch: the epoch that finished (``snap.metrics_epoch``).
    """
    return (
        f"[train] {snap.percentage:5.1f}% · Epoch {epoch}/{snap.total_epochs}"
        f" · {metrics_text(snap.metrics)} · {times_text(snap)}"
    )


def progress_line(snap: ProgressSnapshot) -> str:
    """One line for a snapshot: ``[train]  42.4% · Epoch 2/5 · Batch 10/20 · elapsed · ETA``."""
    return f"[{snap.phase}] {snap.percentage:5.1f}% · {position_text(snap)} · {times_text(snap)}"


def final_line(status: str, snap: ProgressSnapshot | None, outcome: str | None = None) -> str:
    """The line that ends a run: ``[completed] <outcome or last message> · elapsed m:ss``.

    Args:
        status: the final status.
        snap: the last snapshot, when there was one.
        outcome: what happened (:func:`outcome_text`); else the last snapshot's message.
    """
    elapsed = duration_text(snap.elapsed_s) if snap is not None else "–"
    said = outcome or (snap.message if snap else status)
    return f"[{status}] {said} · elapsed {elapsed}"


# -- the outcome -----------------------------------------------------------------------------


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def _test_figure(record: OperationSnapshot) -> str:
    """The honest headline (the model against its strongest baseline) when the result has
    one; else ``test accuracy 0.61`` (a regression: its directional accuracy); empty when
    untested."""
    result = record.result
    if result is None:
        return ""
    if result.evaluation is not None:
        return result.evaluation.headline
    if result.test_metrics is not None:
        return f"test accuracy {number_text(result.test_metrics.accuracy, 2)}"
    if result.test_regression is not None:
        accuracy = result.test_regression.directional_accuracy
        return f"test directional accuracy {number_text(accuracy, 2)}"
    return ""


def _first_line(text: str, limit: int = 200) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= limit else line[: limit - 1] + "…"


def outcome_text(record: OperationSnapshot) -> str:
    """What happened to a run, in one line, for the headline of a view once it ended.

    Args:
        record: the operation's final record (with its result, partial or whole).

    Returns:
        ``Completed: 20 epochs, test accuracy 0.61`` (``(early stop)`` when early stopping
        ended it; a result with its honest comparison gives that headline instead: ``test
        accuracy 0.673 vs 0.757 for swing_state_retrace (the strongest baseline, no model):
        -0.084``); ``Stopped after epoch 5 (graceful): model saved, test accuracy 0.58`` for a
        run stopped gracefully (it completes, with a cancellation reason on record);
        ``Cancelled after epoch 3: <reason>`` (or ``during <phase>`` before an epoch ended);
        ``Failed during <phase>: <error>``; ``Interrupted: <why>``. For a run still going, its
        status.

    Example:
        >>> outcome_text(op.wait())                      # doctest: +SKIP
        'Completed: 20 epochs, test accuracy 0.61'
    """
    result = record.result
    metrics = result.training_metrics if result is not None else None
    epochs = metrics.epochs_completed if metrics is not None else record.progress.metrics_epoch
    test = _test_figure(record)
    phase = record.progress.phase
    where = f"after epoch {epochs}" if epochs else f"during {phase}"
    reason = record.cancellation_reason or (
        result.session_info.cancellation_reason if result is not None else None
    )
    if record.status == "completed":
        if reason:
            saved = result is not None and result.artifacts.model_id is not None
            text = f"Stopped after epoch {epochs} (graceful): "
            text += "model saved" if saved else "no model saved"
            return f"{text}, {test}" if test else text
        early = " (early stop)" if metrics is not None and metrics.early_stopped else ""
        text = f"Completed: {_plural(epochs, 'epoch')}{early}"
        return f"{text}, {test}" if test else text
    if record.status == "cancelled":
        return f"Cancelled {where}: {_first_line(reason or 'on request')}"
    if record.status == "failed":
        return f"Failed during {phase}: {_first_line(record.error_message or 'unknown error')}"
    if record.status == "interrupted":
        why = record.error_message or reason or "the process running it ended"
        return f"Interrupted {where}: {_first_line(why)}"
    return record.status.capitalize()


# -- the summary table -----------------------------------------------------------------------


def summary_rows(record: OperationSnapshot) -> list[tuple[str, str]]:
    """The rows of a run's summary: ``(label, value)`` pairs from the operation record.

    The one summary every front door shows: the notebook lays it out with :func:`table_text`
    or :func:`table_html`, the command line in two columns. Works for completed runs (the
    TrainingResult) and for cancelled or failed ones (their partial result and error), never
    raising on missing pieces.

    Args:
        record: the operation, usually once it is final.

    Returns:
        The honest comparison first when the result has one (:func:`evaluation_rows`: the
        headline, the model against the strongest baseline its label kind has, then the
        baselines, the signal economics and the placebo runs); ``operation``; then, when
        there is a result, ``strategy``, ``samples`` and
        ``labels (train)`` (when data was prepared), ``epochs``, ``training time``, ``phases``
        and ``memory`` (when the run measured them),
        ``train loss / acc``, ``val loss / acc``, ``test`` (when the run was evaluated, with
        the majority-class baseline), ``inputs`` (dead and constant features, when there are
        any) and ``model`` (when one was saved); then ``stop reason`` and ``error`` when the
        record has them.

    Example:
        >>> rows = summary_rows(op.info())                    # doctest: +SKIP
        >>> print(table_text(rows))                           # doctest: +SKIP
    """
    result = record.result
    evaluation = result.evaluation if result is not None else None
    rows = [] if evaluation is None else evaluation_rows(evaluation)
    rows.append(("operation", f"{record.operation_id} ({record.status}, mode {record.mode})"))
    if result is not None:
        info, tm, test = result.session_info, result.training_metrics, result.test_metrics
        data = result.data_summary
        where = (
            f"{', '.join(info.symbols)} {', '.join(info.timeframes)}, base {info.base_timeframe}"
        )
        rows.append(("strategy", f"{info.strategy} ({where})"))
        if data.samples:
            counts = " · ".join(f"{split} {count:,}" for split, count in data.samples.items())
            rows.append(("samples", f"{counts} · features {data.feature_count}"))
        train_labels = data.label_distribution.get("train")
        if train_labels:
            rows.append(
                ("labels (train)", " · ".join(f"{k} {v:,}" for k, v in train_labels.items()))
            )
        stopped = "yes" if tm.early_stopped else "no"
        rows.append(
            ("epochs", f"{tm.epochs_completed} (best {tm.best_epoch}, early stop {stopped})")
        )
        rate = tm.samples_per_second
        speed = f" · {rate:,.0f} samples/s" if rate is not None else ""
        rows.append(("training time", f"{duration_text(tm.training_time_s)}{speed}"))
        usage = result.resource_usage
        if usage.phase_seconds:
            rows.append(
                (
                    "phases",
                    " · ".join(
                        f"{phase} {secs:.2f} s" for phase, secs in usage.phase_seconds.items()
                    ),
                )
            )
        memory = []
        if usage.run_peak_rss_mb is not None:
            memory.append(f"peak RSS {usage.run_peak_rss_mb:,.0f} MB")
        if usage.gpu_memory_peak_mb is not None:
            memory.append(f"GPU peak {usage.gpu_memory_peak_mb:,.0f} MB")
        if memory:
            rows.append(("memory", " · ".join(memory)))
        for split, loss, accuracy in (
            ("train", tm.final_train_loss, tm.final_train_accuracy),
            ("val", tm.final_val_loss, tm.final_val_accuracy),
        ):
            measure = "dir. acc" if result.test_regression is not None else "acc"
            rows.append(
                (f"{split} loss / {measure}", f"{number_text(loss)} / {number_text(accuracy, 3)}")
            )
        if test is not None:
            acc, f1 = number_text(test.accuracy, 3), number_text(test.f1, 3)
            baseline = number_text(test.majority_baseline_accuracy, 3)
            figures = f"accuracy {acc} · f1 {f1} · loss {number_text(test.loss)}"
            rows.append(("test", f"{figures} · majority-class baseline {baseline}"))
        regression = result.test_regression
        if regression is not None:
            corr = (
                "n/a" if regression.correlation is None else number_text(regression.correlation, 3)
            )
            figures = (
                f"mae {number_text(regression.mae)} · rmse {number_text(regression.rmse)} · "
                f"directional accuracy {number_text(regression.directional_accuracy, 3)} · "
                f"correlation {corr}"
            )
            baselines = (
                f"baselines: zero mae {number_text(regression.zero_baseline_mae)} · train-mean "
                f"mae {number_text(regression.mean_baseline_mae)}, directional accuracy "
                f"{number_text(regression.mean_baseline_directional_accuracy, 3)}"
            )
            rows.append(("test", f"{figures} · {baselines}"))
        if info.strategy_notices:
            count = len(info.strategy_notices)
            said = "`ktrdr strategies validate FILE` lists where it trains unlike KTRDR"
            rows.append(("notices", f"{count} in the {info.strategy_layout} file; {said}"))
        report = data.feature_report
        if report is not None and (report.dead or report.constant):
            parts = []
            if report.dead:
                parts.append(f"dead (active on < 1 % of training rows): {', '.join(report.dead)}")
            if report.constant:
                parts.append(f"constant: {', '.join(report.constant)}")
            rows.append(("inputs", " · ".join(parts)))
        if result.artifacts.model_id:
            rows.append(
                ("model", f"{result.artifacts.model_id}  {result.artifacts.model_path or ''}")
            )
        elif result.artifacts.no_model_reason:
            rows.append(("model", result.artifacts.no_model_reason))
    if record.cancellation_reason:
        rows.append(("stop reason", record.cancellation_reason))
    if record.error_message:
        rows.append(("error", record.error_message))
    return rows


def table_text(rows: Sequence[tuple[str, str]]) -> str:
    """Rows as an aligned plain-text table between two rules (ends with a newline).

    Args:
        rows: ``(label, value)`` pairs, at least one (e.g. :func:`summary_rows`).
    """
    width = max(len(label) for label, _ in rows)
    rule = "─" * (width + 2 + max(len(value) for _, value in rows))
    body = "\n".join(f"{label.ljust(width)}  {value}" for label, value in rows)
    return f"{rule}\n{body}\n{rule}\n"


def table_html(rows: Sequence[tuple[str, str]]) -> str:
    """Rows as an HTML ``<table>`` (labels as left-aligned headers, text escaped; a label
    that starts with spaces, a sub-row, is indented by half an em per space and not bold)."""
    cells = "".join(
        f"<tr>{_label_cell(label)}"
        f"<td style='text-align:left;overflow-wrap:anywhere'>{html.escape(value)}</td></tr>"
        for label, value in rows
    )
    return (
        "<table class='ktrdr-summary' style='max-width:100%;border-collapse:collapse;"
        f"line-height:1.4;color:var(--jp-ui-font-color1, inherit)'>{cells}</table>"
    )


def _label_cell(label: str) -> str:
    text = label.lstrip(" ")
    indent = len(label) - len(text)
    style = "text-align:left;vertical-align:top;padding:1px 1em 1px 0;white-space:nowrap"
    if indent:
        style += f";padding-left:{indent / 2:g}em;font-weight:normal"
    return f"<th style='{style}'>{html.escape(text)}</th>"
