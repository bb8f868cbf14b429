"""Bars on every timeframe → one float32 feature matrix on the base timeframe's rows.

:func:`build_feature_matrix` computes, timeframe by timeframe, only the indicator outputs the
strategy's inputs need, turns them into the planned columns (fuzzy memberships, after the
set's input transform, or raw values) in float32, and writes them straight into one matrix
allocated once: slower timeframes land on the base rows through
:func:`~ktrdr_lib.data.timeframes.aligned_positions` (a slower bar counts only once it has
closed), then optional price context, then ``lookback_periods`` lagged copies of every column
(``{column}_lag{k}``). No frame of the whole matrix is ever built, so memory stays near the
matrix itself plus one timeframe's indicators.

Example:
    >>> matrix = build_feature_matrix(spec, plan_inputs(spec, ["1h"]), {"1h": bars}, "1h")
    ... # doctest: +SKIP
    >>> matrix.values.dtype, matrix.names[:1]                         # doctest: +SKIP
    (dtype('float32'), ['1h_rsi_14_oversold'])
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from ktrdr_lib.data.timeframes import aligned_positions
from ktrdr_lib.errors import ConfigError
from ktrdr_lib.features.context_series import SeriesKey, series_key
from ktrdr_lib.features.fuzzy import membership
from ktrdr_lib.features.indicators import compute_outputs
from ktrdr_lib.features.inputs import InputColumn, InputPlan
from ktrdr_lib.strategy.spec import FuzzySetSpec, Normalization, StrategySpec

__all__ = [
    "FeatureMatrix",
    "IndicatorOutputs",
    "build_feature_matrix",
    "column_modes",
    "compute_indicator_outputs",
]

PRICE_CONTEXT = ("return_1", "return_5", "range")


@dataclass(frozen=True)
class FeatureMatrix:
    """The features of one symbol, one row per base bar.

    Attributes:
        values: float32, shape ``(len(index), len(names))``; NaN where a value is not known
            yet (indicator warm-up, before the first slower bar closed, the first lag rows).
        names: the column names, in order.
        index: the base timeframe's bar starts.
        columns: what each column before lags is (the plan's columns, then price context as
            ``None``).
        lookback: lagged copies per column.
    """

    values: np.ndarray
    names: list[str]
    index: pd.DatetimeIndex
    columns: list[InputColumn | None]
    lookback: int

    def rows_from(self, first: int) -> FeatureMatrix:
        """The rows from ``first`` on (a view: no copy of the values)."""
        return replace(self, values=self.values[first:], index=self.index[first:])

    def frame(self) -> pd.DataFrame:
        """The matrix as a DataFrame (for inspection and inference; it copies nothing)."""
        return pd.DataFrame(self.values, index=self.index, columns=self.names, copy=False)


def column_modes(matrix: FeatureMatrix, *, scale_features: bool) -> list[Normalization | str]:
    """How each column is scaled on the training split: a raw input's own ``normalization``
    (its lags alike); the rest ``zscore`` when the strategy scales features, else ``none``."""
    default = "zscore" if scale_features else "none"
    base = [
        column.normalization if column is not None and column.kind == "raw" else default
        for column in matrix.columns
    ]
    return base * (1 + matrix.lookback)


def _transformed(
    values: np.ndarray,
    fuzzy_set: FuzzySetSpec,
    bars: pd.DataFrame,
    name: str,
    outputs: Mapping[str, np.ndarray],
) -> np.ndarray:
    """The value a fuzzy set's memberships read: ``reference / value`` under ``price_ratio``,
    the reference being the prices the indicator was computed on (its context series' own, for
    an indicator with a ``data_source``)."""
    transform = fuzzy_set.input_transform
    if transform is None or transform.type == "identity":
        return values
    own = outputs.get(f"{_BAR}{transform.reference}")
    if own is None and transform.reference not in bars.columns:
        raise ConfigError(
            f"fuzzy set {name!r}: its price_ratio transform needs the {transform.reference!r} "
            f"column, but the bars have only {list(bars.columns)}"
        )
    reference = own if own is not None else bars[transform.reference].to_numpy(dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio: np.ndarray = np.divide(reference, values)
    ratio[~np.isfinite(ratio)] = np.nan
    return ratio


IndicatorOutputs = dict[str, dict[str, dict[str, np.ndarray]]]
"""timeframe → indicator id → output → values (float64, one per bar of that timeframe). An
indicator computed on a ``context_data`` series also carries, as ``bar:<column>``, the series'
prices its fuzzy sets' ``price_ratio`` transforms read, aligned the same way."""

_BAR = "bar:"


def _transform_references(spec: StrategySpec, indicator_id: str) -> list[str]:
    """The price columns ``price_ratio`` transforms over ``indicator_id`` read."""
    return list(
        dict.fromkeys(
            fuzzy_set.input_transform.reference
            for fuzzy_set in spec.fuzzy_sets.values()
            if fuzzy_set.indicator_id == indicator_id
            and fuzzy_set.input_transform is not None
            and fuzzy_set.input_transform.type == "price_ratio"
        )
    )


def _on_context_series(
    spec: StrategySpec,
    indicator_id: str,
    timeframe: str,
    bars: pd.DataFrame,
    context_series: Mapping[SeriesKey, pd.DataFrame] | None,
) -> dict[str, np.ndarray]:
    """One indicator computed on its ``data_source`` series, forward-filled onto ``bars``."""
    key = series_key(spec, indicator_id, timeframe)
    assert key is not None
    series = None if context_series is None else context_series.get(key)
    if series is None:
        given = ", ".join(f"{s} ({tf})" for s, tf in (context_series or {})) or "none"
        raise ConfigError(
            f"indicator {indicator_id!r} reads the context_data series {key[0]!r} on {key[1]}, "
            f"but no bars were given for it (series given: {given}); load it with "
            f"load_ohlcv({key[0]!r}, {key[1]!r}) and pass it as context_series"
        )
    outputs = compute_outputs(spec.indicators[indicator_id], series, indicator_id=indicator_id)
    rows = aligned_positions(
        pd.DatetimeIndex(series.index), key[1], pd.DatetimeIndex(bars.index), timeframe
    )
    known = rows >= 0
    aligned: dict[str, np.ndarray] = {}
    sources = {**outputs}
    for column in _transform_references(spec, indicator_id):
        sources[f"{_BAR}{column}"] = series[column].to_numpy(dtype=np.float64)
    for name, values in sources.items():
        out = np.full(len(rows), np.nan)
        out[known] = values[rows[known]]
        aligned[name] = out
    return aligned


def compute_indicator_outputs(
    spec: StrategySpec,
    plan: InputPlan,
    bars_by_timeframe: Mapping[str, pd.DataFrame],
    context_series: Mapping[SeriesKey, pd.DataFrame] | None = None,
) -> IndicatorOutputs:
    """Every indicator the plan needs, on every timeframe that needs it (±inf made NaN).

    Args:
        spec: the strategy.
        plan: its columns on the run's timeframes.
        bars_by_timeframe: the instrument's bars per timeframe.
        context_series: bars of the ``context_data`` series the strategy's indicators read
            (:func:`~ktrdr_lib.features.context_series.context_series_needed` lists them).

    Raises:
        ConfigError: a timeframe of the plan, or a series an indicator reads, has no bars; or
            a parameter is invalid.
        DataError: an indicator needs a column the bars lack (e.g. volume).
    """
    _require_timeframes(plan, bars_by_timeframe, None)
    computed: IndicatorOutputs = {}
    for timeframe in plan.outputs_by_timeframe:
        bars = bars_by_timeframe[timeframe]
        per_indicator: dict[str, dict[str, np.ndarray]] = {}
        for indicator_id in plan.indicator_ids(timeframe):
            if spec.indicators[indicator_id].data_source is not None:
                outputs = _on_context_series(spec, indicator_id, timeframe, bars, context_series)
            else:
                outputs = compute_outputs(
                    spec.indicators[indicator_id], bars, indicator_id=indicator_id
                )
            for values in outputs.values():
                values[~np.isfinite(values)] = np.nan  # ±inf never reaches a feature
            per_indicator[indicator_id] = outputs
        computed[timeframe] = per_indicator
    return computed


def _require_timeframes(
    plan: InputPlan, bars_by_timeframe: Mapping[str, pd.DataFrame], base_timeframe: str | None
) -> None:
    missing = [tf for tf in plan.outputs_by_timeframe if tf not in bars_by_timeframe]
    if base_timeframe is not None and base_timeframe not in bars_by_timeframe:
        missing.insert(0, base_timeframe)
    if missing:
        raise ConfigError(
            f"no bars for timeframe(s) {', '.join(dict.fromkeys(missing))}; bars were given for "
            f"{', '.join(bars_by_timeframe) or 'none'}"
        )


def _timeframe_block(
    spec: StrategySpec,
    plan: InputPlan,
    timeframe: str,
    bars: pd.DataFrame,
    outputs: Mapping[str, Mapping[str, np.ndarray]],
) -> tuple[list[InputColumn], np.ndarray]:
    """The planned columns of one timeframe on its own bars, float32."""
    columns = plan.on(timeframe)
    block = np.empty((len(bars), len(columns)), dtype=np.float32)
    transformed: dict[str, np.ndarray] = {}
    for position, column in enumerate(columns):
        indicator_outputs = outputs[column.source.indicator_id]
        values = indicator_outputs[column.source.output]
        if column.kind == "raw":
            block[:, position] = values
            continue
        assert column.fuzzy_set is not None and column.membership is not None
        fuzzy_set = spec.fuzzy_sets[column.fuzzy_set]
        if column.fuzzy_set not in transformed:
            transformed[column.fuzzy_set] = _transformed(
                values, fuzzy_set, bars, column.fuzzy_set, indicator_outputs
            )
        block[:, position] = membership(
            fuzzy_set.memberships[column.membership], transformed[column.fuzzy_set]
        )
    return columns, block


def _price_context(bars: pd.DataFrame) -> np.ndarray:
    close = bars["close"].to_numpy(dtype=np.float64)
    log_close = np.log(close)
    context = np.full((len(close), 3), np.nan, dtype=np.float32)
    context[1:, 0] = log_close[1:] - log_close[:-1]
    context[5:, 1] = log_close[5:] - log_close[:-5]
    context[:, 2] = (bars["high"].to_numpy() - bars["low"].to_numpy()) / close
    return context


def build_feature_matrix(
    spec: StrategySpec,
    plan: InputPlan,
    bars_by_timeframe: Mapping[str, pd.DataFrame],
    base_timeframe: str,
    outputs: IndicatorOutputs | None = None,
    context_series: Mapping[SeriesKey, pd.DataFrame] | None = None,
) -> FeatureMatrix:
    """Every planned column, aligned onto the base timeframe's rows, plus context and lags.

    Args:
        spec: the strategy.
        plan: its columns on the run's timeframes (:func:`~ktrdr_lib.features.inputs.plan_inputs`).
        bars_by_timeframe: OHLCV frames for every timeframe of the plan, the base included.
        base_timeframe: the timeframe whose bars are the rows.
        outputs: the indicators already computed (:func:`compute_indicator_outputs`); computed
            here when ``None``.
        context_series: bars of the ``context_data`` series the strategy's indicators read,
            when ``outputs`` is ``None``.

    Raises:
        ConfigError: a timeframe of the plan has no bars, or an input needs a column the bars
            lack.
        DataError: an indicator needs a column the bars lack (e.g. volume).
    """
    _require_timeframes(plan, bars_by_timeframe, base_timeframe)
    if outputs is None:
        outputs = compute_indicator_outputs(spec, plan, bars_by_timeframe, context_series)
    base_bars = bars_by_timeframe[base_timeframe]
    index = pd.DatetimeIndex(base_bars.index)
    features = spec.model.features
    context_width = len(PRICE_CONTEXT) if features.include_price_context else 0
    width = len(plan.columns) + context_width
    lookback = features.lookback_periods
    values = np.full((len(index), width * (1 + lookback)), np.nan, dtype=np.float32)
    placed: list[InputColumn | None] = [None] * width
    where = {column.name: position for position, column in enumerate(plan.columns)}
    for timeframe in plan.outputs_by_timeframe:
        bars = bars_by_timeframe[timeframe]
        columns, block = _timeframe_block(spec, plan, timeframe, bars, outputs[timeframe])
        targets = np.array([where[column.name] for column in columns], dtype=np.int64)
        for target, column in zip(targets, columns, strict=True):
            placed[target] = column
        if timeframe == base_timeframe:
            values[:, targets] = block
            continue
        rows = aligned_positions(pd.DatetimeIndex(bars.index), timeframe, index, base_timeframe)
        known = rows >= 0
        values[np.ix_(np.flatnonzero(known), targets)] = block[rows[known]]
        del block
    names = list(plan.names)
    if context_width:
        values[:, len(plan.columns) : width] = _price_context(base_bars)
        names += [f"{base_timeframe}_price_{name}" for name in PRICE_CONTEXT]
    for k in range(1, lookback + 1):
        values[k:, k * width : (k + 1) * width] = values[:-k, :width]
    names += [f"{name}_lag{k}" for k in range(1, lookback + 1) for name in names[:width]]
    return FeatureMatrix(values=values, names=names, index=index, columns=placed, lookback=lookback)
