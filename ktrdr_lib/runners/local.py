"""LocalTrainingRunner: the pipeline in a worker thread of this process."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ktrdr_lib.pipeline.options import TrainerOptions
from ktrdr_lib.runners.base import RunControl, run_with_progress
from ktrdr_lib.schemas.results import TrainingResult

if TYPE_CHECKING:
    from ktrdr_lib.pipeline.context import TrainingOperationContext

__all__ = ["LocalTrainingRunner"]


class LocalTrainingRunner:
    """Runs the training pipeline in this process with the progress bridge attached.

    Args:
        trainer_options: accelerator, devices, strategy and precision for Lightning.
        save_model: save each trained model to the ModelStore.
        callbacks: extra Lightning callbacks added to every run.

    Example:
        >>> LocalTrainingRunner().mode
        'local'
    """

    mode = "local"
    can_reattach = False

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

    def run(self, context: TrainingOperationContext, control: RunControl) -> TrainingResult:
        """Run the pipeline; phases and batches go to ``control.tracker``."""
        control.refuse_reattach(self.mode)
        return run_with_progress(
            context,
            token=control.token,
            tracker=control.tracker,
            trainer_options=self.trainer_options,
            save_model=self.save_model,
            callbacks=self.callbacks,
        )
