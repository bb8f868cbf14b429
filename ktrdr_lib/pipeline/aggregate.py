"""ResultAggregator: one TrainingResult shape from a local run, a host run or a partial run.

Whatever a run did not reach (a cancelled run has no test metrics, a run that failed before
training has no fit) is ``None`` in the result, never a missing key.
"""

from __future__ import annotations

import resource
import sys
from typing import TYPE_CHECKING, Any

import msgspec

from ktrdr_lib.schemas.results import (
    ArtifactsInfo,
    DataSummary,
    EpochReached,
    ResourceUsage,
    SessionInfo,
    TrainingMetrics,
    TrainingResult,
)

if TYPE_CHECKING:
    from ktrdr_lib.models.store import SavedModel
    from ktrdr_lib.pipeline.context import TrainingOperationContext
    from ktrdr_lib.pipeline.prepare import PreparedData
    from ktrdr_lib.schemas.progress import EpochHistoryRow, ProgressSnapshot
    from ktrdr_lib.schemas.results import ClassificationMetrics, RegressionMetrics
    from ktrdr_lib.training.fit import FitOutcome

__all__ = ["NOT_SAVING", "ResultAggregator", "no_model_reason"]

NOT_SAVING = "no model was saved: saving was turned off for this run (save_model=False, --no-save)"
"""``artifacts.no_model_reason`` of a completed run told not to save its model."""


def no_model_reason(ended: str, epochs_completed: int) -> str:
    """``artifacts.no_model_reason`` of a run that ended ``ended`` (cancelled or failed).

    Example:
        >>> no_model_reason("cancelled", 0)
        'no model was saved: the run was cancelled before completing its first epoch (a model \
is saved when a run completes, a graceful stop after a completed epoch included)'
    """
    when = (
        "before completing its first epoch"
        if epochs_completed == 0
        else f"after {epochs_completed} completed epoch{'s' if epochs_completed != 1 else ''}"
    )
    return (
        f"no model was saved: the run was {ended} {when} (a model is saved when a run "
        "completes, a graceful stop after a completed epoch included)"
    )


_decode_result = msgspec.json.Decoder(TrainingResult).decode


class ResultAggregator:
    """Builds :class:`TrainingResult`\\ s; every constructor returns the same keys."""

    @staticmethod
    def training_metrics(fit: FitOutcome) -> TrainingMetrics:
        """Final figures of a fit (the last history row) and how it ended."""
        last = fit.history[-1] if fit.history else None
        seconds = fit.training_time_s
        samples = fit.samples_per_epoch * max(fit.epochs_completed, 1)
        return TrainingMetrics(
            final_train_loss=last.train_loss if last else None,
            final_val_loss=last.val_loss if last else None,
            final_train_accuracy=last.train_accuracy if last else None,
            final_val_accuracy=last.val_accuracy if last else None,
            epochs_completed=fit.epochs_completed,
            best_epoch=fit.best_epoch,
            early_stopped=fit.early_stopped,
            stop_reason=fit.stop_reason,
            training_time_s=round(seconds, 3),
            samples_per_second=round(samples / seconds, 1) if seconds > 0 else None,
        )

    @staticmethod
    def data_summary(prepared: PreparedData) -> DataSummary:
        """Bars, samples, label distribution and features of the prepared data."""
        splits = prepared.splits
        summaries = prepared.split_summaries
        return DataSummary(
            bars=prepared.bars,
            samples={
                "train": len(splits.y_train),
                "validation": len(splits.y_val),
                "test": len(splits.y_test),
            },
            label_distribution=splits.label_distribution(),
            target_quantiles=splits.target_quantiles(),
            feature_count=len(splits.feature_names),
            feature_names=splits.feature_names,
            warmup_dropped=sum(s.warmup_dropped for s in summaries),
            unlabelled_tail_dropped=sum(s.unlabelled_tail_dropped for s in summaries),
            purged=sum(s.purged for s in summaries),
            feature_report=prepared.feature_report,
        )

    @staticmethod
    def resource_usage(
        accelerator: str,
        device: str,
        *,
        run_peak_rss_mb: float | None = None,
        phase_seconds: dict[str, float] | None = None,
    ) -> ResourceUsage:
        """This process's device, GPU memory (CUDA) and peak resident memory, with the run's
        own peak memory and phase times when given."""
        import torch

        rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        rss_mb = rss_kb / 1024 if sys.platform != "darwin" else rss_kb / 2**20
        gpu_name = peak = total = None
        if device.startswith("cuda") and torch.cuda.is_available():
            index = torch.device(device).index or 0
            gpu_name = torch.cuda.get_device_name(index)
            peak = round(torch.cuda.max_memory_allocated(index) / 2**20, 1)
            total = round(torch.cuda.get_device_properties(index).total_memory / 2**20, 1)
        return ResourceUsage(
            device=device,
            accelerator=accelerator,
            gpu_name=gpu_name,
            gpu_memory_peak_mb=peak,
            gpu_memory_total_mb=total,
            process_peak_rss_mb=round(rss_mb, 1),
            cpu_threads=torch.get_num_threads(),
            run_peak_rss_mb=None if run_peak_rss_mb is None else round(run_peak_rss_mb, 1),
            phase_seconds={
                phase: round(seconds, 3) for phase, seconds in (phase_seconds or {}).items()
            },
        )

    @staticmethod
    def session_info(
        context: TrainingOperationContext,
        *,
        started_at: str | None,
        finished_at: str | None,
        cancellation_reason: str | None = None,
        host_session_id: str | None = None,
    ) -> SessionInfo:
        """Who, what and when, from the context."""
        return SessionInfo(
            operation_id=context.operation_id,
            mode=context.mode,
            host_session_id=host_session_id,
            strategy=context.strategy_name,
            strategy_path=context.strategy_path,
            symbols=context.symbols,
            timeframes=context.timeframes,
            base_timeframe=context.base_timeframe,
            start_date=context.start_date,
            end_date=context.end_date,
            seed=context.seed,
            started_at=started_at,
            finished_at=finished_at,
            cancellation_reason=cancellation_reason,
            strategy_layout=context.strategy.layout,
            strategy_notices=list(context.strategy.notices),
            hyperparameter_sources=dict(context.strategy.hyperparameter_sources),
        )

    @classmethod
    def from_local(
        cls,
        context: TrainingOperationContext,
        *,
        training_metrics: TrainingMetrics,
        validation_metrics: ClassificationMetrics | None,
        test_metrics: ClassificationMetrics | None,
        data_summary: DataSummary,
        saved: SavedModel | None,
        validation_regression: RegressionMetrics | None = None,
        test_regression: RegressionMetrics | None = None,
        accelerator: str,
        device: str,
        started_at: str,
        finished_at: str,
        cancellation_reason: str | None,
        run_peak_rss_mb: float | None = None,
        phase_seconds: dict[str, float] | None = None,
    ) -> TrainingResult:
        """The result of a pipeline run in this process (``saved`` is ``None`` when the run
        was told not to save its model)."""
        artifacts = (
            ArtifactsInfo(no_model_reason=NOT_SAVING)
            if saved is None
            else ArtifactsInfo(
                model_id=saved.model_id,
                model_name=saved.name,
                model_version=saved.version,
                model_path=str(saved.path),
                size_bytes=saved.size_bytes,
            )
        )
        return TrainingResult(
            training_metrics=training_metrics,
            validation_metrics=validation_metrics,
            test_metrics=test_metrics,
            resource_usage=cls.resource_usage(
                accelerator, device, run_peak_rss_mb=run_peak_rss_mb, phase_seconds=phase_seconds
            ),
            artifacts=artifacts,
            session_info=cls.session_info(
                context,
                started_at=started_at,
                finished_at=finished_at,
                cancellation_reason=cancellation_reason,
            ),
            data_summary=data_summary,
            validation_regression=validation_regression,
            test_regression=test_regression,
        )

    @classmethod
    def partial(
        cls,
        context: TrainingOperationContext,
        *,
        history: list[EpochHistoryRow],
        started_at: str | None,
        finished_at: str | None,
        cancellation_reason: str | None = None,
        host_session_id: str | None = None,
        last_progress: ProgressSnapshot | None = None,
        phase_seconds: dict[str, float] | None = None,
    ) -> TrainingResult:
        """What is known of a run that did not finish (cancelled or failed): the epochs that
        ran to their end, how far the one it stopped in got (from ``last_progress``, the run's
        last progress), the seconds of the phases it went through (as its progress showed
        them), no evaluation, no artifacts."""
        complete = [row for row in history if row.val_loss is not None]
        last = complete[-1] if complete else None
        best = min(complete, key=lambda r: r.val_loss or float("inf")) if complete else None
        seconds = sum(row.duration_s or 0.0 for row in history)
        return TrainingResult(
            training_metrics=TrainingMetrics(
                final_train_loss=last.train_loss if last else None,
                final_val_loss=last.val_loss if last else None,
                final_train_accuracy=last.train_accuracy if last else None,
                final_val_accuracy=last.val_accuracy if last else None,
                epochs_completed=len(complete),
                best_epoch=best.epoch if best else None,
                early_stopped=True,
                stop_reason="cancelled" if cancellation_reason else "failed",
                training_time_s=round(seconds, 3),
                interrupted_epoch=cls._interrupted_epoch(last_progress, len(complete)),
            ),
            validation_metrics=None,
            test_metrics=None,
            resource_usage=ResourceUsage(
                device="unknown", accelerator="unknown", phase_seconds=dict(phase_seconds or {})
            ),
            artifacts=ArtifactsInfo(
                no_model_reason=no_model_reason(
                    "cancelled" if cancellation_reason else "failed", len(complete)
                )
            ),
            session_info=cls.session_info(
                context,
                started_at=started_at,
                finished_at=finished_at,
                cancellation_reason=cancellation_reason,
                host_session_id=host_session_id,
            ),
            data_summary=DataSummary(),
        )

    @staticmethod
    def _interrupted_epoch(
        progress: ProgressSnapshot | None, epochs_completed: int
    ) -> EpochReached | None:
        """The epoch a run stopped inside, from its last progress (``None`` when it stopped
        before training or at an epoch's end)."""
        if progress is None or progress.epoch <= epochs_completed or progress.total_batches < 1:
            return None
        if progress.phase not in ("train", "remote"):
            return None
        return EpochReached(
            epoch=progress.epoch,
            batches_completed=min(progress.batch, progress.total_batches),
            batches_total=progress.total_batches,
        )

    @staticmethod
    def from_host(
        payload: bytes | dict[str, Any] | TrainingResult,
        *,
        host_session_id: str,
        artifacts: ArtifactsInfo | None = None,
        operation_id: str | None = None,
    ) -> TrainingResult:
        """A host's result with the session id (and the local operation id) filled in and,
        once the model archive is registered locally, the local artifacts in place of the
        host's paths. The host ran it as a local run of its own; here it is a host run."""
        if isinstance(payload, TrainingResult):
            result = payload
        elif isinstance(payload, bytes):
            result = _decode_result(payload)
        else:
            result = msgspec.convert(payload, TrainingResult)
        info = msgspec.structs.replace(
            result.session_info,
            mode="host",
            host_session_id=host_session_id,
            operation_id=operation_id or result.session_info.operation_id,
        )
        return msgspec.structs.replace(
            result, session_info=info, artifacts=artifacts or result.artifacts
        )
