"""Forgetting finished operations: they are kept for a while and at most so many.

A forgotten operation is gone from the operation store (its epoch history with it), from its
orchestrator's memory and from the checkpoints directory (the core's
:meth:`~ktrdr_lib.operations.orchestrator.TrainingOrchestrator.forget`); asking for it
afterwards answers 404. Operations still pending, running or cancelling are never touched.

The training host forgets its sessions after an hour (and deletes the model each one saved:
its client has downloaded it). The API (at start-up and every hour) and ``ktrdr operations
prune`` keep operations for ``KTRDR_KEEP_OPERATIONS_DAYS`` days (90) and at most
``KTRDR_KEEP_OPERATIONS`` of them (10,000), and keep the models they saved (a model is what a
user loads and predicts with, under its own name).

Example:
    >>> keeper = OperationRetention(orch, keep_s=7 * 86400, max_finished=100)  # doctest: +SKIP
    >>> keeper.prune()  # doctest: +SKIP
    ['op_training_20250101_...']
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path

from ktrdr_lib.errors import ConfigError
from ktrdr_lib.operations.orchestrator import TrainingOrchestrator
from ktrdr_lib.schemas.status import FINAL_STATUSES
from ktrdr_lib.settings import read_int

__all__ = [
    "KEEP_OPERATIONS_DAYS_ENV",
    "KEEP_OPERATIONS_ENV",
    "OperationRetention",
    "retention_settings",
]

KEEP_OPERATIONS_DAYS_ENV = "KTRDR_KEEP_OPERATIONS_DAYS"
KEEP_OPERATIONS_ENV = "KTRDR_KEEP_OPERATIONS"
_ALL = 1_000_000_000

log = logging.getLogger(__name__)


def retention_settings(env: Mapping[str, str] | None = None) -> tuple[float, int]:
    """The policy's settings (``env``, default ``os.environ``): seconds to keep
    finished operations (``KTRDR_KEEP_OPERATIONS_DAYS``, default 90 days) and how many to
    keep at most (``KTRDR_KEEP_OPERATIONS``, default 10,000).

    Raises:
        ConfigError: a setting that is not a whole number >= 1 (named).
    """
    days = read_int(KEEP_OPERATIONS_DAYS_ENV, env)
    return days * 86400.0, read_int(KEEP_OPERATIONS_ENV, env)


class OperationRetention:
    """Prunes an orchestrator's finished operations.

    Args:
        orchestrator: the server's orchestrator.
        keep_s: seconds a finished operation is kept (counted from when it finished).
        max_finished: most finished operations kept (the newest by finish time).
        delete_models: also delete the model version each forgotten operation saved (only
            inside the orchestrator's models directory).

    Raises:
        ConfigError: a negative ``keep_s`` or ``max_finished``.
    """

    def __init__(
        self,
        orchestrator: TrainingOrchestrator,
        *,
        keep_s: float,
        max_finished: int,
        delete_models: bool = False,
    ) -> None:
        if keep_s < 0:
            raise ConfigError(f"the time finished operations are kept must be >= 0, got {keep_s}")
        if max_finished < 0:
            raise ConfigError(
                f"the number of finished operations kept must be >= 0, got {max_finished}"
            )
        self.orchestrator = orchestrator
        self.keep_s = keep_s
        self.max_finished = max_finished
        self.delete_models = delete_models

    def prune(self, now: datetime | None = None) -> list[str]:
        """Forget what the limits no longer allow; returns the forgotten operation ids."""
        records, _ = self.orchestrator.store.list_records(status=sorted(FINAL_STATUSES), limit=_ALL)
        records.sort(key=lambda r: (r.finished_at or "", r.operation_id), reverse=True)
        cutoff = _iso((now or datetime.now(UTC)) - timedelta(seconds=self.keep_s))
        expired = {
            r.operation_id: r.result.artifacts.model_path if r.result is not None else None
            for rank, r in enumerate(records)
            if rank >= self.max_finished or (r.finished_at or "") < cutoff
        }
        if not expired:
            return []
        forgotten = self.orchestrator.forget(list(expired))
        if self.delete_models:
            for op_id in forgotten:
                self._delete_model(expired[op_id])
        if forgotten:
            log.info("forgot %d finished operation(s): %s", len(forgotten), forgotten)
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
