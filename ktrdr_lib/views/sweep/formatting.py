"""The text every sweep view shares: a trial's line, the live table, the ranking, the headline.

Plain functions of :class:`~ktrdr_lib.schemas.sweeps.SweepSnapshot` and its trials; no toolkit
is imported, so the notebook widget, the HTML and text views and the command line say the same
thing the same way.

* a trial: :func:`config_text` (``learning_rate=0.01 · hidden_layers=[16, 8]``),
  :func:`trial_status_text`, :func:`trial_line` (what the text view prints when a trial moves);
* the sweep: :func:`best_trial`, :func:`sweep_headline` (``Completed: 4 trials, best val_loss
  0.8950 (trial 2), model small_test_sweep_best v1``);
* tables: :func:`live_rows` (one row per trial while it runs), :func:`ranked_rows` (the
  ranking once it ended), laid out by :func:`grid_text` and :func:`grid_html`.

Example:
    >>> from ktrdr_lib.schemas.sweeps import SweepTrial
    >>> trial = SweepTrial(trial=0, operation_id="op_1", config={"model.training.learning_rate":
    ...     0.01}, status="running", epoch=1, total_epochs=2, metric=0.91234)
    >>> trial_line(trial, "val_loss")
    '[trial 0] running · epoch 1/2 · val_loss 0.9123 · learning_rate=0.01'
    >>> print(grid_text([("trial", "status"), ("0", "running")]), end="")
    trial  status
    ─────  ───────
    0      running
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ktrdr_lib.schemas.status import FINAL_STATUSES
from ktrdr_lib.views.formatting import number_text

if TYPE_CHECKING:
    from ktrdr_lib.schemas.sweeps import SweepSnapshot, SweepTrial

__all__ = [
    "best_trial",
    "config_text",
    "grid_html",
    "grid_text",
    "live_rows",
    "ranked_rows",
    "sweep_headline",
    "trial_line",
    "trial_status_text",
]

Row = tuple[str, ...]


def _value_text(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return format(value, "g")
    return str(value)


def config_text(config: Mapping[str, Any]) -> str:
    """A trial's settings, each by the last part of its path unless two share it.

    Example:
        >>> config_text({"model.training.learning_rate": 0.001, "epochs": 3})
        'learning_rate=0.001 · epochs=3'
    """
    last = [path.rsplit(".", 1)[-1] for path in config]
    return " · ".join(
        f"{short if last.count(short) == 1 else path}={_value_text(value)}"
        for (path, value), short in zip(config.items(), last, strict=True)
    )


def trial_status_text(trial: SweepTrial) -> str:
    """The trial's status, ``stopped early`` when the early-stopping scheduler ended it."""
    return "stopped early" if trial.stopped_early else trial.status


def _first_line(text: str, limit: int = 160) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= limit else line[: limit - 1] + "…"


def trial_line(trial: SweepTrial, metric: str) -> str:
    """The line for a trial that moved: ``[trial 1] running · epoch 1/2 · val_loss 0.9123 ·
    learning_rate=0.01`` (an ended trial adds its best epoch, its test accuracy or error)."""
    parts = [
        f"[trial {trial.trial}] {trial_status_text(trial)}",
        f"epoch {trial.epoch}/{trial.total_epochs}",
    ]
    if trial.metric is not None:
        figure = f"{metric} {number_text(trial.metric)}"
        if trial.status in FINAL_STATUSES and trial.best_epoch is not None:
            figure += f" (best epoch {trial.best_epoch})"
        parts.append(figure)
    if trial.test_accuracy is not None:
        parts.append(f"test accuracy {number_text(trial.test_accuracy, 3)}")
    if trial.error_message:
        parts.append(_first_line(trial.error_message))
    parts.append(config_text(trial.config))
    return " · ".join(part for part in parts if part)


def best_trial(snapshot: SweepSnapshot) -> SweepTrial | None:
    """The trial with the best metric so far (the ranking's winner once the sweep ended)."""
    if snapshot.result is not None:
        best = snapshot.result.best_trial
        return next((t for t in snapshot.result.trials if t.trial == best), None)
    scored = [t for t in snapshot.trials if t.metric is not None]
    if not scored:
        return None
    sign = 1.0 if snapshot.mode == "min" else -1.0
    return min(scored, key=lambda t: (sign * (t.metric or 0.0), t.trial))


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def sweep_headline(snapshot: SweepSnapshot) -> str:
    """The sweep in one line.

    While it runs: ``1 of 4 trials done · 2 running · best val_loss 0.8950 (trial 0)``.
    Once it ended: ``Completed: 4 trials, best val_loss 0.8950 (trial 2), model
    small_test_sweep_best v1`` (and how many were stopped early), ``Cancelled: 1 of 4 trials
    completed; <reason>``, ``Failed: <error>``.
    """
    record = snapshot.operation
    trials = snapshot.trials
    best = best_trial(snapshot)
    best_text = (
        f"best {snapshot.metric} {number_text(best.metric)} (trial {best.trial})"
        if best is not None and best.metric is not None
        else ""
    )
    if not record.is_final:
        done = sum(1 for t in trials if t.status in FINAL_STATUSES)
        running = sum(1 for t in trials if t.status in ("running", "cancelling"))
        parts = [f"{done} of {_plural(len(trials), 'trial')} done", f"{running} running"]
        return " · ".join([*parts, best_text] if best_text else parts)
    completed = sum(1 for t in trials if t.status == "completed")
    if record.status == "completed":
        text = f"Completed: {_plural(len(trials), 'trial')}"
        result = snapshot.result
        if result is not None and result.early_stopped:
            text += f" ({result.early_stopped} stopped early)"
        if best_text:
            text += f", {best_text}"
        if result is not None and result.best_model_name is not None:
            text += f", model {result.best_model_name} v{result.best_model_version}"
        return text
    if record.status == "cancelled":
        reason = _first_line(record.cancellation_reason or "on request")
        return f"Cancelled: {completed} of {_plural(len(trials), 'trial')} completed; {reason}"
    if record.status == "failed":
        return f"Failed: {_first_line(record.error_message or 'unknown error')}"
    return f"{record.status.capitalize()}: {_first_line(record.error_message or '')}".rstrip(": ")


def live_rows(snapshot: SweepSnapshot, trials: Sequence[SweepTrial] | None = None) -> list[Row]:
    """The live table: a header, then one row per trial (trial, status, epoch, the metric's
    best so far, settings); ``trials`` picks the rows (default: every trial)."""
    rows: list[Row] = [("trial", "status", "epoch", snapshot.metric, "config")]
    for trial in snapshot.trials if trials is None else trials:
        rows.append(
            (
                str(trial.trial),
                trial_status_text(trial),
                f"{trial.epoch}/{trial.total_epochs}",
                number_text(trial.metric),
                config_text(trial.config),
            )
        )
    return rows


def ranked_rows(snapshot: SweepSnapshot) -> list[Row]:
    """The ranking: a header, then every trial best first (the result's order once the sweep
    ended; by the metric so far before), trials without a figure last and unranked."""
    if snapshot.result is not None:
        trials = list(snapshot.result.trials)
    else:
        sign = 1.0 if snapshot.mode == "min" else -1.0
        trials = sorted(
            snapshot.trials,
            key=lambda t: (t.metric is None, sign * (t.metric or 0.0), t.trial),
        )
    rows: list[Row] = [
        ("rank", "trial", "status", "epochs", snapshot.metric, "best epoch", "test acc", "config")
    ]
    rank = 0
    for trial in trials:
        if trial.metric is not None:
            rank += 1
        rows.append(
            (
                str(rank) if trial.metric is not None else "–",
                str(trial.trial),
                trial_status_text(trial),
                f"{trial.epoch}/{trial.total_epochs}",
                number_text(trial.metric),
                "–" if trial.best_epoch is None else str(trial.best_epoch),
                number_text(trial.test_accuracy, 3),
                config_text(trial.config),
            )
        )
    return rows


def grid_text(rows: Sequence[Row]) -> str:
    """Rows (the first is the header) as aligned plain-text columns with a rule under the
    header; ends with a newline."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True))

    lines = [line(rows[0]), line(["─" * width for width in widths])]
    lines += [line(row) for row in rows[1:]]
    return "\n".join(text.rstrip() for text in lines) + "\n"


def grid_html(rows: Sequence[Row], *, highlight: int | None = None) -> str:
    """Rows (the first is the header) as an HTML ``<table>``, text escaped; ``highlight`` is
    the index of a body row to show bold (the best trial). Cells keep to one line (a status
    or figure broken mid-word reads badly in a narrow notebook) except the last, the
    trial's settings, which wraps at no less than 14em (narrower, every row grew tall)."""
    head = "".join(
        f"<th style='text-align:left;padding:1px 1em 1px 0;white-space:nowrap'>"
        f"{html.escape(cell)}</th>"
        for cell in rows[0]
    )
    body = []
    for index, row in enumerate(rows[1:]):
        weight = "font-weight:bold;" if index == highlight else ""
        last = len(row) - 1
        wraps, keeps = "overflow-wrap:anywhere;min-width:14em", "white-space:nowrap"
        cells = "".join(
            f"<td style='text-align:left;padding:1px 1em 1px 0;{weight}"
            f"{wraps if column == last else keeps}'>"
            f"{html.escape(cell)}</td>"
            for column, cell in enumerate(row)
        )
        body.append(f"<tr>{cells}</tr>")
    return (
        "<table class='ktrdr-sweep' style='max-width:100%;border-collapse:collapse;"
        f"line-height:1.4;color:var(--jp-ui-font-color1, inherit)'><tr>{head}</tr>"
        f"{''.join(body)}</table>"
    )
