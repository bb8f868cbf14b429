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

import os
import platform
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

import msgspec
import numpy as np
import pandas as pd

from ktrdr_lib.cancellation import CancelCallback, CancelToken
from ktrdr_lib.context import TrainingOperationContext
from ktrdr_lib.data.loader import load_ohlcv, require_bars
from ktrdr_lib.errors import TrainingError
from ktrdr_lib.features.dataset import (
    DatasetSplits,
    SplitSummary,
    assemble_features,
    build_symbol_dataset,
    compute_timeframe_features,
    concat_splits,
    indicator_values,
    warmup_history,
)
from ktrdr_lib.features.indicators import indicator_warmup
from ktrdr_lib.features.labels import LABEL_NAMES
from ktrdr_lib.results import BarsSummary, TrainingResult

if TYPE_CHECKING:
    from ktrdr_lib.models.store import SavedModel
    from ktrdr_lib.training.evaluation import ClassificationMetrics
    from ktrdr_lib.training.fit import FitOutcome

__all__ = [
    "MIN_SAMPLES",
    "Phase",
    "PhaseObserver",
    "PipelineOutput",
    "PreparedData",
    "TrainerOptions",
    "execute_pipeline",
    "prepare_data",
    "run_training_pipeline",
]

Phase = Literal["load_data", "indicators", "fuzzy", "labels", "train", "evaluate", "save"]
MIN_SAMPLES = 60  # usable rows below which a split is meaningless


class PhaseObserver(Protocol):
    """Receives the pipeline's phase changes (progress views implement it)."""

    def on_phase(self, phase: Phase, message: str) -> None:
        """Called when a phase starts."""


@dataclass(frozen=True)
class TrainerOptions:
    """How Lightning runs the fit (the host sets these; local runs keep the defaults)."""

    accelerator: str = "auto"
    devices: int | str = 1
    strategy: str = "auto"
    precision: str | None = None
    cancel_sync_every: int = 8

    @property
    def world_size(self) -> int:
        """Processes training together (``devices`` when it is a count, else 1)."""
        return self.devices if isinstance(self.devices, int) and self.devices > 1 else 1


@dataclass(frozen=True)
class PreparedData:
    """Everything the fit needs, plus what the data summary reports."""

    splits: DatasetSplits
    bars: list[BarsSummary]
    split_summaries: list[SplitSummary]


def _utc_now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def _stamp(value: Any) -> str | None:
    return None if value is None else pd.Timestamp(value).isoformat()


class _Steps:
    """Phase reporting plus the cancel check between steps."""

    def __init__(self, observer: PhaseObserver | None, token: CancelToken | None) -> None:
        self.observer = observer
        self.token = token

    def enter(self, phase: Phase, message: str) -> None:
        self.check()
        if self.observer is not None:
            self.observer.on_phase(phase, message)

    def check(self) -> None:
        if self.token is not None:
            self.token.raise_if_aborted()


def prepare_data(
    context: TrainingOperationContext,
    *,
    observer: PhaseObserver | None = None,
    token: CancelToken | None = None,
) -> PreparedData:
    """Load bars, compute features and labels, and split, reporting each phase.

    Raises:
        DataError: missing or malformed data, too few bars, or an empty split.
        OperationCancelled: the token was aborted between steps.
    """
    steps = _Steps(observer, token)
    spec = context.strategy
    history = warmup_history(spec)
    warmup = max((indicator_warmup(ind) for ind in spec.indicators), default=0)
    needed = warmup + spec.model.features.lookback_periods + MIN_SAMPLES
    data_dir = Path(context.data_dir)

    steps.enter("load_data", f"Loading {len(context.symbols)}×{len(context.timeframes)} series")
    bars: dict[str, dict[str, pd.DataFrame]] = {}
    bar_summaries: list[BarsSummary] = []
    for symbol in context.symbols:
        bars[symbol] = {}
        for tf in context.timeframes:
            steps.check()
            frame = load_ohlcv(
                symbol,
                tf,
                data_dir=data_dir,
                start=context.start_date,
                end=context.end_date,
                history_bars=history,
            )
            what = f"{symbol} {tf}"
            require_bars(frame, needed if tf == context.base_timeframe else warmup + 1, what=what)
            bars[symbol][tf] = frame
            bar_summaries.append(
                BarsSummary(
                    symbol=symbol,
                    timeframe=tf,
                    bars=len(frame),
                    first=_stamp(frame.index[0]) if len(frame) else None,
                    last=_stamp(frame.index[-1]) if len(frame) else None,
                    resampled_from=frame.attrs.get("resampled_from"),
                )
            )

    steps.enter("indicators", f"Computing {len(spec.indicators)} indicators")
    values = {
        symbol: {tf: indicator_values(spec, frame) for tf, frame in by_tf.items()}
        for symbol, by_tf in bars.items()
    }

    steps.enter("fuzzy", f"Fuzzifying {sum(len(s) for s in spec.fuzzy_sets.values())} sets")
    features: dict[str, pd.DataFrame] = {}
    for symbol, by_tf in bars.items():
        steps.check()
        per_tf = {
            tf: compute_timeframe_features(spec, tf, frame, values[symbol][tf])
            for tf, frame in by_tf.items()
        }
        features[symbol] = assemble_features(spec, context.base_timeframe, by_tf, per_tf)

    steps.enter("labels", "ZigZag labels and chronological split")
    parts: list[DatasetSplits] = []
    summaries: list[SplitSummary] = []
    for symbol in context.symbols:
        steps.check()
        base = bars[symbol][context.base_timeframe]
        frame = features[symbol]
        if context.start_date is not None:
            keep = base.index >= pd.Timestamp(context.start_date)
            base, frame = base[keep], frame[keep]
        dataset = build_symbol_dataset(spec, symbol, base, frame)
        parts.append(dataset.splits)
        summaries.append(dataset.summary)
    return PreparedData(splits=concat_splits(parts), bars=bar_summaries, split_summaries=summaries)


def _scaled(splits: DatasetSplits, scaler: Any) -> DatasetSplits:
    return replace(
        splits,
        x_train=scaler.transform(splits.x_train),
        x_val=scaler.transform(splits.x_val),
        x_test=scaler.transform(splits.x_test),
    )


def _majority_class(y: np.ndarray) -> int:
    return int(np.bincount(y, minlength=len(LABEL_NAMES)).argmax())


@dataclass(frozen=True)
class PipelineOutput:
    """The raw outputs of one pipeline run; :class:`~ktrdr_lib.aggregator.ResultAggregator`
    turns them into a TrainingResult."""

    context: TrainingOperationContext
    prepared: PreparedData
    fit: FitOutcome
    validation_metrics: ClassificationMetrics
    test_metrics: ClassificationMetrics
    saved: SavedModel | None
    accelerator: str
    device: str
    started_at: str
    finished_at: str
    cancellation_reason: str | None


def execute_pipeline(
    context: TrainingOperationContext,
    *,
    observer: PhaseObserver | None = None,
    token: CancelToken | None = None,
    callbacks: Sequence[Any] = (),
    trainer_options: TrainerOptions | None = None,
    save_model: bool = True,
) -> PipelineOutput:
    """Train the context's strategy end to end and return the raw outputs.

    Args:
        context: from :func:`~ktrdr_lib.context.build_training_context`.
        observer: told about each phase.
        token: checked between steps and every batch; abort raises
            :class:`~ktrdr_lib.errors.OperationCancelled`, graceful stops evaluate and save.
        callbacks: extra Lightning callbacks (progress views).
        trainer_options: accelerator, devices, strategy, precision.
        save_model: write the model to the ModelStore (on by default).

    Raises:
        DataError, TrainingError, OperationCancelled.
    """
    from ktrdr_lib.aggregator import ResultAggregator
    from ktrdr_lib.models.store import ModelStore
    from ktrdr_lib.training.evaluation import evaluate
    from ktrdr_lib.training.fit import fit_model
    from ktrdr_lib.training.scaling import FeatureScaler

    options = trainer_options or TrainerOptions()
    started_at = _utc_now()
    steps = _Steps(observer, token)
    spec = context.strategy
    prepared = prepare_data(context, observer=observer, token=token)
    raw = prepared.splits
    scaler = FeatureScaler.fit(raw.x_train) if spec.model.features.scale_features else None
    splits = raw if scaler is None else _scaled(raw, scaler)

    per_rank = len(splits.y_train) // options.world_size
    batches = -(-per_rank // spec.model.training.batch_size)
    context = context.with_batches_per_epoch(batches)
    steps.enter("train", f"Training {context.total_epochs} epochs × {batches} batches")
    all_callbacks = list(callbacks)
    if token is not None:
        all_callbacks.append(CancelCallback(token, sync_every=options.cancel_sync_every))
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
    )
    if not fit.history:
        raise TrainingError("training finished without a single epoch; this is a bug")

    steps.enter("evaluate", "Evaluating on the validation and test splits")
    majority = _majority_class(splits.y_train)
    val_metrics = evaluate(fit.module, splits.x_val, splits.y_val, majority_class=majority)
    test_metrics = evaluate(fit.module, splits.x_test, splits.y_test, majority_class=majority)
    device = str(next(fit.module.parameters()).device)

    saved = None
    if save_model and fit.global_rank == 0:  # one copy, however many ranks trained
        steps.enter("save", "Saving the model")
        saved = ModelStore(Path(context.models_dir)).save(
            strategy_name=spec.name,
            module=fit.module,
            feature_names=raw.feature_names,
            scaler=scaler,
            model_spec_config=msgspec.to_builtins(spec.model),
            strategy_config=context.strategy_config(),
            metrics={
                "training": msgspec.to_builtins(ResultAggregator.training_metrics(fit)),
                "validation": msgspec.to_builtins(val_metrics),
                "test": msgspec.to_builtins(test_metrics),
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
                "data_summary": msgspec.to_builtins(ResultAggregator.data_summary(prepared)),
                "python": platform.python_version(),
                "pid": os.getpid(),
            },
        )
    return PipelineOutput(
        context=context,
        prepared=prepared,
        fit=fit,
        validation_metrics=val_metrics,
        test_metrics=test_metrics,
        saved=saved,
        accelerator=options.accelerator,
        device=device,
        started_at=started_at,
        finished_at=_utc_now(),
        cancellation_reason=token.reason if token is not None and token.graceful else None,
    )


def run_training_pipeline(
    context: TrainingOperationContext,
    *,
    observer: PhaseObserver | None = None,
    token: CancelToken | None = None,
    callbacks: Sequence[Any] = (),
    trainer_options: TrainerOptions | None = None,
    save_model: bool = True,
) -> TrainingResult:
    """Train the context's strategy end to end and return its :class:`TrainingResult`.

    Same arguments as :func:`execute_pipeline`.
    """
    from ktrdr_lib.aggregator import ResultAggregator

    output = execute_pipeline(
        context,
        observer=observer,
        token=token,
        callbacks=callbacks,
        trainer_options=trainer_options,
        save_model=save_model,
    )
    return ResultAggregator.from_local(output)
