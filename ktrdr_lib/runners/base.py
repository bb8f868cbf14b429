"""The runner protocol and the one helper every in-process run goes through.

A runner takes a frozen context and a :class:`RunControl` (the run's cancel token and progress
tracker, and for remote runs the session link) and returns a
:class:`~ktrdr_lib.schemas.results.TrainingResult` or raises. The orchestrator calls every
runner the same way; a remote runner reports its session id through the control as soon as
the remote side accepts the run, and is handed a session id to follow instead of starting one
when an operation is re-attached after a restart.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from ktrdr_lib.errors import ConfigError
from ktrdr_lib.progress.cancellation import CancelToken
from ktrdr_lib.progress.tracker import ProgressTracker
from ktrdr_lib.schemas.results import TrainingResult

if TYPE_CHECKING:
    from ktrdr_lib.pipeline.context import TrainingOperationContext
    from ktrdr_lib.pipeline.options import TrainerOptions
    from ktrdr_lib.pipeline.prepare import PreparedData

__all__ = ["RunControl", "TrainingRunner", "run_with_progress"]


def _ignore_session(session_id: str) -> None:
    """The default session hook: nobody listens."""


@dataclass(frozen=True)
class RunControl:
    """What a runner gets besides the context.

    Attributes:
        token: the run's cancel token (the runner honours it every batch).
        tracker: where the run's progress goes.
        on_session: called with the remote session id once the remote side accepts the run.
        session_id: a remote session already running this operation: follow it to its end
            instead of starting a new one (re-attaching after a restart).
    """

    token: CancelToken
    tracker: ProgressTracker
    on_session: Callable[[str], None] = _ignore_session
    session_id: str | None = None

    def refuse_reattach(self, mode: str) -> None:
        """Raise unless this is a fresh run (runners that cannot re-attach call it)."""
        if self.session_id is not None:
            raise ConfigError(
                f"a {mode} runner cannot re-attach to session {self.session_id}; "
                "start the training again"
            )


class TrainingRunner(Protocol):
    """Executes one training operation.

    Attributes:
        mode: the operations it runs (``local`` or ``host``).
        can_reattach: whether it can follow a session another process started
            (``RunControl.session_id``); only remote runners can.
    """

    mode: str
    can_reattach: bool

    def run(self, context: TrainingOperationContext, control: RunControl) -> TrainingResult:
        """Train, reporting to ``control.tracker`` and honouring ``control.token``."""
        ...


def run_with_progress(
    context: TrainingOperationContext,
    *,
    token: CancelToken,
    tracker: ProgressTracker,
    trainer_options: TrainerOptions | None = None,
    save_model: bool = True,
    callbacks: Sequence[Any] = (),
    prepared: PreparedData | None = None,
) -> TrainingResult:
    """Run the pipeline here with the progress bridge attached: phases, batches and epochs go
    to ``tracker``, the token is checked between steps and every batch.

    This is the one copy of "tracker + progress bridge + pipeline" that the in-process runner,
    a child process, a Ray worker and every rank of a multi-device run go through.
    """
    from ktrdr_lib.pipeline.run import run_training_pipeline
    from ktrdr_lib.progress.bridge import ProgressBridge

    return run_training_pipeline(
        context,
        observer=tracker,
        token=token,
        callbacks=[ProgressBridge(tracker), *callbacks],
        trainer_options=trainer_options,
        save_model=save_model,
        prepared=prepared,
    )
