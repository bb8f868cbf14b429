"""The training pipeline: bars → indicators → fuzzy → labels → fit → evaluate → save.

:func:`run_training_pipeline` is the one copy of the training logic; the local runner, the
training host and the CLI all call it. It reports phases to an optional observer, checks the
cancel token between steps, and returns a :class:`TrainingResult`.

Example:
    >>> from ktrdr_lib import build_training_context, run_training_pipeline
    >>> result = run_training_pipeline(build_training_context("rsi_mean_reversion", epochs=2))
    >>> result.test_metrics.accuracy  # doctest: +SKIP
"""

from __future__ import annotations

import copy
import os
import platform
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec
import numpy as np

from ktrdr_lib.errors import OperationCancelled, TrainingError
from ktrdr_lib.features.dataset import DatasetSplits
from ktrdr_lib.pipeline.aggregate import ResultAggregator
from ktrdr_lib.pipeline.context import TrainingOperationContext
from ktrdr_lib.pipeline.memory import PeakMemory
from ktrdr_lib.pipeline.options import TrainerOptions
from ktrdr_lib.pipeline.prepare import PhaseObserver, PhaseSteps, PreparedData, prepare_data
from ktrdr_lib.progress.cancel_callback import CancelCallback
from ktrdr_lib.progress.cancellation import CancelToken
from ktrdr_lib.schemas.results import DataSummary, TrainingMetrics, TrainingResult
from ktrdr_lib.timestamps import utc_now

if TYPE_CHECKING:
    from ktrdr_lib.models.store import SavedModel
    from ktrdr_lib.schemas.results import (
        ClassificationMetrics,
        HonestEvaluation,
        RegressionMetrics,
        TrainingAnalytics,
    )
    from ktrdr_lib.training.analytics import DetailedAnalytics
    from ktrdr_lib.training.checkpoints import CheckpointPlan
    from ktrdr_lib.training.experiment_logging import ExperimentLogging
    from ktrdr_lib.training.fit import FitOutcome
    from ktrdr_lib.training.module import FuzzyMLP
    from ktrdr_lib.training.scaling import FeatureScaler

__all__ = ["PipelineOutput", "TrainerOptions", "execute_pipeline", "run_training_pipeline"]


def _scaled(splits: DatasetSplits, scaler: FeatureScaler) -> DatasetSplits:
    """The splits scaled in place: they are this run's own arrays (views of its feature
    matrix), so no second copy of the features is made. A recurrent model's window source is
    scaled instead (every row a window may reach), and each split's rows read back from it."""
    windows = splits.windows
    if windows is not None:
        scaler.transform(windows.source, in_place=True)
        return replace(
            splits,
            x_train=windows.source[windows.train_ends],
            x_val=windows.source[windows.val_ends],
            x_test=windows.source[windows.test_ends],
        )
    return replace(
        splits,
        x_train=scaler.transform(splits.x_train, in_place=True),
        x_val=scaler.transform(splits.x_val, in_place=True),
        x_test=scaler.transform(splits.x_test, in_place=True),
    )


def _windows(splits: DatasetSplits, split: str) -> tuple[np.ndarray, np.ndarray, int] | None:
    """A recurrent model's (rows, window ends, length) for ``split``; ``None`` for an MLP."""
    windows = splits.windows
    if windows is None:
        return None
    return windows.source, getattr(windows, f"{split}_ends"), windows.length


def _split_metrics(
    module: FuzzyMLP, splits: DatasetSplits, split: str
) -> tuple[ClassificationMetrics | None, RegressionMetrics | None]:
    """A split's figures: classification ones, or a regression's (the other ``None``)."""
    from ktrdr_lib.training.evaluation import evaluate, evaluate_regression

    x, y = getattr(splits, f"x_{split}"), getattr(splits, f"y_{split}")
    windows = _windows(splits, split)
    if splits.regression:
        train_mean = float(splits.y_train.mean())
        return None, evaluate_regression(module, x, y, train_mean=train_mean, windows=windows)
    majority = int(np.bincount(splits.y_train, minlength=len(splits.class_names)).argmax())
    return evaluate(module, x, y, majority_class=majority, windows=windows), None


@dataclass(frozen=True)
class PipelineOutput:
    """The raw outputs of one pipeline run; :class:`~ktrdr_lib.pipeline.aggregate.ResultAggregator`
    turns them into a TrainingResult.

    ``prepared.splits`` hold the features as the network saw them: scaled in place when the
    run scales (``scaler.transform`` of the raw rows
    :func:`~ktrdr_lib.inference.features_for_bars` rebuilds).
    """

    context: TrainingOperationContext
    prepared: PreparedData
    fit: FitOutcome
    training_metrics: TrainingMetrics
    data_summary: DataSummary
    validation_metrics: ClassificationMetrics | None
    test_metrics: ClassificationMetrics | None
    saved: SavedModel | None
    accelerator: str
    device: str
    started_at: str
    finished_at: str
    cancellation_reason: str | None
    validation_regression: RegressionMetrics | None = None
    test_regression: RegressionMetrics | None = None
    run_peak_rss_mb: float | None = None
    phase_seconds: dict[str, float] | None = None
    analytics: TrainingAnalytics | None = None
    evaluation: HonestEvaluation | None = None


def execute_pipeline(
    context: TrainingOperationContext,
    *,
    observer: PhaseObserver | None = None,
    token: CancelToken | None = None,
    callbacks: Sequence[Any] = (),
    trainer_options: TrainerOptions | None = None,
    save_model: bool = True,
    prepared: PreparedData | None = None,
) -> PipelineOutput:
    """Train the context's strategy end to end and return the raw outputs.

    Args:
        context: from :func:`~ktrdr_lib.pipeline.context.build_training_context`.
        observer: told about each phase.
        token: checked between steps and every batch; abort raises
            :class:`~ktrdr_lib.errors.OperationCancelled`, graceful stops evaluate and save.
            A run that completed no epoch saves no model: stopped, it raises
            OperationCancelled; otherwise TrainingError.
        callbacks: extra Lightning callbacks (progress views).
        trainer_options: accelerator, devices, strategy, precision.
        save_model: write the model to the ModelStore (on by default).
        prepared: the context's data, already prepared elsewhere (a Ray run's, shipped
            through the object store): the run starts at ``train`` and scales its own copy.

    Raises:
        DataError, TrainingError, OperationCancelled.
    """
    with PeakMemory() as memory:
        steps = PhaseSteps(observer, token)
        output = _execute(
            context,
            steps,
            token=token,
            callbacks=callbacks,
            options=trainer_options or TrainerOptions(),
            save_model=save_model,
            prepared=prepared,
        )
        steps.close()
    return replace(output, run_peak_rss_mb=memory.peak_mb, phase_seconds=dict(steps.seconds))


def _execute(
    context: TrainingOperationContext,
    steps: PhaseSteps,
    *,
    token: CancelToken | None,
    callbacks: Sequence[Any],
    options: TrainerOptions,
    save_model: bool,
    prepared: PreparedData | None = None,
) -> PipelineOutput:
    """:func:`execute_pipeline`'s work, each phase entered through ``steps``."""
    from ktrdr_lib.training.scaling import FeatureScaler

    started_at = utc_now()
    spec = context.strategy
    if prepared is None:
        prepared = prepare_data(context, steps=steps)
    else:  # shared (read-only in an object store): scaling in place needs the run's own copy
        prepared = replace(prepared, splits=copy.deepcopy(prepared.splits))
    raw = prepared.splits  # scaled in place below: the run holds one copy of its features
    modes = prepared.column_modes
    scaler = FeatureScaler.fit(raw.x_train, modes) if any(m != "none" for m in modes) else None
    splits = raw if scaler is None else _scaled(raw, scaler)

    per_rank = len(splits.y_train) // options.world_size
    batches = -(-per_rank // spec.model.training.batch_size)
    context = context.with_batches_per_epoch(batches)
    steps.enter("train", f"Training {context.total_epochs} epochs × {batches} batches")
    all_callbacks = list(callbacks)
    if token is not None:
        all_callbacks.append(CancelCallback(token, sync_every=options.cancel_sync_every))
    experiment = _experiment_logging(context)
    if experiment is not None:
        all_callbacks.append(experiment)
    analytics = _detailed_analytics(context, splits)
    if analytics is not None:
        all_callbacks.append(analytics)
    try:
        output = _fit_evaluate_save(
            context,
            steps,
            prepared,
            splits,
            scaler,
            all_callbacks,
            options,
            save_model=save_model,
            started_at=started_at,
            token=token,
            analytics=analytics,
        )
    except BaseException as exc:
        if experiment is not None:
            experiment.finish(
                {}, status="aborted" if isinstance(exc, OperationCancelled) else "failed", step=0
            )
        raise
    if experiment is not None:
        experiment.finish(
            _final_figures(output), status="success", step=output.fit.epochs_completed
        )
    return output


def _experiment_logging(context: TrainingOperationContext) -> ExperimentLogging | None:
    """The run's experiment-logging callback, or ``None`` when it has no loggers."""
    if not context.loggers:
        return None
    from ktrdr_lib.training.experiment_logging import ExperimentLogging
    from ktrdr_lib.training.loggers import experiment_loggers

    loggers = experiment_loggers(
        context.loggers,
        runs_dir=Path(context.runs_dir),
        strategy=context.model_name,
        operation_id=context.operation_id,
    )
    spec = context.strategy
    return ExperimentLogging(
        loggers,
        {
            "operation_id": context.operation_id,
            "strategy": context.strategy_name,
            "symbols": context.symbols,
            "timeframes": context.timeframes,
            "base_timeframe": context.base_timeframe,
            "start_date": context.start_date,
            "end_date": context.end_date,
            "seed": context.seed,
            "epochs": context.total_epochs,
            "labels": msgspec.to_builtins(spec.training.labels) if spec.training else None,
            "model": msgspec.to_builtins(spec.model),
        },
    )


def _detailed_analytics(
    context: TrainingOperationContext, splits: DatasetSplits
) -> DetailedAnalytics | None:
    """The run's analytics callback over the (scaled) validation split, or ``None`` when the
    run did not ask for analytics."""
    if not context.detailed_analytics:
        return None
    from ktrdr_lib.training.analytics import DetailedAnalytics

    windows = splits.windows
    if windows is None:
        return DetailedAnalytics(splits.x_val, splits.y_val, class_names=splits.class_names)
    return DetailedAnalytics(
        windows.source,
        splits.y_val,
        class_names=splits.class_names,
        windows=(windows.val_ends, windows.length),
    )


def _final_figures(output: PipelineOutput) -> dict[str, float | None]:
    """What the loggers record once the run is evaluated."""
    tm = output.training_metrics
    final: dict[str, float | None] = {
        "epochs_completed": float(tm.epochs_completed),
        "best_epoch": None if tm.best_epoch is None else float(tm.best_epoch),
        "training_time_s": tm.training_time_s,
        "early_stopped": float(tm.early_stopped),
    }
    test, regression = output.test_metrics, output.test_regression
    if test is not None:
        final.update(test_accuracy=test.accuracy, test_f1=test.f1, test_loss=test.loss)
    if regression is not None:
        final.update(
            test_mae=regression.mae,
            test_rmse=regression.rmse,
            test_directional_accuracy=regression.directional_accuracy,
        )
    return final


def _fit_evaluate_save(
    context: TrainingOperationContext,
    steps: PhaseSteps,
    prepared: PreparedData,
    splits: DatasetSplits,
    scaler: FeatureScaler | None,
    all_callbacks: list[Any],
    options: TrainerOptions,
    *,
    save_model: bool,
    started_at: str,
    token: CancelToken | None,
    analytics: DetailedAnalytics | None = None,
) -> PipelineOutput:
    """Fit, evaluate and save (the part of a run experiment loggers watch)."""
    from ktrdr_lib.models.store import ModelStore
    from ktrdr_lib.training.fit import fit_model

    spec = context.strategy
    raw = prepared.splits
    fit = fit_model(
        spec.model,
        splits,
        seed=context.seed,
        max_epochs=context.total_epochs,
        callbacks=all_callbacks,
        accelerator=options.accelerator,
        devices=options.devices,
        strategy=options.strategy,
        precision=options.precision,
        loss=spec.training,
        checkpoint=_checkpoint_plan(context, scaler),
    )
    if not fit.history:  # an untrained network is never evaluated or saved as a model
        if token is not None and token.is_set:
            token.mark_observed()
            raise OperationCancelled(
                f"{token.reason or 'stopped'} (before its first epoch completed, so no model "
                "was saved)"
            )
        raise TrainingError(
            "training stopped before its first epoch completed, so there is nothing to "
            "evaluate and no model was saved; a callback set trainer.should_stop mid-epoch "
            "(the graceful stop waits for the epoch's end)"
        )

    steps.enter("evaluate", "Evaluating on the validation and test splits")
    metrics = {split: _split_metrics(fit.module, splits, split) for split in ("val", "test")}
    val_metrics, val_regression = metrics["val"]
    test_metrics, test_regression = metrics["test"]
    evaluation = _honest_evaluation(spec, fit.module, splits, test_metrics, test_regression)
    device = str(next(fit.module.parameters()).device)
    training_metrics = ResultAggregator.training_metrics(fit)
    data_summary = ResultAggregator.data_summary(prepared)
    recorded = (
        analytics.analytics(fit, fuzzy_activity=prepared.feature_report.active_share)
        if analytics is not None and fit.global_rank == 0
        else None
    )

    saved = None
    if save_model and fit.global_rank == 0:  # one copy, however many ranks trained
        steps.enter("save", "Saving the model")
        saved = ModelStore(Path(context.models_dir)).save(
            strategy_name=context.model_name,
            module=fit.module,
            feature_names=raw.feature_names,
            scaler=scaler,
            model_spec_config=msgspec.to_builtins(spec.model),
            strategy_config=context.strategy_config(),
            metrics={
                "training": msgspec.to_builtins(training_metrics),
                "validation": msgspec.to_builtins(val_metrics or val_regression),
                "test": msgspec.to_builtins(test_metrics or test_regression),
                "history": msgspec.to_builtins(fit.history),
            },
            metadata={
                "operation_id": context.operation_id,
                "symbols": context.symbols,
                "timeframes": context.timeframes,
                "base_timeframe": context.base_timeframe,
                "start_date": context.start_date,
                "end_date": context.end_date,
                "seed": context.seed,
                "mode": context.mode,
                "data_summary": msgspec.to_builtins(data_summary),
                "python": platform.python_version(),
                "pid": os.getpid(),
            },
            analytics=recorded,
        )
    return PipelineOutput(
        context=context,
        prepared=prepared,
        fit=fit,
        training_metrics=training_metrics,
        data_summary=data_summary,
        validation_metrics=val_metrics,
        test_metrics=test_metrics,
        validation_regression=val_regression,
        test_regression=test_regression,
        saved=saved,
        accelerator=options.accelerator,
        device=device,
        started_at=started_at,
        finished_at=utc_now(),
        cancellation_reason=token.reason if token is not None and token.graceful else None,
        analytics=recorded,
        evaluation=evaluation,
    )


def run_training_pipeline(
    context: TrainingOperationContext,
    *,
    observer: PhaseObserver | None = None,
    token: CancelToken | None = None,
    callbacks: Sequence[Any] = (),
    trainer_options: TrainerOptions | None = None,
    save_model: bool = True,
    prepared: PreparedData | None = None,
) -> TrainingResult:
    """Train the context's strategy end to end and return its :class:`TrainingResult`.

    Same arguments as :func:`execute_pipeline`.
    """
    output = execute_pipeline(
        context,
        observer=observer,
        token=token,
        callbacks=callbacks,
        trainer_options=trainer_options,
        save_model=save_model,
        prepared=prepared,
    )
    result = ResultAggregator.from_local(
        output.context,
        training_metrics=output.training_metrics,
        validation_metrics=output.validation_metrics,
        test_metrics=output.test_metrics,
        validation_regression=output.validation_regression,
        test_regression=output.test_regression,
        data_summary=output.data_summary,
        saved=output.saved,
        accelerator=output.accelerator,
        device=output.device,
        started_at=output.started_at,
        finished_at=output.finished_at,
        cancellation_reason=output.cancellation_reason,
        run_peak_rss_mb=output.run_peak_rss_mb,
        phase_seconds=output.phase_seconds,
    )
    if output.evaluation is not None:
        result = msgspec.structs.replace(result, evaluation=output.evaluation)
    if output.analytics is None:
        return result
    return msgspec.structs.replace(result, analytics=output.analytics)


def _honest_evaluation(
    spec: Any,
    module: FuzzyMLP,
    splits: DatasetSplits,
    test_metrics: ClassificationMetrics | None,
    test_regression: RegressionMetrics | None,
) -> HonestEvaluation | None:
    """The model against its label kind's strongest baseline, and its signal economics, on
    the test split (:mod:`ktrdr_lib.training.honest`)."""
    from ktrdr_lib.training.evaluation import model_outputs
    from ktrdr_lib.training.honest import classification_evaluation, regression_evaluation

    outputs = model_outputs(module, splits.x_test, _windows(splits, "test"))
    if test_metrics is not None:
        return classification_evaluation(spec, splits, test_metrics, outputs)
    if test_regression is not None:
        return regression_evaluation(spec, splits, test_regression, outputs)
    return None


def _checkpoint_plan(
    context: TrainingOperationContext, scaler: FeatureScaler | None
) -> CheckpointPlan | None:
    """Where and how often the run checkpoints, with the fingerprints a resume checks; for a
    resumed run, the checkpoint it continues from (proven unchanged first). ``None`` when
    the run keeps no checkpoints."""
    if not context.checkpoint_dir:
        return None
    from ktrdr_lib.pipeline.resume import check_resumable, data_fingerprints, strategy_fingerprint
    from ktrdr_lib.training.checkpoints import LATEST_FILE, CheckpointMeta, CheckpointPlan

    resume_from, resume_epoch = None, 0
    if context.resume_from:  # the stopped run's checkpoint, checked again where it trains
        stopped = msgspec.structs.replace(
            context,
            operation_id=context.resumed_from or context.operation_id,
            checkpoint_dir=context.resume_from,
        )
        checked = check_resumable(stopped)
        resume_epoch = checked.epoch
        resume_from = Path(context.resume_from) / LATEST_FILE
        digests = checked.data_fingerprints  # proven equal to the files now: no second read
    else:
        digests = data_fingerprints(context)
    return CheckpointPlan(
        directory=Path(context.checkpoint_dir),
        every=context.checkpoint_every,
        meta=CheckpointMeta(
            operation_id=context.operation_id,
            epoch=0,
            best_epoch=0,
            total_epochs=context.total_epochs,
            strategy_fingerprint=strategy_fingerprint(context),
            data_fingerprints=digests,
        ),
        extras={"scaler": scaler, "resumed_from": context.resumed_from},
        resume_from=resume_from,
        resume_epoch=resume_epoch,
    )
