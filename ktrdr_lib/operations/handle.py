"""OperationHandle: the user's grip on one training operation.

A handle is an operation id plus shortcuts to the orchestrator's calls for it. Its
:meth:`~OperationHandle.display` opens a live progress view; the view toolkit is found through
the ``ktrdr_lib.progress_views`` entry point (the package's own notebook view registers
there), so the core never imports a widget toolkit.

Example:
    >>> op = orch.start_training("rsi_mean_reversion", epochs=5)   # doctest: +SKIP
    >>> op.wait().status                                           # doctest: +SKIP
    'completed'
"""

from __future__ import annotations

from collections.abc import Iterator
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any, Protocol

from ktrdr_lib.errors import ConfigError
from ktrdr_lib.schemas.health import OperationMetrics
from ktrdr_lib.schemas.operations import OperationSnapshot
from ktrdr_lib.schemas.progress import ProgressSnapshot
from ktrdr_lib.schemas.results import TrainingResult

if TYPE_CHECKING:
    from ktrdr_lib.operations.orchestrator import TrainingOrchestrator

__all__ = ["VIEWS_ENTRY_POINT", "OperationHandle", "ProgressView", "progress_view_class"]

VIEWS_ENTRY_POINT = "ktrdr_lib.progress_views"


class ProgressView(Protocol):
    """A live view of one operation (the notebook's :class:`TrainingProgress`)."""

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the view has drawn the final state."""
        ...


class ProgressViewClass(Protocol):
    """What the ``ktrdr_lib.progress_views`` entry point names."""

    def __call__(self, handle: OperationHandle, mode: str, **options: Any) -> ProgressView:
        """Open a view of ``handle`` in ``mode``."""
        ...

    def check_mode(self, mode: str) -> str:
        """The mode ``mode`` resolves to here; ConfigError for an unknown one."""
        ...


def progress_view_class(name: str = "notebook") -> ProgressViewClass:
    """The installed progress view called ``name``.

    Raises:
        ConfigError: none is installed under that name.
    """
    for entry in entry_points(group=VIEWS_ENTRY_POINT):
        if entry.name == name:
            view: ProgressViewClass = entry.load()
            return view
    raise ConfigError(
        f"no progress view {name!r} is installed (entry point group {VIEWS_ENTRY_POINT!r}); "
        "reinstall ktrdr_lib (pip install -e '.[notebook]') or pass display='off'"
    )


class OperationHandle:
    """A training operation: its id plus shortcuts to the orchestrator's calls for it."""

    def __init__(self, orchestrator: TrainingOrchestrator, operation_id: str) -> None:
        self._orch = orchestrator
        self.operation_id = operation_id
        self.view: ProgressView | None = None  # the view display() opened last

    def __repr__(self) -> str:
        return f"OperationHandle({self.operation_id!r}, status={self.status!r})"

    @property
    def status(self) -> str:
        """The current status."""
        return self._orch.get_operation(self.operation_id).status

    def snapshot(self) -> ProgressSnapshot:
        """The latest progress snapshot."""
        return self._orch.get_operation(self.operation_id).progress

    def info(self) -> OperationSnapshot:
        """The whole operation record with its latest progress."""
        return self._orch.get_operation(self.operation_id)

    def cancel(self, *, graceful: bool = False, reason: str | None = None) -> OperationSnapshot:
        """Ask the run to stop (abort by default; ``graceful`` finishes, evaluates, saves)."""
        return self._orch.cancel(self.operation_id, graceful=graceful, reason=reason)

    def wait(self, timeout: float | None = None) -> OperationSnapshot:
        """Block until the operation is final (or ``timeout`` passes) and return it.

        When a progress view is open, also wait for it to draw the final state, so a
        headless notebook records the whole run in the cell that waits. In a notebook with a
        live view the view's buttons keep working while this blocks: the wait lets the
        kernel handle widget messages in between (see :mod:`ktrdr_lib.operations.waiting`).
        """
        record = self._orch.wait(self.operation_id, timeout=timeout)
        if self.view is not None and record.is_final:
            self.view.wait(timeout)
        return record

    def resume(self) -> OperationHandle:
        """Continue this stopped run from its last checkpoint as a new, linked operation
        (see :meth:`TrainingOrchestrator.resume`); returns the new operation's handle."""
        return self._orch.resume(self.operation_id)

    def result(self) -> TrainingResult:
        """The TrainingResult; StateConflictError unless the run completed."""
        return self._orch.result(self.operation_id)

    def follow(self, *, after: int = 0, timeout: float | None = None) -> Iterator[ProgressSnapshot]:
        """Live snapshots newer than ``after`` until the final one (see
        :meth:`TrainingOrchestrator.follow`)."""
        return self._orch.follow(self.operation_id, after=after, timeout=timeout)

    def metrics(self) -> OperationMetrics:
        """Epoch history and diagnostics."""
        return self._orch.metrics(self.operation_id)

    @property
    def orchestrator(self) -> TrainingOrchestrator:
        """The orchestrator this operation runs on."""
        return self._orch

    def display(self, mode: str = "auto", **options: Any) -> ProgressView:
        """Show this run's live progress view and return it (does not block).

        ``mode`` is ``auto``, ``widget``, ``html``, ``text`` or ``off``; ``options`` go to the
        view (:class:`ktrdr_lib.views.progress.TrainingProgress`; for a sweep,
        :class:`ktrdr_lib.views.sweep.progress.SweepProgress`: a row per trial).
        """
        kind = "sweep" if self.info().operation_type == "sweep" else "notebook"
        self.view = progress_view_class(kind)(self, mode, **options)
        return self.view
