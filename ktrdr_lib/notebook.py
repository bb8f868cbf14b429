"""Notebook progress view: a live widget with Cancel, or compact text for headless runs.

Example:
    >>> from ktrdr_lib import TrainingOrchestrator
    >>> orch = TrainingOrchestrator()
    >>> op = orch.train("rsi_mean_reversion", epochs=5)       # doctest: +SKIP
    >>> # the cell returns at once; the view updates live, Cancel stays clickable
    >>> op.wait().status                                      # doctest: +SKIP
    'completed'

:class:`TrainingProgress` follows an operation's snapshot stream (``op.follow()``) in a
background thread and renders it in one of four ways:

* ``widget``: ipywidgets: a bar with percentage and phase, ``Epoch e/E · Batch b/B``, elapsed
  and ETA, the latest train/val loss and accuracy, a device line when a GPU trains, a per-epoch
  loss/accuracy curve (an SVG drawn here, no plotting library), and two buttons: **Cancel**
  (abort) and **Stop after this epoch** (graceful). The bar is ``info`` while running,
  ``success`` on completion, ``danger`` on failure, ``warning`` on cancel; the buttons are
  disabled once the run is final.
* ``html``: the same picture as static HTML updated in place (no buttons).
* ``text``: a line per phase and per epoch, a progress line every ``text_every_percent`` % or
  ``text_every_s`` seconds, never one per batch; then a summary table of the result.
* ``off``: nothing.

Bookkeeping (:class:`ViewState`: latest snapshot, epoch curve, what changed) is separate from
the renderers, which only draw.

**Choosing the mode** (``mode="auto"``, see :func:`detect_display_mode`): an explicit argument
wins; else the ``KTRDR_PROGRESS`` environment variable; else detection. A kernel cannot know
for sure who is on the other end of its sockets, so detection reads the signals frontends do
send: Jupyter frontends that render widgets (JupyterLab, Notebook 7, VS Code) put a ``cellId``
in every ``execute_request``'s metadata, and kernels started by a Jupyter server get
``JPY_SESSION_NAME``. nbclient (used by papermill and ``nbconvert --execute``) sends neither,
so such a kernel is *headless* and gets text, as does plain Python or a terminal. Any
``PAPERMILL_*`` variable also counts as headless. Without ipywidgets, ``auto`` falls back to
text and says once which extra installs it.

This module is the one part of ``ktrdr_lib`` that may import ipywidgets and IPython; it
imports them lazily, so ``import ktrdr_lib.notebook`` works without them.
"""

from __future__ import annotations

import html
import importlib
import logging
import math
import os
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, TextIO

from ktrdr_lib.errors import ConfigError, KtrdrError
from ktrdr_lib.schemas.progress import EpochHistoryRow, ProgressSnapshot
from ktrdr_lib.schemas.status import FINAL_STATUSES

if TYPE_CHECKING:
    from ktrdr_lib.operations.handle import OperationHandle
    from ktrdr_lib.schemas.operations import OperationSnapshot

__all__ = [
    "BAR_STYLES",
    "PROGRESS_ENV_VAR",
    "DisplayMode",
    "TrainingProgress",
    "ViewState",
    "curve_svg",
    "detect_display_mode",
    "summary_table",
]

log = logging.getLogger(__name__)

DisplayMode = Literal["auto", "widget", "html", "text", "off"]
_MODES: tuple[str, ...] = ("auto", "widget", "html", "text", "off")
PROGRESS_ENV_VAR = "KTRDR_PROGRESS"
NOTEBOOK_HINT = (
    "ktrdr: showing text progress because ipywidgets is not installed; "
    "`pip install 'ktrdr_lib[notebook]'` gives the live widget with a Cancel button."
)
BAR_STYLES: dict[str, str] = {
    "pending": "info",
    "running": "info",
    "cancelling": "warning",
    "completed": "success",
    "failed": "danger",
    "cancelled": "warning",
    "interrupted": "danger",
}
_hint_shown = False
_hint_lock = threading.Lock()


# -- mode detection --------------------------------------------------------------------------


def _import_optional(name: str) -> Any | None:
    """The module ``name``, or ``None`` when it cannot be imported."""
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


def _current_shell() -> Any | None:
    """The running IPython shell, or ``None`` outside IPython (never imports IPython anew)."""
    if "IPython" not in sys.modules:
        return None
    ipython = _import_optional("IPython")
    get = getattr(ipython, "get_ipython", None)
    return get() if callable(get) else None


def _is_headless_kernel(shell: Any, environ: Mapping[str, str]) -> bool:
    """Whether a kernel shell is driven by a client that renders no widgets (nbclient)."""
    if any(name.startswith("PAPERMILL_") for name in environ):
        return True
    if environ.get("JPY_SESSION_NAME"):
        return False  # started by a Jupyter server for a notebook session: a frontend
    get_parent = getattr(shell, "get_parent", None)
    parent: Any = get_parent() if callable(get_parent) else getattr(shell, "parent_header", None)
    metadata = parent.get("metadata") if isinstance(parent, Mapping) else None
    return not (isinstance(metadata, Mapping) and metadata.get("cellId"))


def _show_hint(stream: TextIO | None) -> None:
    global _hint_shown
    with _hint_lock:
        if _hint_shown:
            return
        _hint_shown = True
    (stream or sys.stderr).write(NOTEBOOK_HINT + "\n")
    log.info(NOTEBOOK_HINT)


def detect_display_mode(
    requested: str = "auto",
    *,
    environ: Mapping[str, str] | None = None,
    shell: Any | None = None,
    hint_stream: TextIO | None = None,
) -> Literal["widget", "html", "text", "off"]:
    """The display mode to use.

    Args:
        requested: ``auto`` or a mode; an explicit mode wins over the environment.
        environ: environment to read (default ``os.environ``); ``KTRDR_PROGRESS`` there
            replaces ``auto``.
        shell: the IPython shell to inspect (default: the running one, if any).
        hint_stream: where the one-time "install the notebook extra" hint goes (stderr).

    Returns:
        ``widget`` for a live notebook frontend with ipywidgets; ``text`` for plain Python,
        a terminal, a headless kernel (papermill, nbclient) or without ipywidgets; or the
        explicit choice.

    Raises:
        ConfigError: an unknown mode, or ``widget`` asked for explicitly without ipywidgets.
    """
    env = os.environ if environ is None else environ
    choice = requested.strip().lower()
    if choice == "auto":
        choice = env.get(PROGRESS_ENV_VAR, "").strip().lower() or "auto"
        if choice not in _MODES:
            raise ConfigError(
                f"{PROGRESS_ENV_VAR}={env[PROGRESS_ENV_VAR]!r} is not a display mode; use one "
                f"of {', '.join(_MODES)}"
            )
    elif choice not in _MODES:
        raise ConfigError(f"display mode {requested!r} is unknown; use one of {', '.join(_MODES)}")
    if choice == "widget" and _import_optional("ipywidgets") is None:
        raise ConfigError(
            "display mode 'widget' needs ipywidgets: `pip install 'ktrdr_lib[notebook]'`, or "
            "use display 'text' or 'html'"
        )
    if choice != "auto":
        return choice  # type: ignore[return-value]
    kernel_shell = _current_shell() if shell is None else shell
    if kernel_shell is None or getattr(kernel_shell, "kernel", None) is None:
        return "text"  # plain Python, a terminal, or terminal IPython
    if _is_headless_kernel(kernel_shell, env):
        return "text"
    if _import_optional("ipywidgets") is None:
        _show_hint(hint_stream)
        return "text"
    return "widget"


# -- bookkeeping -----------------------------------------------------------------------------


class ViewState:
    """What the view knows: the latest snapshot, the epoch curve, and what just changed.

    Args:
        operation_id: the operation shown.
    """

    def __init__(self, operation_id: str) -> None:
        self.operation_id = operation_id
        self.latest: ProgressSnapshot | None = None
        self.curve: list[EpochHistoryRow] = []
        self.snapshots_seen = 0
        self.record: OperationSnapshot | None = None

    def apply(self, snap: ProgressSnapshot) -> set[str]:
        """Take a snapshot; returns the events it brings (``phase``, ``epoch``, ``final``)."""
        previous = self.latest
        if previous is not None and snap.sequence <= previous.sequence:
            return set()
        self.latest = snap
        self.snapshots_seen += 1
        events: set[str] = set()
        if previous is None or snap.phase != previous.phase:
            events.add("phase")
        last_epoch = self.curve[-1].epoch if self.curve else 0
        if snap.metrics_epoch > last_epoch:
            m = snap.metrics
            self.curve.append(
                EpochHistoryRow(
                    epoch=snap.metrics_epoch,
                    train_loss=m.get("train_loss"),
                    train_accuracy=m.get("train_accuracy"),
                    val_loss=m.get("val_loss"),
                    val_accuracy=m.get("val_accuracy"),
                )
            )
            events.add("epoch")
        if snap.status in FINAL_STATUSES:
            events.add("final")
        return events

    def set_history(self, rows: Sequence[EpochHistoryRow]) -> None:
        """Replace the curve with the stored epoch history (when it has at least as much)."""
        if len(rows) >= len(self.curve):
            self.curve = list(rows)

    @property
    def status(self) -> str:
        """The status shown: the final record's when known, else the latest snapshot's."""
        if self.record is not None:
            return self.record.status
        return self.latest.status if self.latest is not None else "pending"

    @property
    def is_final(self) -> bool:
        """Whether the view has shown the run's end."""
        return self.status in FINAL_STATUSES


# -- text pieces (shared by every renderer) -------------------------------------------------


def _duration(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "–"
    total = round(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _number(value: Any, digits: int = 4) -> str:
    return f"{value:.{digits}f}" if isinstance(value, int | float) else "–"


def _position(snap: ProgressSnapshot) -> str:
    if snap.total_epochs and snap.epoch:
        text = f"Epoch {snap.epoch}/{snap.total_epochs}"
        if snap.total_batches:
            text += f" · Batch {snap.batch}/{snap.total_batches}"
        return text
    return snap.message


def _times(snap: ProgressSnapshot) -> str:
    text = f"elapsed {_duration(snap.elapsed_s)}"
    if snap.status not in FINAL_STATUSES:
        text += f" · ETA {_duration(snap.eta_s)}"
    return text


def _metrics_text(metrics: Mapping[str, float | None]) -> str:
    parts = []
    for split in ("train", "val"):
        loss, acc = metrics.get(f"{split}_loss"), metrics.get(f"{split}_accuracy")
        if loss is not None or acc is not None:
            parts.append(f"{split} loss {_number(loss)} acc {_number(acc, 3)}")
    if not parts and metrics.get("train_loss_batch") is not None:
        parts.append(f"batch loss {_number(metrics['train_loss_batch'])}")
    return " · ".join(parts)


def _device_text(snap: ProgressSnapshot) -> str:
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


def summary_table(record: OperationSnapshot) -> list[tuple[str, str]]:
    """The rows of a final summary: ``(label, value)`` pairs from the operation record.

    Works for completed runs (the TrainingResult) and for cancelled or failed ones (their
    partial result and error), never raising on missing pieces.
    """
    result = record.result
    rows = [("operation", f"{record.operation_id} ({record.status})")]
    if result is not None:
        info, tm, test = result.session_info, result.training_metrics, result.test_metrics
        where = " ".join([", ".join(info.symbols), ", ".join(info.timeframes)])
        rows.append(("strategy", f"{info.strategy} ({where}, {record.mode})"))
        stopped = "yes" if tm.early_stopped else "no"
        rows.append(
            ("epochs", f"{tm.epochs_completed} (best {tm.best_epoch}, early stop {stopped})")
        )
        rate = tm.samples_per_second
        speed = f" · {rate:,.0f} samples/s" if rate is not None else ""
        rows.append(("training time", f"{_duration(tm.training_time_s)}{speed}"))
        rows.append(
            (
                "train loss / acc",
                f"{_number(tm.final_train_loss)} / {_number(tm.final_train_accuracy, 3)}",
            )
        )
        rows.append(
            (
                "val loss / acc",
                f"{_number(tm.final_val_loss)} / {_number(tm.final_val_accuracy, 3)}",
            )
        )
        if test is not None:
            acc, f1 = _number(test.accuracy, 3), _number(test.f1, 3)
            rows.append(("test", f"accuracy {acc} · f1 {f1} · loss {_number(test.loss)}"))
        if result.artifacts.model_id:
            rows.append(
                ("model", f"{result.artifacts.model_id}  {result.artifacts.model_path or ''}")
            )
    if record.cancellation_reason:
        rows.append(("stop reason", record.cancellation_reason))
    if record.error_message:
        rows.append(("error", record.error_message))
    return rows


def _table_text(rows: Sequence[tuple[str, str]]) -> str:
    width = max(len(label) for label, _ in rows)
    rule = "─" * (width + 2 + max(len(value) for _, value in rows))
    body = "\n".join(f"{label.ljust(width)}  {value}" for label, value in rows)
    return f"{rule}\n{body}\n{rule}\n"


def _table_html(rows: Sequence[tuple[str, str]]) -> str:
    cells = "".join(
        f"<tr><th style='text-align:left;padding-right:1em'>{html.escape(label)}</th>"
        f"<td style='text-align:left'>{html.escape(value)}</td></tr>"
        for label, value in rows
    )
    return f"<table>{cells}</table>"


# -- curve (SVG drawn here: no plotting dependency) ------------------------------------------

_SERIES: tuple[tuple[str, str, str, str], ...] = (
    # panel, row field, colour, dash
    ("loss", "train_loss", "#1f77b4", ""),
    ("loss", "val_loss", "#ff7f0e", "4 2"),
    ("accuracy", "train_accuracy", "#1f77b4", ""),
    ("accuracy", "val_accuracy", "#ff7f0e", "4 2"),
)


def _panel_svg(
    rows: Sequence[EpochHistoryRow], panel: str, x0: float, width: float, height: float
) -> str:
    series = [(f, c, d) for p, f, c, d in _SERIES if p == panel]
    values = [
        float(v)
        for f, _, _ in series
        for row in rows
        if isinstance(v := getattr(row, f), int | float) and math.isfinite(v)
    ]
    parts = [
        f"<text x='{x0 + 4}' y='12' font-size='11' fill='#555'>{panel} per epoch</text>",
        f"<rect x='{x0}' y='16' width='{width}' height='{height - 20}' fill='none' stroke='#ddd'/>",
    ]
    if not values:
        return "".join(parts)
    low, high = min(values), max(values)
    span = (high - low) or 1.0
    last_epoch = max(row.epoch for row in rows)
    first_epoch = min(row.epoch for row in rows)
    epochs = (last_epoch - first_epoch) or 1

    def xy(epoch: int, value: float) -> str:
        x = x0 + 4 + (width - 8) * (epoch - first_epoch) / epochs
        y = 20 + (height - 28) * (1 - (value - low) / span)
        return f"{x:.1f},{y:.1f}"

    for field, colour, dash in series:
        points = [
            xy(row.epoch, float(v))
            for row in rows
            if isinstance(v := getattr(row, field), int | float) and math.isfinite(v)
        ]
        if len(points) == 1:
            cx, cy = points[0].split(",")
            parts.append(f"<circle cx='{cx}' cy='{cy}' r='2' fill='{colour}'/>")
        elif points:
            dashes = f" stroke-dasharray='{dash}'" if dash else ""
            parts.append(
                f"<polyline points='{' '.join(points)}' fill='none' stroke='{colour}' "
                f"stroke-width='1.5'{dashes}/>"
            )
    parts.append(
        f"<text x='{x0 + width - 4}' y='12' font-size='10' fill='#888' text-anchor='end'>"
        f"{low:.3g}–{high:.3g}</text>"
    )
    return "".join(parts)


def curve_svg(rows: Sequence[EpochHistoryRow], *, width: int = 560, height: int = 110) -> str:
    """Loss and accuracy per epoch (train solid, validation dashed) as an inline SVG."""
    half = (width - 10) / 2
    legend = (
        f"<text x='4' y='{height - 2}' font-size='10' fill='#1f77b4'>— train</text>"
        f"<text x='60' y='{height - 2}' font-size='10' fill='#ff7f0e'>-- validation</text>"
    )
    return (
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height + 8}' "
        f"role='img' aria-label='training curves'>"
        f"{_panel_svg(rows, 'loss', 0, half, height - 6)}"
        f"{_panel_svg(rows, 'accuracy', half + 10, half, height - 6)}{legend}</svg>"
    )


# -- renderers ---------------------------------------------------------------------------------


class _Renderer:
    """Draws a ViewState; the base draws nothing (mode ``off``)."""

    def render(self, state: ViewState, events: set[str]) -> None:
        """Show the latest snapshot."""

    def finish(self, state: ViewState) -> None:
        """Show the end of the run (``state.record`` holds the final record when known)."""

    def note(self, text: str) -> None:
        """Show a one-off message (e.g. why a cancel was refused)."""

    def close(self) -> None:
        """Stop showing (widgets are closed)."""


class _TextRenderer(_Renderer):
    """Compact lines: per phase, per epoch (thinned past ``max_epoch_lines``), and a
    progress line every ``every_percent`` % or ``every_s`` seconds of training."""

    def __init__(
        self,
        stream: TextIO | None,
        *,
        every_percent: float,
        every_s: float,
        max_epoch_lines: int,
        clock: Any = time.monotonic,
    ) -> None:
        self._stream = stream
        self.every_percent = every_percent
        self.every_s = every_s
        self.max_epoch_lines = max_epoch_lines
        self._clock = clock
        self._last_line = clock()
        self._next_mark = every_percent
        self._device_shown = False
        self.lines_written = 0

    def _write(self, text: str) -> None:
        stream = self._stream or sys.stdout  # looked up late: kernels swap sys.stdout
        stream.write(text + "\n")
        stream.flush()
        self.lines_written += 1
        self._last_line = self._clock()

    def note(self, text: str) -> None:
        self._write(f"[note] {text}")

    def _mark_passed(self, pct: float) -> bool:
        if pct < self._next_mark:
            return False
        self._next_mark = (math.floor(pct / self.every_percent) + 1) * self.every_percent
        return True

    def render(self, state: ViewState, events: set[str]) -> None:
        snap = state.latest
        if snap is None or "final" in events:
            return
        if "phase" in events and snap.phase != "queued":
            self._write(f"[{snap.phase}] {snap.percentage:5.1f}% · {snap.message}")
            self._mark_passed(snap.percentage)
        device = _device_text(snap)
        if device and not self._device_shown:
            self._device_shown = True
            self._write(f"[device] {device}")
        if "epoch" in events:
            row = state.curve[-1]
            step = max(1, math.ceil(snap.total_epochs / self.max_epoch_lines))
            if row.epoch % step == 0 or row.epoch == snap.total_epochs:
                self._mark_passed(snap.percentage)
                self._write(
                    f"[train] {snap.percentage:5.1f}% · Epoch {row.epoch}/{snap.total_epochs}"
                    f" · {_metrics_text(snap.metrics)} · {_times(snap)}"
                )
                return
        if snap.phase == "train" and snap.batch:
            due = self._clock() - self._last_line >= self.every_s
            if self._mark_passed(snap.percentage) or due:
                self._write(f"[train] {snap.percentage:5.1f}% · {_position(snap)} · {_times(snap)}")

    def finish(self, state: ViewState) -> None:
        snap, record = state.latest, state.record
        status = record.status if record is not None else state.status
        elapsed = _duration(snap.elapsed_s) if snap is not None else "–"
        self._write(f"[{status}] {snap.message if snap else status} · elapsed {elapsed}")
        if record is not None:
            stream = self._stream or sys.stdout
            text = _table_text(summary_table(record))
            stream.write(text)
            stream.flush()
            self.lines_written += text.count("\n")


def _view_html(state: ViewState) -> dict[str, str]:
    """The HTML pieces of the picture (shared by the widget and the static HTML view)."""
    snap = state.latest or ProgressSnapshot(operation_id=state.operation_id)
    status = state.status
    headline = (
        f"<b>{html.escape(snap.phase)}</b> · {snap.percentage:.1f}% · "
        f"{html.escape(_position(snap))} <span style='color:#888'>({status})</span>"
    )
    metrics = _metrics_text(snap.metrics)
    return {
        "headline": headline,
        "times": html.escape(_times(snap)),
        "metrics": html.escape(metrics) if metrics else "<span style='color:#888'>–</span>",
        "device": html.escape(_device_text(snap)),
        "curve": curve_svg(state.curve) if state.curve else "",
    }


class _WidgetRenderer(_Renderer):
    """ipywidgets: bar, text lines, curve, and the two buttons."""

    def __init__(self, view: TrainingProgress, widgets: Any) -> None:
        self.widgets = widgets
        w = widgets
        self.title = w.HTML(f"<b>Training</b> <code>{html.escape(view.op.operation_id)}</code>")
        self.bar = w.FloatProgress(
            value=0.0, min=0.0, max=100.0, description="0%", bar_style="info"
        )
        self.headline = w.HTML("queued")
        self.times = w.HTML("")
        self.metrics = w.HTML("")
        self.device = w.HTML("", layout=w.Layout(display="none"))
        self.curve = w.HTML("")
        self.cancel_button = w.Button(
            description="Cancel",
            button_style="danger",
            icon="stop",
            tooltip="Abort now (within one batch); nothing is saved",
        )
        self.stop_button = w.Button(
            description="Stop after this epoch",
            button_style="warning",
            tooltip="Stop training gracefully: skip the remaining epochs, then evaluate and "
            "save what was learned",
        )
        self.cancel_button.on_click(lambda _button: view.cancel())
        self.stop_button.on_click(lambda _button: view.cancel(graceful=True))
        self.message = w.HTML("")
        self.summary = w.HTML("")
        self.root = w.VBox(
            [
                self.title,
                w.HBox([self.bar, self.headline]),
                self.times,
                self.metrics,
                self.device,
                self.curve,
                w.HBox([self.cancel_button, self.stop_button]),
                self.message,
                self.summary,
            ]
        )

    def render(self, state: ViewState, events: set[str]) -> None:
        snap = state.latest
        if snap is None:
            return
        pieces = _view_html(state)
        self.bar.value = snap.percentage
        self.bar.description = f"{snap.percentage:.0f}%"
        self.bar.bar_style = BAR_STYLES.get(state.status, "info")
        self.headline.value = pieces["headline"]
        self.times.value = pieces["times"]
        self.metrics.value = pieces["metrics"]
        if pieces["device"]:
            self.device.value = pieces["device"]
            self.device.layout.display = None
        if "epoch" in events or ("final" in events and pieces["curve"]):
            self.curve.value = pieces["curve"]

    def finish(self, state: ViewState) -> None:
        self.render(state, {"final"})
        self.bar.bar_style = BAR_STYLES.get(state.status, "info")
        self.cancel_button.disabled = True
        self.stop_button.disabled = True
        if state.curve:
            self.curve.value = curve_svg(state.curve)
        if state.record is not None:
            self.summary.value = _table_html(summary_table(state.record))

    def note(self, text: str) -> None:
        self.message.value = f"<span style='color:#a60'>{html.escape(text)}</span>"

    def close(self) -> None:
        self.root.close()


class _HtmlRenderer(_Renderer):
    """Static HTML updated in place through an IPython display handle (no buttons)."""

    def __init__(self) -> None:
        self.markup = ""
        self._handle: Any | None = None
        self._note = ""

    def _draw(self, state: ViewState, summary: str = "") -> None:
        snap = state.latest
        pct = snap.percentage if snap is not None else 0.0
        colour = {
            "success": "#5cb85c",
            "danger": "#d9534f",
            "warning": "#f0ad4e",
        }.get(BAR_STYLES.get(state.status, "info"), "#5bc0de")
        pieces = _view_html(state)
        device = f"<div>{pieces['device']}</div>" if pieces["device"] else ""
        note = f"<div style='color:#a60'>{html.escape(self._note)}</div>" if self._note else ""
        self.markup = (
            f"<div class='ktrdr-progress' data-status='{state.status}'>"
            f"<div style='background:#eee;width:100%;max-width:560px;height:14px'>"
            f"<div style='background:{colour};width:{pct:.1f}%;height:14px'></div></div>"
            f"<div>{pieces['headline']}</div><div>{pieces['times']}</div>"
            f"<div>{pieces['metrics']}</div>{device}{pieces['curve']}{note}{summary}</div>"
        )
        display = _import_optional("IPython.display")
        if display is None or _current_shell() is None:
            return
        if self._handle is None:
            self._handle = display.display(display.HTML(self.markup), display_id=True)
        else:
            self._handle.update(display.HTML(self.markup))

    def render(self, state: ViewState, events: set[str]) -> None:
        self._draw(state)

    def finish(self, state: ViewState) -> None:
        summary = _table_html(summary_table(state.record)) if state.record is not None else ""
        self._draw(state, summary)

    def note(self, text: str) -> None:
        self._note = text


# -- the view --------------------------------------------------------------------------------


class TrainingProgress:
    """A live view of one training operation (widget, HTML, text, or nothing).

    Args:
        op: the operation (an :class:`~ktrdr_lib.operations.handle.OperationHandle`).
        mode: ``auto`` (see :func:`detect_display_mode`), ``widget``, ``html``, ``text`` or
            ``off``.
        stream: where text goes (default: ``sys.stdout`` at the time of writing).
        interval: seconds between redraws (phase changes, epoch ends and the end always
            redraw at once).
        text_every_percent: text mode prints a progress line each time training passes
            another multiple of this percentage...
        text_every_s: ...or when this many seconds passed since the last line.
        max_epoch_lines: text mode prints every epoch up to this many epochs, then every
            k-th so that about this many epoch lines appear.
        start: start following at once (else call :meth:`start`).
        show: display the widget or HTML in the running notebook at once.

    Example:
        >>> view = TrainingProgress(op)                     # doctest: +SKIP
        >>> view.cancel_button.click()                      # doctest: +SKIP
    """

    @classmethod
    def check_mode(cls, mode: str) -> str:
        """The display mode ``mode`` resolves to here (ConfigError for an unknown one)."""
        return detect_display_mode(mode)

    def __init__(
        self,
        op: OperationHandle,
        mode: str = "auto",
        *,
        stream: TextIO | None = None,
        interval: float = 0.25,
        text_every_percent: float = 10.0,
        text_every_s: float = 30.0,
        max_epoch_lines: int = 50,
        start: bool = True,
        show: bool = True,
    ) -> None:
        if interval < 0:
            raise ConfigError(f"interval must be >= 0 seconds, got {interval}")
        if not 0 < text_every_percent <= 100:
            raise ConfigError(f"text_every_percent must be in (0, 100], got {text_every_percent}")
        if text_every_s <= 0 or max_epoch_lines < 1:
            raise ConfigError("text_every_s must be > 0 and max_epoch_lines >= 1")
        self.op = op
        self.mode = detect_display_mode(mode, hint_stream=stream)
        self.interval = interval
        self.state = ViewState(op.operation_id)
        self.renders = 0
        self._lock = threading.RLock()
        self._done = threading.Event()
        self._closed = False
        self._shown = False
        self._thread: threading.Thread | None = None
        self._last_render = 0.0
        self._widgets: _WidgetRenderer | None = None
        self._renderer: _Renderer
        if self.mode == "widget":
            self._widgets = _WidgetRenderer(self, importlib.import_module("ipywidgets"))
            self._renderer = self._widgets
        elif self.mode == "html":
            self._renderer = _HtmlRenderer()
        elif self.mode == "text":
            self._renderer = _TextRenderer(
                stream,
                every_percent=text_every_percent,
                every_s=text_every_s,
                max_epoch_lines=max_epoch_lines,
            )
        else:
            self._renderer = _Renderer()
        if show and self.mode == "widget" and _current_shell() is not None:
            self._ipython_display_()
        if start:
            self.start()

    # -- widget parts (widget mode only) ---------------------------------------------------

    def _widget_parts(self) -> _WidgetRenderer:
        if self._widgets is None:
            raise ConfigError(f"this view is in {self.mode!r} mode; widgets exist in 'widget' mode")
        return self._widgets

    @property
    def widget(self) -> Any:
        """The root ``ipywidgets.VBox``."""
        return self._widget_parts().root

    @property
    def bar(self) -> Any:
        """The ``FloatProgress`` bar."""
        return self._widget_parts().bar

    @property
    def cancel_button(self) -> Any:
        """The Cancel (abort) button."""
        return self._widget_parts().cancel_button

    @property
    def stop_button(self) -> Any:
        """The "Stop after this epoch" (graceful) button."""
        return self._widget_parts().stop_button

    @property
    def parts(self) -> Any:
        """All widgets by name (``headline``, ``times``, ``metrics``, ``device``, ``curve``,
        ``message``, ``summary``, ...)."""
        return self._widget_parts()

    @property
    def markup(self) -> str:
        """The latest HTML (html mode)."""
        return self._renderer.markup if isinstance(self._renderer, _HtmlRenderer) else ""

    @property
    def lines_written(self) -> int:
        """Lines written so far (text mode)."""
        return self._renderer.lines_written if isinstance(self._renderer, _TextRenderer) else 0

    def _ipython_display_(self) -> None:
        if self._shown:
            return  # already on screen (e.g. ``op.display()`` as a cell's last line)
        self._shown = True
        display = _import_optional("IPython.display")
        if display is None:
            return
        if self._widgets is not None:
            display.display(self._widgets.root)
        elif isinstance(self._renderer, _HtmlRenderer) and self._renderer.markup:
            display.display(display.HTML(self._renderer.markup))

    # -- following -------------------------------------------------------------------------

    def start(self) -> None:
        """Follow the operation in a background thread (once)."""
        if self._thread is not None:
            return
        self._thread = threading.Thread(
            target=self._follow, name=f"ktrdr-view-{self.op.operation_id}", daemon=True
        )
        self._thread.start()

    def _follow(self) -> None:
        try:
            if self.mode != "off":
                for snap in self.op.follow():
                    if self._closed:
                        return
                    self.update(snap)
            self._finish()
        except Exception:  # a view must never take the kernel down
            log.exception("progress view of %s stopped", self.op.operation_id)
        finally:
            self._done.set()

    def update(self, snap: ProgressSnapshot) -> None:
        """Take one snapshot; redraws when due (throttled) or when something changed."""
        with self._lock:
            events = self.state.apply(snap)
            now = time.monotonic()
            if not events and now - self._last_render < self.interval:
                return
            self._last_render = now
            self.renders += 1
            self._renderer.render(self.state, events)

    def _finish(self) -> None:
        record = self.op.info()
        try:
            rows = self.op.metrics().epochs
        except KtrdrError:
            rows = []
        with self._lock:
            if record.progress.sequence > (self.state.latest.sequence if self.state.latest else 0):
                self.state.apply(record.progress)
            self.state.record = record
            self.state.set_history(rows)
            if not self._closed:
                self._renderer.finish(self.state)

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until the view has shown the run's end; ``False`` if ``timeout`` passed."""
        if self._thread is None:
            self.start()
        return self._done.wait(timeout)

    # -- controls --------------------------------------------------------------------------

    def cancel(self, *, graceful: bool = False) -> None:
        """What the buttons do: abort, or (``graceful``) stop after the current work and save."""
        reason = "stopped from the notebook" if graceful else "cancelled from the notebook"
        try:
            self.op.cancel(graceful=graceful, reason=reason)
        except KtrdrError as exc:
            with self._lock:
                self._renderer.note(str(exc))
            return
        with self._lock:
            if self._widgets is not None:
                self._widgets.stop_button.disabled = True
                if not graceful:
                    self._widgets.cancel_button.disabled = True
                self._widgets.note(
                    "Stopping after the current batch, then evaluating and saving…"
                    if graceful
                    else "Cancelling…"
                )

    def close(self) -> None:
        """Stop redrawing and close the widgets (training goes on)."""
        with self._lock:
            self._closed = True
            self._renderer.close()

    def __repr__(self) -> str:
        return (
            f"TrainingProgress({self.op.operation_id!r}, mode={self.mode!r}, "
            f"status={self.state.status!r})"
        )
