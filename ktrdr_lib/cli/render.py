"""What the command line prints: the progress lines, the run summary and the listings.

Everything here is a function of the core Structs (a
:class:`~ktrdr_lib.schemas.results.TrainingResult`, an
:class:`~ktrdr_lib.schemas.operations.OperationSnapshot`, ...), never of where they came from,
so a run in this process and one on an API print the same text. The bookkeeping of a progress
stream is the notebook view's :class:`~ktrdr_lib.views.state.ViewState`, and the pieces the
terminal shares with the text view come from :mod:`ktrdr_lib.views.formatting`.

Progress (on stderr)::

    [load_data] Loading bars
    [train] Epoch 1/2 · train_loss 0.9123 · val_loss 0.9011 · train_accuracy 0.5120 · ...
    [train]  62.1% · Epoch 2/2 · Batch 10/36 · elapsed 0:04 · ETA 0:02 · loss 0.8812

(the last one only on a terminal, redrawn in place). A sweep (:class:`SweepTable`) shows on a
terminal the table of its trials redrawn in place, elsewhere a line each time a trial moves::

    [sweep] running · 2 trials · val_loss (min) · grid
    [trial 0] running · epoch 1/2 · val_loss 0.9123 · learning_rate=0.01

and ends with the ranking on stdout (:func:`sweep_ranking_text`). The summary of a run (on
stdout) leads with the honest comparison (the model against its strongest baseline, the
signal economics, the placebo runs)::

    evaluation      test accuracy 0.730 vs 0.798 for swing_state_retrace (the strongest ...
    baselines       accuracy (f1): swing_state_retrace 0.798 (0.524) · swing_state 0.755 ...
    economics       test split, 593 bars: BUY +1, SELL −1, HOLD 0; a position taken at a ...
      model         return  +18.9 % · a year ... · Sharpe  4.92 · max drawdown -12.8 % · ...
      buy and hold  return  +72.8 % · ...
      baseline      return  +11.7 % · ... (swing_state_retrace)
      costs         none: the strategy has no decisions.cost_model (cost 0)
    placebo         no placebo run: pass placebo_runs=N (ktrdr train --placebo N) to ...
    operation       op_training_... (completed, mode local)
    strategy        small_test (SYNTH 1h, base 1h)
    samples         train 1,769 · validation 571 · test 593 · features 18
    ...
    test            accuracy 0.730 · f1 0.476 · loss 0.6800 · majority-class baseline 0.678
    model           small_test/v1  /home/me/.ktrdr/models/small_test/v1
"""

from __future__ import annotations

import shutil
import time
from collections import Counter
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, TextIO

from ktrdr_lib.views.formatting import device_line, number_text, progress_line, summary_rows
from ktrdr_lib.views.state import ViewState
from ktrdr_lib.views.sweep.formatting import (
    grid_text,
    live_rows,
    ranked_rows,
    sweep_headline,
    trial_status_text,
)
from ktrdr_lib.views.sweep.state import SweepViewState
from ktrdr_lib.views.sweep.text import SweepTextRenderer

if TYPE_CHECKING:
    from ktrdr_lib.schemas.models import ModelInfo
    from ktrdr_lib.schemas.operations import OperationSnapshot
    from ktrdr_lib.schemas.progress import ProgressSnapshot
    from ktrdr_lib.schemas.results import FeatureReport, TrainingAnalytics
    from ktrdr_lib.schemas.strategies import StrategyListing
    from ktrdr_lib.schemas.sweeps import SweepSnapshot
    from ktrdr_lib.schemas.v1 import ModelListItem, OperationListItem

__all__ = [
    "ProgressLine",
    "SweepTable",
    "analytics_text",
    "feature_report_lines",
    "figures_text",
    "model_row",
    "one_line",
    "operation_row",
    "operation_text",
    "strategy_row",
    "summary_text",
    "sweep_ranking_text",
]


def figures_text(metrics: Mapping[str, float | None]) -> str:
    """An epoch's figures by name: ``train_loss 0.9123 · val_loss 0.9011 · ...``."""
    return " · ".join(
        f"{name} {number_text(value)}"
        for name, value in metrics.items()
        if value is not None and name != "train_loss_batch"
    )


def one_line(detail: str) -> str:
    """A multi-line error detail as one line (``head: first; second``)."""
    parts = [line.strip() for line in detail.splitlines() if line.strip()]
    text = ""
    for part in parts:
        text += part if not text else (" " if text.endswith(":") else "; ") + part
    return text


class ProgressLine:
    """Renders an operation's snapshots as lines: one per phase (and per step outside
    training, e.g. ``[evaluate] Placebo 2 of 3: ...``), one per finished epoch, the
    GPU once and, on a terminal, a live progress line redrawn at most every ``interval``.

    Args:
        stream: where the lines go (stderr).
        interval: least seconds between redraws of the live line.
        clock: seconds, monotonic (injectable for tests).
    """

    def __init__(
        self,
        stream: TextIO,
        interval: float = 0.25,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stream = stream
        self.interval = interval
        self.tty = stream.isatty()
        self._clock = clock
        self._state: ViewState | None = None
        self._last_draw = float("-inf")
        self._open_line = False
        self._device_shown = False

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
        """Render one snapshot (an older or repeated one is ignored)."""
        if self._state is None:
            self._state = ViewState(snap.operation_id)
        events = self._state.apply(snap)
        if self._state.latest is not snap:
            return
        # In training the live line (or the epoch line) says where it is.
        if (
            "phase" in events
            and snap.phase != "queued"
            and not (snap.phase == "train" and snap.batch)
        ) or "step" in events:
            self._write(f"[{snap.phase}] {snap.message}")
        device = device_line(snap)
        if device and not self._device_shown:
            self._device_shown = True
            self._write(device)
        if "epoch" in events:
            epoch = f"Epoch {snap.metrics_epoch}/{snap.total_epochs}"
            self._write(f"[train] {epoch} · {figures_text(snap.metrics)}")
        elif snap.phase == "train" and snap.batch and self.tty:
            now = self._clock()
            if now - self._last_draw >= self.interval:
                self._last_draw = now
                line = progress_line(snap)
                loss = snap.metrics.get("train_loss_batch")
                if loss is not None:
                    line += f" · loss {number_text(loss)}"
                self._write(line, transient=True)


class SweepTable:
    """Renders a sweep's snapshots: on a terminal its headline and a row per trial, redrawn in
    place at each change; elsewhere (a pipe, a log) a line each time a trial moves, as the
    notebook's text view prints them.

    Args:
        stream: where it is drawn (stderr).
        width: a terminal's columns (lines are cut to fit, so a redraw erases exactly what
            the last one drew); default: the terminal's size.
        height: a terminal's lines: a sweep with more trials than fit shows the trials
            training, then those waiting, then those that ended, and counts the rest on a
            last line; default: the terminal's size.
    """

    def __init__(
        self, stream: TextIO, *, width: int | None = None, height: int | None = None
    ) -> None:
        self.stream = stream
        self.tty = stream.isatty()
        size = shutil.get_terminal_size()
        self.width = width or size.columns
        self.height = height or size.lines
        self._state: SweepViewState | None = None
        self._lines = SweepTextRenderer(stream, ranking=False)
        self._drawn = 0  # lines of the live table on screen

    def _erase(self) -> None:
        if self._drawn:
            self.stream.write(f"\x1b[{self._drawn}F\x1b[J")
            self._drawn = 0

    def note(self, text: str) -> None:
        """A line of its own above the table (e.g. a cancel notice)."""
        self._erase()
        self.stream.write(text + "\n")
        self.stream.flush()
        if self._state is not None and self._state.latest is not None and self.tty:
            self._draw(self._state.latest)

    def _draw(self, snapshot: SweepSnapshot) -> None:
        lines = [f"[sweep] {snapshot.operation.status} · {sweep_headline(snapshot)}"]
        room = max(self.height - 5, 3)  # headline, header, rule, the "more" line, the prompt
        trials = snapshot.trials
        if len(trials) > room:
            order = {"running": 0, "cancelling": 0, "pending": 1}
            ranked = sorted(trials, key=lambda t: (order.get(t.status, 2), t.trial))
            shown = sorted(ranked[:room], key=lambda t: t.trial)
            hidden = Counter(trial_status_text(t) for t in ranked[room:])
            lines += grid_text(live_rows(snapshot, shown)).splitlines()
            counts = ", ".join(f"{count} {status}" for status, count in sorted(hidden.items()))
            lines.append(f"… {len(ranked) - room} more trials ({counts})")
        else:
            lines += grid_text(live_rows(snapshot)).splitlines()
        limit = max(self.width - 1, 20)
        text = "".join(
            (line if len(line) <= limit else line[: limit - 1] + "…") + "\n" for line in lines
        )
        self._erase()
        self.stream.write(text)
        self.stream.flush()
        self._drawn = len(lines)

    def show(self, snapshot: SweepSnapshot) -> None:
        """Render one snapshot of the sweep (one that changed nothing is ignored)."""
        if self._state is None:
            self._state = SweepViewState(snapshot.operation.operation_id)
        changes = self._state.apply(snapshot)
        if not changes:
            return
        if self.tty:
            self._draw(snapshot)
        else:
            self._lines.render(self._state, changes)


def sweep_ranking_text(snapshot: SweepSnapshot) -> str:
    """The ended sweep: its headline, the trials ranked best first, and where the best model
    was saved; ends with a newline."""
    text = sweep_headline(snapshot) + "\n" + grid_text(ranked_rows(snapshot))
    result = snapshot.result
    if result is not None and result.best_model_name is not None:
        text += (
            f"best model      {result.best_model_name} v{result.best_model_version} "
            f"(trial {result.best_trial}, {result.best_operation_id})\n"
        )
    return text


def summary_text(record: OperationSnapshot) -> str:
    """The run's summary (the one every front door shows, :func:`summary_rows`), one
    ``label  value`` line each; ends with a newline."""
    return "".join(f"{label:<15} {value}\n" for label, value in summary_rows(record))


def operation_text(record: OperationSnapshot) -> str:
    """``operations show``: the operation, its request, progress, outcome and result (with
    the honest comparison's headline and placebo note)."""
    params = record.metadata.get("parameters") or {}
    progress = record.progress
    request = (
        f"{params.get('strategy_name', '?')}  {','.join(params.get('symbols') or [])} "
        f"{','.join(params.get('timeframes') or [])}  epochs {params.get('epochs', '?')}"
    )
    lines = [
        f"operation   {record.operation_id}  ({record.operation_type}, mode {record.mode})",
        f"status      {record.status}",
        f"strategy    {request}",
        f"created     {record.created_at}",
        f"started     {record.started_at or '-'}",
        f"finished    {record.finished_at or '-'}",
        f"progress    {progress.percentage:.1f}%  {progress.message or ''}",
    ]
    if progress.metrics_epoch:
        lines.append(f"epoch {progress.metrics_epoch:<5} {figures_text(progress.metrics)}")
    if record.error_message:
        lines.append(f"error       {one_line(record.error_message)}")
    if record.cancellation_reason:
        lines.append(f"cancelled   {record.cancellation_reason}")
    if record.result is not None:
        test = record.result.test_metrics
        accuracy = number_text(test.accuracy if test is not None else None, 3)
        model = record.result.artifacts.model_id or "-"
        lines.append(f"result      test accuracy {accuracy}  model {model}")
        evaluation = record.result.evaluation
        if evaluation is not None:
            lines.append(f"evaluation  {evaluation.headline}")
            lines.append(f"placebo     {evaluation.placebo_note}")
    return "\n".join(lines) + "\n"


def operation_row(row: OperationListItem) -> str:
    """One line of ``operations list`` (the precise status)."""
    status = row.status_detail or row.status
    return (
        f"{row.operation_id:44} {status:11} {row.progress_percentage:6.1f}%  "
        f"{row.created_at:28} {row.current_step or ''}\n"
    )


def model_row(model: ModelInfo | ModelListItem) -> str:
    """One line of ``models list``: the id, when it was saved, the validation figure
    ``load_model(name, version="best")`` ranks by and test accuracy."""
    figures = []
    if model.selection_value is not None:
        figures.append(f"val {model.selection_value:.3f}")
    if model.test_accuracy is not None:
        figures.append(f"test acc {model.test_accuracy:.3f}")
    return f"{model.model_id:40} {model.created_at or '':28} {'  '.join(figures)}".rstrip() + "\n"


def strategy_row(item: StrategyListing) -> str:
    """One line of ``strategies list``."""
    state = "ok" if item.valid else f"INVALID ({len(item.problems)} problems)"
    where = f"{','.join(item.symbols)} {','.join(item.timeframes)}".strip()
    return f"{item.name:32} {where:24} {state:10} {item.path}\n"


def feature_report_lines(report: FeatureReport) -> list[str]:
    """``validate --data``: one line per input, its share of training rows where it is active
    (membership > 0.01), marked ``dead`` (under 1 %) or ``constant`` (a single value)."""
    dead, constant = set(report.dead), set(report.constant)
    names = list(report.active_share) + [n for n in report.constant if n not in report.active_share]
    width = max((len(name) for name in names), default=0)
    lines = []
    for name in names:
        share = report.active_share.get(name)
        shown = "" if share is None else f"{100 * share:5.1f} %"
        marks = [mark for mark, found in (("dead", dead), ("constant", constant)) if name in found]
        lines.append(f"{name:{width}}  {shown:>7}  {' '.join(marks)}".rstrip())
    return lines


def analytics_text(analytics: TrainingAnalytics) -> str:
    """``operations show --analytics``: one line per epoch (learning rate, gradient norm and
    the validation figures), the last epoch's parameter statistics, and the fuzzy inputs'
    activity; ends with a newline."""
    best = analytics.best_epoch if analytics.best_epoch is not None else "-"
    lines = [
        (
            f"analytics   {analytics.task}, stopped: {analytics.stop_reason}, best epoch "
            f"{best} of {analytics.epochs_completed}"
        )
    ]
    if analytics.task == "classification":
        classes = analytics.classes
        lines.append(
            f"{'epoch':>5}  {'lr':>9}  {'grad norm':>9}  {'macro F1':>8}  "
            + "  ".join(f"{'F1 ' + name:>8}" for name in classes)
            + f"  {'max prob':>8}  {'entropy':>7}  "
            + f"{'> ' + format(analytics.confidence_threshold, 'g'):>7}"
        )
        for record in analytics.epochs:
            per_class = record.per_class or {}
            f1 = [per_class[name].f1 if name in per_class else None for name in classes]
            confidence = record.confidence
            lines.append(
                f"{record.epoch:>5}  {record.learning_rate:>9.3g}  "
                f"{number_text(record.gradient_norm):>9}  "
                f"{number_text(record.macro_f1, 3):>8}  "
                + "  ".join(f"{number_text(value, 3):>8}" for value in f1)
                + f"  {number_text(confidence and confidence.mean_max_probability, 3):>8}"
                f"  {number_text(confidence and confidence.mean_entropy, 3):>7}"
                f"  {_share(confidence.confident_share if confidence else None):>7}"
            )
    else:
        lines.append(
            f"{'epoch':>5}  {'lr':>9}  {'grad norm':>9}  {'val MAE':>9}  {'val RMSE':>9}  "
            f"{'direction':>9}  {'pred mean':>9}  {'pred std':>9}"
        )
        for record in analytics.epochs:
            r = record.regression
            lines.append(
                f"{record.epoch:>5}  {record.learning_rate:>9.3g}  "
                f"{number_text(record.gradient_norm):>9}  "
                f"{number_text(r and r.mae, 6):>9}  {number_text(r and r.rmse, 6):>9}  "
                f"{_share(r.directional_accuracy if r else None):>9}  "
                f"{number_text(r and r.prediction_mean, 6):>9}  "
                f"{number_text(r and r.prediction_std, 6):>9}"
            )
    if analytics.epochs:
        last = analytics.epochs[-1]
        width = max((len(name) for name in last.parameters), default=9)
        lines.append(f"parameters at epoch {last.epoch}:")
        lines.append(
            f"  {'tensor':{width}}  {'grad norm':>9}  {'mean':>9}  {'std':>9}  {'abs max':>9}"
        )
        for name, figures in last.parameters.items():
            lines.append(
                f"  {name:{width}}  {number_text(figures.grad_norm):>9}  "
                f"{number_text(figures.mean):>9}  {number_text(figures.std):>9}  "
                f"{number_text(figures.abs_max):>9}"
            )
    if analytics.fuzzy_activity:
        level = format(analytics.fuzzy_active_level, "g")
        lines.append(f"fuzzy inputs (share of training rows above {level}):")
        width = max(len(name) for name in analytics.fuzzy_activity)
        lines += [
            f"  {name:{width}}  {_share(share):>7}"
            for name, share in analytics.fuzzy_activity.items()
        ]
    return "\n".join(lines) + "\n"


def _share(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f} %"
