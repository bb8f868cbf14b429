"""Runners: where a training operation executes.

A runner takes a context, the operation's cancel token and its progress tracker, and returns a
:class:`~ktrdr_lib.results.TrainingResult` (or raises). :class:`LocalTrainingRunner` runs the
pipeline in this process; :class:`~ktrdr_lib.host_runner.HostTrainingRunner` (a remote
training host) implements :class:`HostRunner`, the same protocol plus an ``on_session`` hook
through which the orchestrator learns the host session id as soon as the host accepts the run.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

from ktrdr_lib.cancellation import CancelToken
from ktrdr_lib.context import TrainingOperationContext
from ktrdr_lib.pipeline import TrainerOptions, run_training_pipeline
from ktrdr_lib.progress import ProgressTracker
from ktrdr_lib.results import TrainingResult

__all__ = ["HostRunner", "LocalTrainingRunner", "TrainingRunner"]


class TrainingRunner(Protocol):
    """Executes one training operation."""

    mode: str

    def run(
        self,
        context: TrainingOperationContext,
        *,
        token: CancelToken,
        tracker: ProgressTracker,
    ) -> TrainingResult:
        """Train, reporting to ``tracker`` and honouring ``token``."""
        ...


class HostRunner(Protocol):
    """Executes training operations on a remote training host."""

    mode: str
    host_url: str

    def run(
        self,
        context: TrainingOperationContext,
        *,
        token: CancelToken,
        tracker: ProgressTracker,
        on_session: Callable[[str], None] | None = None,
    ) -> TrainingResult:
        """Train remotely; ``on_session`` gets the host session id once the host accepts."""
        ...


class LocalTrainingRunner:
    """Runs the training pipeline in this process with the progress bridge attached.

    Args:
        trainer_options: accelerator, devices, strategy and precision for Lightning.
        save_model: save each trained model to the ModelStore.
        callbacks: extra Lightning callbacks added to every run.
    """

    mode = "local"

    def __init__(
        self,
        trainer_options: TrainerOptions | None = None,
        *,
        save_model: bool = True,
        callbacks: Sequence[Any] = (),
    ) -> None:
        self.trainer_options = trainer_options or TrainerOptions()
        self.save_model = save_model
        self.callbacks = list(callbacks)

    def run(
        self,
        context: TrainingOperationContext,
        *,
        token: CancelToken,
        tracker: ProgressTracker,
    ) -> TrainingResult:
        """Run the pipeline; phases and batches go to ``tracker``."""
        from ktrdr_lib.progress_bridge import ProgressBridge

        return run_training_pipeline(
            context,
            observer=tracker,
            token=token,
            callbacks=[ProgressBridge(tracker), *self.callbacks],
            trainer_options=self.trainer_options,
            save_model=self.save_model,
        )
