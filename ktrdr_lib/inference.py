"""Signals from a saved model on market data, through the same feature code as training.

:func:`features_for_bars` turns bars into the model's feature columns with the code the
training pipeline uses (:func:`~ktrdr_lib.features.inputs.plan_inputs` and
:func:`~ktrdr_lib.features.builder.build_feature_matrix`), so the column names are the model's
``feature_names``. :func:`predict_signal` loads the bars, takes the last complete row at or
before a time and predicts it.

Bars are loaded from the model's training start (minus the same warm-up history the pipeline
loads) up to the asked time. Recursive indicators (RSI, EMA, ATR, ...) depend on the bar they
were seeded on, so starting where training started makes a prediction at a bar the model was
trained or tested on use exactly the feature values training used; a time before the training
start loads from the beginning of the data.

Example:
    >>> from ktrdr_lib.models.store import load_model
    >>> prediction = predict_signal(load_model("rsi_mean_reversion"), "AAPL")  # doctest: +SKIP
    >>> prediction.signal, prediction.confidence  # doctest: +SKIP
    ('hold', 0.52)
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import msgspec
import numpy as np
import pandas as pd
import yaml

from ktrdr_lib.data.loader import load_ohlcv
from ktrdr_lib.data.timeframes import parse_timeframe
from ktrdr_lib.errors import ConfigError, DataError
from ktrdr_lib.features.builder import build_feature_matrix
from ktrdr_lib.features.context_series import SeriesKey, context_series_needed
from ktrdr_lib.features.dataset import strategy_warmup, warmup_history
from ktrdr_lib.features.inputs import plan_inputs
from ktrdr_lib.features.labels import LABEL_NAMES
from ktrdr_lib.models.predictor import LoadedModel
from ktrdr_lib.strategy.loader import load_strategy
from ktrdr_lib.strategy.spec import StrategySpec

__all__ = ["Signal", "SignalPrediction", "features_for_bars", "predict_signal"]

Signal = Literal["buy", "hold", "sell"]
_SIGNALS: tuple[Signal, ...] = ("buy", "hold", "sell")  # class ids 0 BUY, 1 HOLD, 2 SELL


class SignalPrediction(msgspec.Struct, frozen=True, kw_only=True):
    """One model's signal for one bar.

    Attributes:
        model_id: ``"name/vN"`` of the model that predicted.
        symbol: the symbol.
        timeframe: the base timeframe the predicted row is on.
        bar_time: start of the predicted bar (UTC ISO-8601).
        signal: the most probable class.
        confidence: its probability.
        signal_strength: its probability minus the second highest.
        probabilities: ``{"buy", "hold", "sell"}`` class probabilities (sum to 1).
        fuzzy_outputs: v1's names for them: ``bullish`` = buy, ``bearish`` = sell,
            ``neutral`` = hold.
        input_features: the row's raw (unscaled) feature values, in the model's column order.
        predicted_return: a regression model's predicted return over its horizon (``None``
            for a classifier). Its signal is ``buy`` above the cost edge
            (``decisions.cost_model``: ``round_trip_cost × min_edge_multiplier``; 0 without a
            cost model), ``sell`` below minus the edge, else ``hold``; ``confidence`` is
            ``min(1, |return| / edge)`` (1 without a cost model), ``signal_strength`` the
            return's size beyond the edge, and ``probabilities`` is empty.
        regime: a regime model's most probable regime (``trending_up``, ``trending_down``,
            ``ranging``, ``volatile``; ``None`` otherwise). A regime is context, not a trade:
            its signal is ``hold``, ``probabilities`` are per regime, ``confidence`` and
            ``signal_strength`` those of the regime.
    """

    model_id: str
    symbol: str
    timeframe: str
    bar_time: str
    signal: Signal
    confidence: float
    signal_strength: float
    probabilities: dict[str, float]
    fuzzy_outputs: dict[str, float]
    input_features: dict[str, float]
    predicted_return: float | None = None
    regime: str | None = None


def features_for_bars(
    strategy_config: Mapping[str, Any] | StrategySpec,
    bars_by_timeframe: Mapping[str, pd.DataFrame],
    base_timeframe: str,
    context_series: Mapping[SeriesKey, pd.DataFrame] | None = None,
) -> pd.DataFrame:
    """The training feature columns for bars on one or more timeframes.

    Args:
        strategy_config: the strategy as saved with a model (``LoadedModel.strategy_config``,
            the v2 YAML layout) or a loaded :class:`StrategySpec`.
        bars_by_timeframe: OHLCV frames keyed by timeframe (e.g. from
            :func:`~ktrdr_lib.data.loader.load_ohlcv`); every timeframe the model was trained
            on, the base included, in the order it was trained on (its metadata's
            ``timeframes``).
        base_timeframe: the timeframe whose bars are the rows.
        context_series: bars of the ``context_data`` series the strategy's indicators read,
            keyed ``(source id, timeframe)``
            (:func:`~ktrdr_lib.features.context_series.context_series_needed` lists them).

    Returns:
        One row per base bar (same index), the model's input columns
        (``{tf}_{fuzzy_set}_{membership}``, ``{tf}_{indicator}_raw``, price context,
        ``_lag{k}`` copies) in training order; warm-up rows hold NaN.

    Raises:
        ConfigError: the base timeframe has no bars, or the strategy configuration is invalid.

    Example:
        >>> bars = {"1h": load_ohlcv("SYNTH", "1h")}  # doctest: +SKIP
        >>> features_for_bars(model.strategy_config, bars, "1h").columns[:2]  # doctest: +SKIP
    """
    if base_timeframe not in bars_by_timeframe:
        raise ConfigError(
            f"no bars for the base timeframe {base_timeframe!r}; bars were given for "
            f"{', '.join(bars_by_timeframe) or 'no timeframe'}. Pass the base timeframe's bars."
        )
    spec = _strategy_spec(strategy_config)
    plan = plan_inputs(spec, list(bars_by_timeframe))
    return build_feature_matrix(
        spec, plan, bars_by_timeframe, base_timeframe, context_series=context_series
    ).frame()


def predict_signal(
    model: LoadedModel,
    symbol: str,
    *,
    timeframe: str | None = None,
    at: str | datetime | None = None,
    data_dir: Path | None = None,
) -> SignalPrediction:
    """Predict the signal for ``symbol`` at the last complete bar at or before ``at``.

    Args:
        model: a stored model (:func:`~ktrdr_lib.models.store.load_model`).
        symbol: the symbol whose data to read.
        timeframe: the timeframe asked for; must be one the model was trained on. Rows are
            always on the model's base timeframe (its other timeframes are features).
        at: the latest bar start to use (inclusive; ISO-8601 or a datetime, naive means UTC;
            a plain date covers its whole day). ``None`` uses the last bar of the data.
        data_dir: the data directory (default ``KTRDR_DATA_DIR`` or the bundled sample data).

    Returns:
        The prediction, with the row's time and raw feature values.

    Raises:
        ConfigError: ``timeframe`` is not one of the model's (the message lists them), or a
            bad symbol or time.
        DataError: no data for the symbol (the loader's message), too little history before
            ``at`` for a complete feature row (the message says how many bars are needed), or
            the model's features cannot be rebuilt from its strategy.

    Example:
        >>> predict_signal(model, "SYNTH", at="2020-03-02T10:00:00Z").probabilities
        ... # doctest: +SKIP
        {'buy': 0.21, 'hold': 0.55, 'sell': 0.24}
    """
    spec = _strategy_spec(model.strategy_config)
    timeframes, base = _model_timeframes(model, spec)
    if timeframe is not None and not _is_one_of(timeframe, timeframes):
        raise ConfigError(
            f"model {model.model_id} was trained on {', '.join(timeframes)} (base {base}); "
            f"timeframe {timeframe!r} is not one of them. Ask for one of those."
        )
    warmup = strategy_warmup(spec)
    lookback = spec.model.features.lookback_periods
    history = warmup_history(spec)  # what the training pipeline loaded before its start
    start = _start_bound(model.metadata.get("start_date"), at)
    bars = {
        tf: load_ohlcv(symbol, tf, data_dir=data_dir, start=start, end=at, history_bars=history)
        for tf in timeframes
    }
    context_series = {
        (source, tf): load_ohlcv(
            source, tf, data_dir=data_dir, start=start, end=at, history_bars=history
        )
        for source, tf in context_series_needed(spec, plan_inputs(spec, timeframes))
    }
    features = features_for_bars(spec, bars, base, context_series)
    if [str(column) for column in features.columns] != model.feature_names:
        raise DataError(
            f"the features rebuilt from model {model.model_id}'s strategy "
            f"({features.shape[1]} columns) differ from its feature_names "
            f"({len(model.feature_names)}); its strategy.json or features.json was changed. "
            "Train the model again."
        )

    values = features.to_numpy(dtype=np.float64)
    complete = np.flatnonzero(~np.isnan(values).any(axis=1))
    window = model.sequence_length or 1
    needed = warmup + lookback + window
    row = int(complete[-1]) if len(complete) else -1
    first = row - window + 1
    if row + 1 < needed or first < 0 or np.isnan(values[first : row + 1]).any():
        shown = "the end of the data" if at is None else repr(str(at))
        rows = f" + window {window - 1} more" if window > 1 else ""
        raise DataError(
            f"too little {symbol} {base} history for a prediction at {shown}: "
            f"{len(features)} bar(s) up to then, the model needs at least {needed} "
            f"(indicator warm-up {warmup} + lags {lookback} + the bar itself{rows}) before a "
            "complete feature row. Ask for a later time or add earlier data."
        )
    raw = values[row : row + 1]
    model_input = raw if model.sequence_length is None else values[first : row + 1][None]
    bar_time = pd.Timestamp(features.index[row]).isoformat()
    inputs = {name: float(value) for name, value in zip(model.feature_names, raw[0], strict=True)}
    if model.regression:
        return _return_signal(model, spec, symbol, base, bar_time, model_input, inputs)
    probabilities = model.predict_proba(model_input)[0].astype(np.float64)
    ranked = np.sort(probabilities)[::-1]
    classes = model.module.class_names
    if tuple(classes) != LABEL_NAMES:  # a regime model: context, not a trade
        return SignalPrediction(
            model_id=model.model_id,
            symbol=symbol,
            timeframe=base,
            bar_time=bar_time,
            signal="hold",
            confidence=float(ranked[0]),
            signal_strength=float(ranked[0] - ranked[1]),
            probabilities={name: float(p) for name, p in zip(classes, probabilities, strict=True)},
            fuzzy_outputs={},
            input_features=inputs,
            regime=classes[int(probabilities.argmax())],
        )
    by_signal: dict[str, float] = {name: float(probabilities[i]) for i, name in enumerate(_SIGNALS)}
    return SignalPrediction(
        model_id=model.model_id,
        symbol=symbol,
        timeframe=base,
        bar_time=bar_time,
        signal=_SIGNALS[int(probabilities.argmax())],
        confidence=float(ranked[0]),
        signal_strength=float(ranked[0] - ranked[1]),
        probabilities=by_signal,
        fuzzy_outputs={
            "bullish": by_signal["buy"],
            "bearish": by_signal["sell"],
            "neutral": by_signal["hold"],
        },
        input_features=inputs,
    )


def _return_signal(
    model: LoadedModel,
    spec: StrategySpec,
    symbol: str,
    timeframe: str,
    bar_time: str,
    raw: np.ndarray,
    inputs: dict[str, float],
) -> SignalPrediction:
    """A regression model's prediction as a signal against the strategy's cost edge."""
    predicted = float(model.predict_values(raw)[0])
    cost = spec.decisions.cost_model
    edge = 0.0 if cost is None else cost.round_trip_cost * cost.min_edge_multiplier
    signal: Signal = "buy" if predicted > edge else "sell" if predicted < -edge else "hold"
    return SignalPrediction(
        model_id=model.model_id,
        symbol=symbol,
        timeframe=timeframe,
        bar_time=bar_time,
        signal=signal,
        confidence=min(1.0, abs(predicted) / edge) if edge > 0 else 1.0,
        signal_strength=max(0.0, abs(predicted) - edge),
        probabilities={},
        fuzzy_outputs={},
        input_features=inputs,
        predicted_return=predicted,
    )


def _strategy_spec(config: Mapping[str, Any] | StrategySpec) -> StrategySpec:
    """A validated spec from a saved configuration (the v2 YAML layout round-trips)."""
    if isinstance(config, StrategySpec):
        return config
    return load_strategy(yaml.safe_dump(dict(config), sort_keys=False))


def _model_timeframes(model: LoadedModel, spec: StrategySpec) -> tuple[list[str], str]:
    """The model's timeframes and base timeframe, from its metadata or else its strategy."""
    timeframes = [str(tf) for tf in model.metadata.get("timeframes") or []]
    base = model.metadata.get("base_timeframe")
    if not timeframes and spec.training_data and spec.training_data.timeframes:
        timeframes = spec.training_data.timeframes.resolved()
        base = base or spec.training_data.timeframes.base_timeframe
    if not timeframes:
        raise DataError(
            f"model {model.model_id} records no timeframes (metadata.json 'timeframes' and the "
            "strategy's training_data are both empty); train it again."
        )
    base = str(base) if base else timeframes[0]
    if base not in timeframes:
        timeframes = [base, *timeframes]
    return timeframes, base


def _is_one_of(timeframe: str, timeframes: list[str]) -> bool:
    if timeframe in timeframes:
        return True
    duration = parse_timeframe(timeframe)
    return any(parse_timeframe(known) == duration for known in timeframes)


def _utc(value: str | datetime) -> pd.Timestamp:
    try:
        stamp = pd.Timestamp(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(
            f"{value!r} is not a time; use ISO-8601 such as 2017-04-19 or 2017-04-19T09:00:00Z"
        ) from exc
    if pd.isna(stamp):
        raise ConfigError(f"{value!r} is not a time; use ISO-8601 such as 2017-04-19")
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def _start_bound(training_start: object, at: str | datetime | None) -> str | None:
    """The training start when ``at`` is not before it, else ``None`` (the data's start)."""
    if not isinstance(training_start, str) or not training_start:
        return None
    if at is not None and _utc(at) < _utc(training_start):
        return None
    return training_start
