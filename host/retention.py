"""Forgetting finished sessions: kept ``retention_s`` seconds and at most ``max_finished``.

A forgotten session is gone from the host's operation store (its epoch history with it), from
its orchestrator's memory, and its saved model version is deleted from the host's model store
(the client downloaded it when the session completed); asking for it afterwards answers 404.
The policy is the core's (:class:`~ktrdr_lib.operations.retention.OperationRetention`).
"""

from __future__ import annotations

from ktrdr_lib.operations.orchestrator import TrainingOrchestrator
from ktrdr_lib.operations.retention import OperationRetention

__all__ = ["SessionRetention"]


class SessionRetention(OperationRetention):
    """Prunes the host's finished sessions, and the models they saved.

    Args:
        orchestrator: the host's orchestrator.
        retention_s: seconds a finished session is kept.
        max_finished: most finished sessions kept (the newest by finish time).
    """

    def __init__(
        self, orchestrator: TrainingOrchestrator, *, retention_s: float, max_finished: int
    ) -> None:
        super().__init__(
            orchestrator, keep_s=retention_s, max_finished=max_finished, delete_models=True
        )
        self.retention_s = retention_s
