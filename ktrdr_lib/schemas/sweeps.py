"""Sweeps: many trainings of one strategy over a space of settings, ranked by a metric.

A sweep is an operation (``operation_type`` ``sweep``) whose trials are training operations of
their own (``metadata.sweep_id`` names the sweep), each with its progress, cancel and result.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

from ktrdr_lib.schemas.operations import OperationSnapshot
from ktrdr_lib.schemas.requests import TrainingRequest
from ktrdr_lib.schemas.status import OperationStatus

__all__ = [
    "SWEEP_METRICS",
    "SweepRequest",
    "SweepResult",
    "SweepSnapshot",
    "SweepTrial",
]

SWEEP_METRICS: dict[str, Literal["min", "max"]] = {
    "val_loss": "min",
    "val_accuracy": "max",
    "train_loss": "min",
    "train_accuracy": "max",
}
"""The metrics a sweep can rank by (every epoch reports them), with their natural direction."""

SearchKind = Literal["grid", "random"]
EarlyStop = Literal["asha"]


class SweepTrial(msgspec.Struct, frozen=True, kw_only=True):
    """One trial of a sweep, as it stands.

    Attributes:
        trial: the trial's number (0-based, in the order the search produced them).
        operation_id: the trial's own training operation.
        config: the overrides this trial trains with (dotted paths → values).
        status: the trial's operation status.
        epoch / total_epochs: epochs completed / the budget.
        metric: the best value of the sweep's metric over the epochs completed so far.
        best_epoch: the epoch that reached it.
        stopped_early: the early-stopping scheduler stopped it (after the epoch it was in; a
            stop that reached it in its last epoch stopped nothing and does not count).
        test_accuracy: the completed trial's test accuracy (classification), else ``None``.
        edge: the completed trial's edge over its strongest label-aware baseline
            (``evaluation.edge``: positive means the model beat it).
        model_name / model_version: the trial's saved model, once it completed.
        error_message: why it failed.
    """

    trial: int
    operation_id: str
    config: dict[str, Any]
    status: OperationStatus
    epoch: int = 0
    total_epochs: int = 0
    metric: float | None = None
    best_epoch: int | None = None
    stopped_early: bool = False
    test_accuracy: float | None = None
    edge: float | None = None
    model_name: str | None = None
    model_version: int | None = None
    error_message: str | None = None


class SweepResult(msgspec.Struct, frozen=True, kw_only=True):
    """A finished sweep: its trials ranked by the metric, best first.

    Attributes:
        metric / mode: what ranked the trials and which way (``min`` or ``max``).
        trials: every trial, best first; trials that reached no epoch come last.
        best_trial / best_operation_id: the winner (``None`` when no trial completed an epoch).
        best_model_name / best_model_version: the winner's model, saved again under the
            sweep's name for it (``<strategy>_sweep_best`` unless the sweep named it).
        preparations: data preparations done (trials with equal data share one).
        early_stopped: trials the scheduler stopped early.
    """

    metric: str
    mode: Literal["min", "max"]
    trials: list[SweepTrial]
    best_trial: int | None = None
    best_operation_id: str | None = None
    best_model_name: str | None = None
    best_model_version: int | None = None
    preparations: int = 0
    early_stopped: int = 0


class SweepSnapshot(msgspec.Struct, frozen=True, kw_only=True):
    """A sweep at one moment: its operation record, its settings and every trial's state.

    ``result`` is set once the sweep ended.
    """

    operation: OperationSnapshot
    strategy: str
    space: dict[str, Any]
    metric: str
    mode: Literal["min", "max"]
    search: SearchKind
    early_stop: EarlyStop | None
    max_concurrent: int
    trials: list[SweepTrial]
    result: SweepResult | None = None


class SweepRequest(TrainingRequest, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """What to sweep (the API's ``POST /api/v1/sweeps`` body): a strategy, a space of
    overrides, and the training request every trial shares.

    Attributes:
        strategy: the strategy's name.
        space: dotted override paths (``model.training.learning_rate``) → the values to try.
        metric: what ranks the trials (``val_loss``, ``val_accuracy``, ``train_loss``,
            ``train_accuracy``).
        mode: ``min`` or ``max`` (default: the metric's natural direction).
        search: ``grid`` (every combination, ``num_samples`` times) or ``random``
            (``num_samples`` draws, one value of each list per draw).
        num_samples: see ``search`` (default 1 for grid, 8 for random).
        max_concurrent: trials training at once (default: as many as the cluster's CPUs hold).
        early_stop: ``asha`` stops bad trials early (after the epoch they are in), or ``None``.
        grace_period: epochs every trial trains before ASHA may stop it.
        reduction_factor: ASHA's halving rate.
        best_model_name: the name the best trial's model is saved under again.
    """

    strategy: str
    space: dict[str, list[Any]]
    metric: str = "val_loss"
    mode: Literal["min", "max"] | None = None
    search: SearchKind = "grid"
    num_samples: Annotated[int, msgspec.Meta(ge=1, le=1000)] | None = None
    max_concurrent: Annotated[int, msgspec.Meta(ge=1, le=1000)] | None = None
    early_stop: EarlyStop | None = None
    grace_period: Annotated[int, msgspec.Meta(ge=1, le=100_000)] = 1
    reduction_factor: Annotated[float, msgspec.Meta(gt=1.0, le=1000.0)] = 2.0
    best_model_name: str | None = None
