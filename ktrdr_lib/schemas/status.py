"""Statuses, phases and modes: the words every part uses for where a run is."""

from __future__ import annotations

from typing import Literal

__all__ = [
    "ACTIVE_STATUSES",
    "FINAL_STATUSES",
    "CancelKind",
    "OperationStatus",
    "Phase",
    "PipelinePhase",
    "TrainingMode",
]

OperationStatus = Literal[
    "pending", "running", "cancelling", "completed", "failed", "cancelled", "interrupted"
]
CancelKind = Literal["graceful", "abort"]
"""What a cancel asked for: stop after the running epoch (then evaluate and save), or stop
within a batch."""
PipelinePhase = Literal["load_data", "indicators", "fuzzy", "labels", "train", "evaluate", "save"]
"""The phases a training pipeline goes through, in order."""
Phase = Literal[
    "queued", "load_data", "indicators", "fuzzy", "labels", "train", "evaluate", "save", "remote"
]
"""What a progress snapshot can show: the pipeline phases, plus waiting and remote runs."""
TrainingMode = Literal["local", "host", "ray"]
"""Where a run trains: in this process (or a child of it), on a training host, or in a worker
of a Ray cluster."""

FINAL_STATUSES: frozenset[str] = frozenset({"completed", "failed", "cancelled", "interrupted"})
ACTIVE_STATUSES: frozenset[str] = frozenset({"pending", "running", "cancelling"})
