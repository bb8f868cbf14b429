"""Preparing a run's data: bars → indicators → fuzzy memberships → labels → purged splits.

:func:`prepare_data` reports each phase to an observer and checks the cancel token between
steps, so a cancel during preparation stops at the next step.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import pandas as pd

from ktrdr_lib.data.loader import load_ohlcv, require_bars
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
from ktrdr_lib.pipeline.context import TrainingOperationContext
from ktrdr_lib.progress.cancellation import CancelToken
from ktrdr_lib.schemas.results import BarsSummary
from ktrdr_lib.schemas.status import PipelinePhase

__all__ = ["MIN_SAMPLES", "PhaseObserver", "PhaseSteps", "PreparedData", "prepare_data"]

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


def _stamp(value: Any) -> str | None:
    return None if value is None else pd.Timestamp(value).isoformat()


class PhaseSteps:
    """Phase reporting plus the cancel check between steps."""

    def __init__(self, observer: PhaseObserver | None, token: CancelToken | None) -> None:
        self.observer = observer
        self.token = token

    def enter(self, phase: PipelinePhase, message: str) -> None:
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
    steps = PhaseSteps(observer, token)
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
