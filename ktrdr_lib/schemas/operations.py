"""An operation as every reader sees it, pages of them, and the end of an event stream."""

from __future__ import annotations

from typing import Any

import msgspec

from ktrdr_lib.schemas.progress import ProgressSnapshot
from ktrdr_lib.schemas.results import TrainingResult
from ktrdr_lib.schemas.status import FINAL_STATUSES, CancelKind, OperationStatus

__all__ = ["FinalEvent", "OperationList", "OperationSnapshot"]


class OperationSnapshot(msgspec.Struct, frozen=True, kw_only=True):
    """An operation at one moment: its record plus its latest progress snapshot.

    ``result`` is the run's :class:`TrainingResult` once it ended (partial for a cancelled or
    failed run), else ``None``. ``cancel_kind`` is what a cancel asked for (``graceful`` or
    ``abort``; an abort may escalate a graceful stop, never the reverse), ``None`` when none was.
    """

    operation_id: str
    operation_type: str
    status: OperationStatus
    mode: str
    created_at: str
    started_at: str | None
    finished_at: str | None
    metadata: dict[str, Any]
    progress: ProgressSnapshot
    error_message: str | None
    cancellation_reason: str | None
    host_session_id: str | None
    result: TrainingResult | None
    cancel_kind: CancelKind | None = None

    @property
    def is_final(self) -> bool:
        """Whether the status is final."""
        return self.status in FINAL_STATUSES


class OperationList(msgspec.Struct, frozen=True, kw_only=True):
    """A page of operations, newest first."""

    items: list[OperationSnapshot]
    total_count: int
    active_count: int


class FinalEvent(msgspec.Struct, frozen=True, kw_only=True):
    """The last event of an operation's progress stream: its terminal status.

    ``sequence`` is the last snapshot sequence the run reached (never more).
    """

    operation_id: str
    status: str
    error_message: str | None = None
    cancellation_reason: str | None = None
    sequence: int = 0
