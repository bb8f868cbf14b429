"""Preparing a run's data: bars → indicators → fuzzy memberships → labels → purged splits.

:func:`prepare_data` reports each phase to an observer and checks the cancel token between
steps, so a cancel during preparation stops at the next step.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import pandas as pd

from ktrdr_lib.data.loader import load_ohlcv, require_bars
from ktrdr_lib.features.builder import (
    FeatureMatrix,
    build_feature_matrix,
    column_modes,
    compute_indicator_outputs,
)
from ktrdr_lib.features.context_series import SeriesKey, context_series_needed
from ktrdr_lib.features.dataset import (
    DatasetSplits,
    SplitSummary,
    build_symbol_dataset,
    concat_splits,
    strategy_warmup,
    warmup_history,
)
from ktrdr_lib.features.inputs import plan_inputs
from ktrdr_lib.features.report import feature_report
from ktrdr_lib.pipeline.context import TrainingOperationContext, build_training_context
from ktrdr_lib.progress.cancellation import CancelToken
from ktrdr_lib.schemas.requests import TrainingRequest
from ktrdr_lib.schemas.results import BarsSummary, FeatureReport
from ktrdr_lib.schemas.status import PipelinePhase
from ktrdr_lib.strategy.spec import StrategySpec

__all__ = [
    "MIN_SAMPLES",
    "PhaseObserver",
    "PhaseSteps",
    "PreparedData",
    "check_features",
    "preparation_key",
    "prepare_data",
]

MIN_SAMPLES = 60  # usable rows below which a split is meaningless


class PhaseObserver(Protocol):
    """Receives the pipeline's phase changes (progress views implement it)."""

    def on_phase(self, phase: PipelinePhase, message: str) -> None:
        """Called when a phase starts."""


@dataclass(frozen=True)
class PreparedData:
    """Everything the fit needs, plus what the data summary reports."""

    splits: DatasetSplits
    bars: list[BarsSummary]
    split_summaries: list[SplitSummary]
    column_modes: list[str]
    feature_report: FeatureReport


def _stamp(value: Any) -> str | None:
    return None if value is None else pd.Timestamp(value).isoformat()


def _bars_summary(symbol: str, timeframe: str, frame: pd.DataFrame) -> BarsSummary:
    return BarsSummary(
        symbol=symbol,
        timeframe=timeframe,
        bars=len(frame),
        first=_stamp(frame.index[0]) if len(frame) else None,
        last=_stamp(frame.index[-1]) if len(frame) else None,
        resampled_from=frame.attrs.get("resampled_from"),
    )


class PhaseSteps:
    """Phase reporting, the cancel check between steps, and the time spent in each phase.

    ``seconds`` maps each phase entered to its wall time so far (a phase ends when the next
    one is entered, or at :meth:`close`).
    """

    def __init__(self, observer: PhaseObserver | None, token: CancelToken | None) -> None:
        self.observer = observer
        self.token = token
        self.seconds: dict[str, float] = {}
        self._current: str | None = None
        self._since = 0.0

    def enter(self, phase: PipelinePhase, message: str) -> None:
        self.check()
        self.close()
        self._current, self._since = phase, time.perf_counter()
        if self.observer is not None:
            self.observer.on_phase(phase, message)

    def close(self) -> None:
        """End the current phase's clock."""
        if self._current is not None:
            spent = time.perf_counter() - self._since
            self.seconds[self._current] = self.seconds.get(self._current, 0.0) + spent
            self._current = None

    def check(self) -> None:
        if self.token is not None:
            self.token.raise_if_aborted()


def prepare_data(
    context: TrainingOperationContext,
    *,
    observer: PhaseObserver | None = None,
    token: CancelToken | None = None,
    steps: PhaseSteps | None = None,
) -> PreparedData:
    """Load bars, compute features and labels, and split, reporting each phase.

    ``steps`` (the run's own, to time every phase of it) replaces ``observer`` and ``token``.

    Raises:
        DataError: missing or malformed data, too few bars, or an empty split.
        OperationCancelled: the token was aborted between steps.
    """
    steps = steps or PhaseSteps(observer, token)
    spec = context.strategy
    history = warmup_history(spec)
    warmup = strategy_warmup(spec)
    plan = plan_inputs(spec, context.timeframes)
    needed = warmup + spec.model.features.lookback_periods + MIN_SAMPLES
    data_dir = Path(context.data_dir)

    steps.enter("load_data", f"Loading {len(context.symbols)}×{len(context.timeframes)} series")
    bar_summaries: list[BarsSummary] = []

    def load(symbol: str, timeframe: str, needed_bars: int, what: str) -> pd.DataFrame:
        steps.check()
        frame = load_ohlcv(
            symbol,
            timeframe,
            data_dir=data_dir,
            start=context.start_date,
            end=context.end_date,
            history_bars=history,
        )
        require_bars(frame, needed_bars, what=what)
        bar_summaries.append(_bars_summary(symbol, timeframe, frame))
        return frame

    bars = {
        symbol: {
            tf: load(
                symbol, tf, needed if tf == context.base_timeframe else warmup + 1, f"{symbol} {tf}"
            )
            for tf in context.timeframes
        }
        for symbol in context.symbols
    }
    context_series: dict[SeriesKey, pd.DataFrame] = {
        (source, tf): load(source, tf, warmup + 1, f"context_data series {source} {tf}")
        for source, tf in context_series_needed(spec, plan)
    }

    steps.enter("indicators", f"Computing {len(spec.indicators)} indicators")
    outputs = {}
    for symbol, by_tf in bars.items():
        steps.check()
        outputs[symbol] = compute_indicator_outputs(spec, plan, by_tf, context_series)

    memberships = sum(len(fuzzy_set.memberships) for fuzzy_set in spec.fuzzy_sets.values())
    steps.enter("fuzzy", f"Fuzzifying {memberships} memberships into {len(plan.columns)} inputs")
    features: dict[str, FeatureMatrix] = {}
    for symbol, by_tf in bars.items():
        steps.check()
        features[symbol] = build_feature_matrix(
            spec, plan, by_tf, context.base_timeframe, outputs.pop(symbol)
        )

    steps.enter("labels", "ZigZag labels and chronological split")
    parts: list[DatasetSplits] = []
    summaries: list[SplitSummary] = []
    for symbol in context.symbols:
        steps.check()
        base = bars[symbol][context.base_timeframe]
        matrix = features.pop(symbol)
        if context.start_date is not None:
            first = int(pd.DatetimeIndex(base.index).searchsorted(pd.Timestamp(context.start_date)))
            base, matrix = base.iloc[first:], matrix.rows_from(first)
        dataset = build_symbol_dataset(spec, symbol, base, matrix)
        parts.append(dataset.splits)
        summaries.append(dataset.summary)
    splits = concat_splits(parts)
    columns = matrix.columns
    names = splits.feature_names[: len(columns)]
    fuzzy = [column is not None and column.kind == "fuzzy" for column in columns]
    return PreparedData(
        splits=splits,
        bars=bar_summaries,
        split_summaries=summaries,
        column_modes=column_modes(matrix, scale_features=spec.model.features.scale_features),
        feature_report=feature_report(splits.x_train, names, fuzzy=fuzzy),
    )


def preparation_key(context: TrainingOperationContext) -> str:
    """A digest of everything :func:`prepare_data` reads: runs with equal keys prepare equal
    data (a sweep over model or training settings prepares it once).

    What only the fit reads is left out: ``model.training`` (learning rate, batch size,
    epochs, optimiser, early stopping), the MLP's layers and an LSTM/GRU's cell sizes (its
    window length stays in: the samples are windows), the seed, and where the model goes.
    """
    import hashlib

    import msgspec

    from ktrdr_lib.strategy.sections import ArchitectureSpec, ModelTrainingSpec

    spec = context.strategy
    model = msgspec.structs.replace(
        spec.model,
        training=ModelTrainingSpec(),
        architecture=ArchitectureSpec(sequence_length=spec.model.architecture.sequence_length),
    )
    data_spec = msgspec.structs.replace(
        spec,
        name="-",
        model=model,
        hyperparameter_sources={},
        notices=[],
        source=None,
        description=None,
        hypothesis=None,
    )
    payload = msgspec.json.encode(
        {
            "strategy": data_spec,
            "symbols": context.symbols,
            "timeframes": context.timeframes,
            "base_timeframe": context.base_timeframe,
            "start_date": context.start_date,
            "end_date": context.end_date,
            "data_dir": context.data_dir,
        }
    )
    return hashlib.sha256(payload).hexdigest()


def check_features(
    strategy: str | os.PathLike[str] | StrategySpec,
    request: TrainingRequest | None = None,
    *,
    data_dir: str | os.PathLike[str] | None = None,
) -> FeatureReport:
    """Prepare a strategy's data as training would, without fitting, and report its inputs.

    Catches scale mistakes before a training is spent on them: a fuzzy set over the wrong
    scale (a band's price read by sets written for a ratio) is active on almost no row.

    Args:
        strategy: a name, a YAML path or a loaded spec (as :func:`build_training_context`).
        request: symbols, timeframes and dates (the strategy's own when left out).
        data_dir: OHLCV directory (default ``KTRDR_DATA_DIR`` or the bundled sample data).

    Returns:
        The training split's :class:`~ktrdr_lib.schemas.results.FeatureReport`: each input's
        share of rows where it is active, and the dead and constant ones.

    Raises:
        StrategyError, ConfigError, DataError: as a training of the same request would.

    Example:
        >>> check_features("multi_timeframe_momentum").dead
        []
    """
    context = build_training_context(strategy, request, data_dir=data_dir)
    return prepare_data(context).feature_report
