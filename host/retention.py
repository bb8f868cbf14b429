"""Forgetting finished sessions: kept ``retention_s`` seconds and at most ``max_finished``.

A forgotten session is gone from the host's operation store (its epoch history with it), from
its orchestrator's memory, and its saved model version is deleted from the host's model store;
asking for it afterwards answers 404.
"""

from __future__ import annotations

import logging
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

from ktrdr_lib.operations.orchestrator import TrainingOrchestrator
from ktrdr_lib.schemas.status import FINAL_STATUSES

__all__ = ["SessionRetention"]

log = logging.getLogger(__name__)


class SessionRetention:
    """Prunes an orchestrator's finished operations.

    Args:
        orchestrator: the host's orchestrator.
        retention_s: seconds a finished session is kept.
        max_finished: most finished sessions kept (the newest by finish time).
    """

    def __init__(
        self, orchestrator: TrainingOrchestrator, *, retention_s: float, max_finished: int
    ) -> None:
        if retention_s < 0:
            raise ValueError(f"retention_s must be >= 0, got {retention_s}")
        if max_finished < 0:
            raise ValueError(f"max_finished must be >= 0, got {max_finished}")
        self.orchestrator = orchestrator
        self.retention_s = retention_s
        self.max_finished = max_finished

    def prune(self, now: datetime | None = None) -> list[str]:
        """Forget what the limits no longer allow; returns the forgotten session ids."""
        records, _ = self.orchestrator.store.list_records(
            status=sorted(FINAL_STATUSES), limit=1_000_000
        )
        records.sort(key=lambda r: (r.finished_at or "", r.operation_id), reverse=True)
        cutoff = _iso((now or datetime.now(UTC)) - timedelta(seconds=self.retention_s))
        expired = {
            r.operation_id: r.result.artifacts.model_path if r.result is not None else None
            for rank, r in enumerate(records)
            if rank >= self.max_finished or (r.finished_at or "") < cutoff
        }
        forgotten = self.orchestrator.forget(list(expired))
        for op_id in forgotten:
            self._delete_model(expired[op_id])
        if forgotten:
            log.info("forgot %d finished session(s): %s", len(forgotten), forgotten)
        return forgotten

    def _delete_model(self, model_path: str | None) -> None:
        if not model_path:
            return
        path = Path(model_path).resolve()
        root = self.orchestrator.models_dir.resolve()
        if root in path.parents and path.is_dir():
            shutil.rmtree(path, ignore_errors=True)


def _iso(moment: datetime) -> str:
    """The store's timestamp format (``utc_now``), so text order is time order."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
