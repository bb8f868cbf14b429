"""KTRDR strategy files end to end: v3 with named outputs and raw inputs trains, saves and
predicts with the training's columns; a v2 file and its migrated v3 form train on the same
features; context_data series feed the indicators that name them; the shipped examples train
with no arguments."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from ktrdr_lib import list_strategies, migrate_strategy
from ktrdr_lib.data.loader import load_ohlcv
from ktrdr_lib.data.synthetic import generate_ohlcv, write_ohlcv_csv
from ktrdr_lib.errors import ConfigError, DataError
from ktrdr_lib.features.fuzzy import membership
from ktrdr_lib.features.indicators import INDICATOR_CATALOG, compute_outputs
from ktrdr_lib.inference import features_for_bars, predict_signal
from ktrdr_lib.models.store import load_model
from ktrdr_lib.pipeline.context import build_training_context
from ktrdr_lib.pipeline.prepare import prepare_data
from ktrdr_lib.pipeline.run import execute_pipeline, run_training_pipeline
from ktrdr_lib.strategy.loader import load_strategy
from ktrdr_lib.training.module import SequenceNetwork

V3_MULTI = """
name: v3.trend-mix
version: "3.0"
training_data:
  symbols: {mode: single, symbol: SYNTH}
  timeframes: {mode: multi_timeframe, list: [1h, 4h], base_timeframe: 1h}
  history_required: 50
indicators:
  trend: {type: ADX, period: 14}
  momentum: {type: macd, fast_period: 8, slow_period: 21, signal_period: 5}
  fast_rsi: {type: RSIIndicator, period: 7}
fuzzy_sets:
  strength:
    indicator: trend
    weak: [0, 10, 25]
    strong: {type: trapezoidal, parameters: [20, 35, 60, 80]}
  buyers:
    indicator: trend.plus_di
    pushing: {type: sigmoid, parameters: [25, 0.2]}
  swing:
    indicator: momentum.histogram
    down: {type: gaussian, parameters: [-0.3, 0.3]}
    up: {type: gaussian, parameters: [0.3, 0.3]}
nn_inputs:
  - {fuzzy_set: strength, timeframes: all}
  - {fuzzy_set: buyers, timeframes: [4h]}
  - {fuzzy_set: swing, timeframes: [1h]}
  - {raw_indicator: trend.minus_di, timeframes: all, normalization: minmax}
  - {raw_indicator: momentum.signal, timeframes: [1h], normalization: zscore}
  - {raw_indicator: fast_rsi, timeframes: [4h], normalization: none}
model:
  type: mlp
  architecture: {hidden_layers: [16], dropout: 0.0}
  features: {lookback_periods: 1}
training:
  labels: {source: zigzag, zigzag_threshold: 0.02, label_lookahead: 20}
  epochs: 2
  batch_size: 128
  data_split: {train: 0.7, validation: 0.15, test: 0.15}
"""

V2_FILE = """
name: v2_for_migration
version: "2.0"
training_data:
  symbols: {mode: single, symbol: SYNTH}
  timeframes: {mode: multi_timeframe, list: [1h, 4h], base_timeframe: 1h}
indicators:
  - {name: rsi, feature_id: rsi_14, period: 14}
  - {name: BollingerBands, feature_id: bb, period: 20, multiplier: 2.0}
  - {name: stoch, feature_id: stoch_14, k_period: 14, d_period: 3}
fuzzy_sets:
  rsi_14:
    low: [0, 20, 40]
    high: {type: sigmoid, parameters: [60, 0.3]}
  bb:
    input_transform: {type: price_ratio, reference: close}
    below: {type: triangular, parameters: [0.9, 0.96, 1.0]}
    at: {type: trapezoidal, parameters: [0.97, 0.99, 1.1, 1.2]}
  stoch_14:
    low: {type: gaussian, parameters: [20, 10]}
    high: {type: gaussian, parameters: [80, 10]}
model:
  type: mlp
  architecture: {hidden_layers: [8]}
  features: {lookback_periods: 2}
  training: {epochs: 1, batch_size: 64}
training:
  labels: {source: zigzag, zigzag_threshold: 0.02, label_lookahead: 20}
  data_split: {train: 0.7, validation: 0.15, test: 0.15}
"""


def _write(folder: Path, name: str, text: str) -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_v3_multi_timeframe_outputs_and_raw_inputs_round_trip(
    tmp_path: Path, synthetic_data_dir: Path
) -> None:
    strategy = _write(tmp_path, "v3_mix", V3_MULTI)
    context = build_training_context(
        strategy, data_dir=synthetic_data_dir, models_dir=tmp_path / "models"
    )
    assert context.model_name == "v3_trend-mix"  # a safe directory name for "v3.trend-mix"
    output = execute_pipeline(context)
    assert output.saved is not None
    names = output.prepared.splits.feature_names
    base = [
        "1h_strength_weak",
        "1h_strength_strong",
        "4h_strength_weak",
        "4h_strength_strong",
        "4h_buyers_pushing",
        "1h_swing_down",
        "1h_swing_up",
        "1h_trend.minus_di_raw",
        "4h_trend.minus_di_raw",
        "1h_momentum.signal_raw",
        "4h_fast_rsi_raw",
    ]
    assert names == base + [f"{name}_lag1" for name in base]

    model = load_model(context.model_name, root=tmp_path / "models")
    assert model.feature_names == names
    bars = {tf: load_ohlcv("SYNTH", tf, data_dir=synthetic_data_dir) for tf in ("1h", "4h")}
    frame = features_for_bars(model.strategy_config, bars, "1h")
    assert list(frame.columns) == names

    # The raw columns: minmax fitted on the training split only, zscore likewise, none as is.
    splits = output.prepared.splits
    minmax = names.index("1h_trend.minus_di_raw")
    assert splits.x_train[:, minmax].min() == pytest.approx(0.0, abs=1e-6)
    assert splits.x_train[:, minmax].max() == pytest.approx(1.0, abs=1e-6)
    zscore = names.index("1h_momentum.signal_raw")
    assert abs(float(splits.x_train[:, zscore].mean())) < 1e-3
    none = names.index("4h_fast_rsi_raw")
    raw_rows = frame.loc[splits.test_index].to_numpy(dtype=np.float32)
    np.testing.assert_array_equal(splits.x_test[:, none], raw_rows[:, none])

    # The 4h +DI sigmoid is the membership of the 4h indicator, forward-filled onto 1h rows.
    plus_di = compute_outputs(load_strategy(V3_MULTI).indicators["trend"], bars["4h"])["plus_di"]
    pushing = load_strategy(V3_MULTI).fuzzy_sets["buyers"].memberships["pushing"]
    row = frame.index.get_loc(splits.test_index[10])
    closes = frame.index[row] + np.timedelta64(1, "h")
    known = bars["4h"].index.searchsorted(closes - np.timedelta64(4, "h"), "right") - 1
    expected = membership(pushing, plus_di[known : known + 1])[0]
    assert frame.iloc[row]["4h_buyers_pushing"] == pytest.approx(expected, abs=1e-6)

    # Inference rebuilds the same rows and scales them as training did.
    bar = splits.test_index[-1]
    prediction = predict_signal(model, "SYNTH", at=bar.isoformat(), data_dir=synthetic_data_dir)
    assert list(prediction.input_features) == names
    raw = np.array([list(prediction.input_features.values())], dtype=np.float32)
    assert model.scaler is not None
    np.testing.assert_array_equal(model.scaler.transform(raw), splits.x_test[-1:])
    assert sum(prediction.probabilities.values()) == pytest.approx(1.0, abs=1e-6)


def test_the_result_says_where_hyperparameters_came_from_and_what_differs(
    tmp_path: Path, synthetic_data_dir: Path
) -> None:
    strategy = _write(tmp_path, "v3_mix", V3_MULTI)
    result = run_training_pipeline(
        build_training_context(strategy, data_dir=synthetic_data_dir), save_model=False
    )
    info = result.session_info
    assert info.strategy_layout == "v3"
    assert info.hyperparameter_sources["epochs"] == "training.epochs"
    assert info.hyperparameter_sources["batch_size"] == "training.batch_size"
    assert info.hyperparameter_sources["learning_rate"] == "default"
    assert result.training_metrics.epochs_completed == 2  # training.epochs: 2 was applied
    expected = [notice.path for notice in load_strategy(V3_MULTI).notices]
    assert expected and [notice.path for notice in info.strategy_notices] == expected


def test_migrated_v3_form_trains_on_the_same_features(
    tmp_path: Path, synthetic_data_dir: Path
) -> None:
    v2 = _write(tmp_path, "v2_for_migration", V2_FILE)
    v3_text = migrate_strategy(V2_FILE, file=str(v2))
    assert load_strategy(v3_text).layout == "v3"
    v3 = tmp_path / "migrated"
    v3.mkdir()
    v3_path = _write(v3, "v2_for_migration", v3_text)
    prepared = [
        prepare_data(build_training_context(path, data_dir=synthetic_data_dir))
        for path in (v2, v3_path)
    ]
    first, second = (p.splits for p in prepared)
    assert first.feature_names == second.feature_names
    assert len(first.feature_names) == 6 * 2 * 3  # 6 memberships, 2 timeframes, 2 lags
    for name in ("x_train", "x_val", "x_test", "y_train", "y_test"):
        np.testing.assert_array_equal(getattr(first, name), getattr(second, name))
    assert prepared[0].column_modes == prepared[1].column_modes


CONTEXT_STRATEGY = """
name: gbp_with_eur_context
version: "3.0"
training_data:
  symbols: {mode: single, symbol: GBPUSD}
  timeframes: {mode: single, timeframe: 1h}
context_data:
  - {provider: ib, symbol: EURUSD, instrument_type: forex}
  - {provider: ib, symbol: DXY, timeframe: 4h}
indicators:
  own_rsi: {type: rsi, period: 14}
  eur_rsi: {type: rsi, period: 14, data_source: EURUSD}
  eur_ma: {type: sma, period: 20, data_source: EURUSD}
  dollar_rsi: {type: rsi, period: 10, data_source: DXY}
fuzzy_sets:
  own: {indicator: own_rsi, low: [0, 30, 50], high: [50, 70, 100]}
  eur: {indicator: eur_rsi, low: [0, 30, 50], high: [50, 70, 100]}
  eur_trend:
    indicator: eur_ma
    input_transform: {type: price_ratio, reference: close}
    below: [0.95, 0.99, 1.0]
    above: [1.0, 1.01, 1.05]
  dollar: {indicator: dollar_rsi, low: [0, 30, 50], high: [50, 70, 100]}
nn_inputs:
  - {fuzzy_set: own, timeframes: all}
  - {fuzzy_set: eur, timeframes: all}
  - {fuzzy_set: eur_trend, timeframes: all}
  - {fuzzy_set: dollar, timeframes: all}
model:
  type: mlp
  architecture: {hidden_layers: [8]}
  features: {lookback_periods: 0}
training:
  labels: {source: zigzag, zigzag_threshold: 0.01, label_lookahead: 20}
  epochs: 1
  data_split: {train: 0.7, validation: 0.15, test: 0.15}
"""


@pytest.fixture
def fx_data(tmp_path: Path) -> Path:
    """GBPUSD and EURUSD hourly bars on the FX calendar (weekend gaps), DXY on 4h."""
    folder = tmp_path / "fx"
    folder.mkdir()
    write_ohlcv_csv(
        generate_ohlcv(2400, timeframe="1h", seed=21, start_price=1.27, calendar="fx"),
        folder / "GBPUSD_1h.csv",
    )
    write_ohlcv_csv(
        generate_ohlcv(2400, timeframe="1h", seed=22, start_price=1.10, calendar="fx"),
        folder / "EURUSD_1h.csv",
    )
    return folder


def test_context_series_missing_fails_at_start_naming_the_files(
    tmp_path: Path, fx_data: Path
) -> None:
    strategy = _write(tmp_path, "ctx", CONTEXT_STRATEGY)
    with pytest.raises(DataError) as info:
        build_training_context(strategy, data_dir=fx_data)
    message = str(info.value)
    assert "series 'DXY' (4h), read by 'dollar_rsi'" in message
    assert "DXY_4h{.csv,.csv.gz,.parquet}" in message
    assert "EURUSD" not in message.split("DXY", 1)[0]  # EURUSD is there: not listed
    assert "{SOURCE_ID}_{TIMEFRAME}.csv" in message


def test_indicators_on_context_series_are_aligned_without_look_ahead(
    tmp_path: Path, fx_data: Path
) -> None:
    write_ohlcv_csv(
        generate_ohlcv(600, timeframe="4h", seed=23, start_price=95.0, calendar="fx"),
        fx_data / "DXY_4h.csv",
    )
    strategy = _write(tmp_path, "ctx", CONTEXT_STRATEGY)
    context = build_training_context(strategy, data_dir=fx_data, models_dir=tmp_path / "m")
    output = execute_pipeline(context)
    assert output.saved is not None
    spec = load_strategy(CONTEXT_STRATEGY)
    gbp = load_ohlcv("GBPUSD", "1h", data_dir=fx_data)
    eur = load_ohlcv("EURUSD", "1h", data_dir=fx_data)
    dxy = load_ohlcv("DXY", "4h", data_dir=fx_data)
    model = load_model("gbp_with_eur_context", root=tmp_path / "m")
    series = {("EURUSD", "1h"): eur, ("DXY", "4h"): dxy}
    frame = features_for_bars(model.strategy_config, {"1h": gbp}, "1h", series)
    assert list(frame.columns) == output.prepared.splits.feature_names

    # Same calendar: the EURUSD RSI membership is the one of EURUSD's own bar.
    eur_rsi = compute_outputs(spec.indicators["eur_rsi"], eur)["rsi"]
    high = spec.fuzzy_sets["eur"].memberships["high"]
    assert gbp.index.equals(eur.index)
    np.testing.assert_allclose(
        frame["1h_eur_high"].to_numpy()[100:], membership(high, eur_rsi)[100:], atol=1e-6
    )
    # price_ratio over a context indicator reads the context series' own close.
    ratio = eur["close"].to_numpy() / compute_outputs(spec.indicators["eur_ma"], eur)["sma"]
    above = spec.fuzzy_sets["eur_trend"].memberships["above"]
    np.testing.assert_allclose(
        frame["1h_eur_trend_above"].to_numpy()[100:], membership(above, ratio)[100:], atol=1e-6
    )
    # A 4h series counts once its bar has closed: at the 1h bar ending 08:00, the 04:00 bar.
    dollar = compute_outputs(spec.indicators["dollar_rsi"], dxy)["rsi"]
    low = spec.fuzzy_sets["dollar"].memberships["low"]
    for position in (500, 501, 502, 503, 1500):
        closes = gbp.index[position] + np.timedelta64(1, "h")
        known = dxy.index.searchsorted(closes - np.timedelta64(4, "h"), "right") - 1
        expected = membership(low, dollar[known : known + 1])[0]
        assert frame["1h_dollar_low"].iloc[position] == pytest.approx(expected, abs=1e-6)

    prediction = predict_signal(model, "GBPUSD", data_dir=fx_data)
    assert list(prediction.input_features) == model.feature_names


@pytest.mark.parametrize("name", [listing.name for listing in list_strategies()])
def test_each_shipped_example_trains_with_no_arguments(name: str, tmp_path: Path) -> None:
    context = build_training_context(name, models_dir=tmp_path, epochs=1)
    output = execute_pipeline(context)
    assert output.training_metrics.epochs_completed == 1
    assert output.saved is not None
    report = output.prepared.feature_report
    assert not report.dead, f"{name}: inputs that never fire: {report.dead}"


FX_QUOTES = """
name: fx_quotes
training_data:
  symbols: {mode: single, symbol: USDJPY}
  timeframes: {mode: multi_timeframe, list: [1h, 4h], base_timeframe: 1h}
indicators:
  - {name: rsi, feature_id: rsi_14, period: 14}
  - {name: OBV, feature_id: obv}
fuzzy_sets:
  rsi_14: {low: [0, 30, 50], high: [50, 70, 100]}
  obv: {rising: {type: sigmoid, parameters: [0, 0.001]}}
model:
  type: mlp
  architecture: {hidden_layers: [8]}
  training: {epochs: 1}
training:
  labels: {source: zigzag, zigzag_threshold: 0.01, label_lookahead: 20}
"""


def test_fx_quotes_without_volume_train_and_volume_indicators_say_why_not(
    tmp_path: Path,
) -> None:
    """USDJPY quotes with weekend gaps and no volume column, 4h resampled from 1h."""
    folder = tmp_path / "fx"
    folder.mkdir()
    quotes = generate_ohlcv(2400, timeframe="1h", seed=5, start_price=150.0, calendar="fx")
    quotes.drop(columns="volume").to_csv(folder / "USDJPY_1h.csv", index_label="date")
    with_obv = _write(tmp_path, "fx_quotes", FX_QUOTES)
    with pytest.raises(
        DataError, match=r"the USDJPY 1h data has no volume, and indicator .obv. needs"
    ):
        prepare_data(build_training_context(with_obv, data_dir=folder))

    without = _write(
        tmp_path,
        "fx_rsi",
        FX_QUOTES.replace("name: fx_quotes", "name: fx_rsi")
        .replace("  - {name: OBV, feature_id: obv}\n", "")
        .replace("  obv: {rising: {type: sigmoid, parameters: [0, 0.001]}}\n", ""),
    )
    result = run_training_pipeline(
        build_training_context(without, data_dir=folder), save_model=False
    )
    assert result.training_metrics.epochs_completed == 1
    resampled = {b.timeframe: b.resampled_from for b in result.data_summary.bars}
    assert resampled == {"1h": None, "4h": "1h"}


def test_every_indicator_of_the_catalog_trains_with_every_output(
    tmp_path: Path, synthetic_data_dir: Path
) -> None:
    """One v3 file naming all 31 indicators (defaults), every output a raw z-scored input."""
    indicators = {f"i_{entry.name}": {"type": entry.name} for entry in INDICATOR_CATALOG.values()}
    inputs = [
        {
            "raw_indicator": f"i_{entry.name}" + (f".{output}" if len(entry.outputs) > 1 else ""),
            "timeframes": "all",
        }
        for entry in INDICATOR_CATALOG.values()
        for output in entry.outputs
        if entry.name != "zigzag"  # hindsight: refused as an input (below)
    ]
    document = {
        "name": "whole_catalog",
        "version": "3.0",
        "training_data": {
            "symbols": {"mode": "single", "symbol": "SYNTH"},
            "timeframes": {"mode": "single", "timeframe": "1h"},
        },
        "indicators": indicators,
        "fuzzy_sets": {"rsi_any": {"indicator": "i_rsi", "mid": [30, 50, 70]}},
        "nn_inputs": [{"fuzzy_set": "rsi_any", "timeframes": "all"}, *inputs],
        "model": {"type": "mlp", "architecture": {"hidden_layers": [16]}},
        "training": {
            "labels": {"source": "zigzag", "zigzag_threshold": 0.02, "label_lookahead": 20},
            "epochs": 1,
        },
    }
    strategy = _write(tmp_path, "whole_catalog", yaml.safe_dump(document, sort_keys=False))
    assert len(indicators) == 31
    result = run_training_pipeline(
        build_training_context(strategy, data_dir=synthetic_data_dir), save_model=False
    )
    summary = result.data_summary
    assert summary.feature_count == 1 + len(inputs)
    assert summary.samples is not None and summary.samples["train"] > 1000
    assert result.training_metrics.epochs_completed == 1
    assert result.test_metrics is not None and 0.0 <= result.test_metrics.accuracy <= 1.0

    document["nn_inputs"].append({"raw_indicator": "i_zigzag", "timeframes": "all"})
    strategy.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"indicator 'i_zigzag' \(zigzag\) is a model input"):
        build_training_context(strategy, data_dir=synthetic_data_dir)


LATER_LABELS = {
    "triple_barrier": (
        "{source: triple_barrier, pt_multiplier: 2.0, sl_multiplier: 1.5, max_holding_period: 24, "
        "vol_span: 30, compute_weights: true}"
    ),
    "triple_barrier_synonyms": (
        "{source: triple_barrier, profit_target_atr: 2.5, stop_loss_atr: 1.0, "
        "max_holding_bars: 12, atr_period: 20}"
    ),
    "context": "{source: context, horizon: 6, bullish_threshold: 0.003, bearish_threshold: -0.003}",
}


@pytest.mark.parametrize("kind", list(LATER_LABELS))
def test_later_label_kinds_train_save_and_predict(
    kind: str, tmp_path: Path, synthetic_data_dir: Path
) -> None:
    text = V2_FILE.replace(
        "labels: {source: zigzag, zigzag_threshold: 0.02, label_lookahead: 20}",
        f"labels: {LATER_LABELS[kind]}",
    ).replace("name: v2_for_migration", f"name: labels_{kind}")
    strategy = _write(tmp_path, f"labels_{kind}", text)
    context = build_training_context(
        strategy, data_dir=synthetic_data_dir, models_dir=tmp_path / "m"
    )
    output = execute_pipeline(context)
    splits = output.prepared.splits
    assert (splits.w_train is not None) == (kind == "triple_barrier")
    distribution = output.data_summary.label_distribution
    assert distribution is not None and set(distribution["train"]) == {"BUY", "HOLD", "SELL"}
    assert min(distribution["train"].values()) > 0
    assert output.test_metrics.samples == len(splits.y_test)
    model = load_model(f"labels_{kind}", root=tmp_path / "m")
    prediction = predict_signal(model, "SYNTH", data_dir=synthetic_data_dir)
    assert prediction.signal in {"buy", "hold", "sell"}
    labels = model.strategy_config["training"]["labels"]
    assert labels["source"] == kind.removesuffix("_synonyms")
    if kind == "triple_barrier_synonyms":  # KTRDR's other names are read as the parameters
        assert (labels["pt_multiplier"], labels["sl_multiplier"]) == (2.5, 1.0)
        assert (labels["max_holding_period"], labels["vol_span"]) == (12, 20)


REGRESSION = V2_FILE.replace(
    "labels: {source: zigzag, zigzag_threshold: 0.02, label_lookahead: 20}",
    "labels: {source: forward_return, horizon: 8}\n  loss: mse",
).replace("name: v2_for_migration", "name: forward_returns") + (
    "decisions:\n  output_format: regression\n"
    "  cost_model: {round_trip_cost: 0.001, min_edge_multiplier: 3.0}\n"
)


def test_forward_return_regression_trains_saves_and_predicts_a_return(
    tmp_path: Path, synthetic_data_dir: Path
) -> None:
    strategy = _write(tmp_path, "forward_returns", REGRESSION)
    context = build_training_context(
        strategy, data_dir=synthetic_data_dir, models_dir=tmp_path / "m"
    )
    output = execute_pipeline(context)
    assert output.test_metrics is None and output.validation_metrics is None
    test = output.test_regression
    assert test is not None and output.validation_regression is not None
    splits = output.prepared.splits
    assert test.samples == len(splits.y_test) and splits.y_test.dtype == np.float32
    assert test.train_mean == pytest.approx(float(splits.y_train.mean()), rel=1e-5)
    assert output.data_summary.target_quantiles["test"]["p50"] == pytest.approx(
        float(np.median(splits.y_test)), rel=1e-5
    )
    assert output.fit.module.regression and output.fit.module.regression_loss == "mse"

    model = load_model("forward_returns", root=tmp_path / "m")
    assert model.regression
    assert model.metrics["test"]["mae"] == pytest.approx(test.mae)
    bar = splits.test_index[-1]
    prediction = predict_signal(model, "SYNTH", at=bar.isoformat(), data_dir=synthetic_data_dir)
    raw = np.array([list(prediction.input_features.values())], dtype=np.float32)
    assert prediction.predicted_return == pytest.approx(float(model.predict_values(raw)[0]))
    edge = 0.001 * 3.0
    predicted = prediction.predicted_return
    assert prediction.signal == (
        "buy" if predicted > edge else "sell" if predicted < -edge else "hold"
    )
    assert prediction.probabilities == {}
    assert prediction.signal_strength == pytest.approx(max(0.0, abs(predicted) - edge))


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_recurrent_models_train_on_windows_save_and_predict(
    kind: str, tmp_path: Path, synthetic_data_dir: Path
) -> None:
    text = V2_FILE.replace(
        "  architecture: {hidden_layers: [8]}",
        f"  type: {kind}\n  architecture: {{sequence_length: 10, hidden_size: 12, num_layers: 2}}",
    ).replace("name: v2_for_migration", f"name: windows_{kind}")
    assert f"type: {kind}" in text
    strategy = _write(tmp_path, f"windows_{kind}", text)
    context = build_training_context(
        strategy, data_dir=synthetic_data_dir, models_dir=tmp_path / "m"
    )
    output = execute_pipeline(context)
    splits = output.prepared.splits
    windows = splits.windows
    assert windows is not None and windows.length == 10
    module = output.fit.module
    assert isinstance(module.network, SequenceNetwork)
    cell = module.network.recurrent
    assert (cell.num_layers, cell.hidden_size) == (2, 12)
    assert type(cell).__name__ == kind.upper()
    # every window is complete, and a split's rows are its windows' last rows
    cut = windows.windows(windows.test_ends)
    assert cut.shape == (len(splits.y_test), 10, len(splits.feature_names))
    assert not np.isnan(cut).any()
    np.testing.assert_array_equal(cut[:, -1, :], splits.x_test)
    np.testing.assert_array_equal(cut[5, 0], windows.source[windows.test_ends[5] - 9])
    assert output.test_metrics is not None and output.test_metrics.samples == len(splits.y_test)

    model = load_model(f"windows_{kind}", root=tmp_path / "m")
    assert model.sequence_length == 10
    bar = splits.test_index[-1]
    prediction = predict_signal(model, "SYNTH", at=bar.isoformat(), data_dir=synthetic_data_dir)
    expected = module.predict_proba(torch.from_numpy(cut[-1:].copy()))[0].numpy()
    got = np.array([prediction.probabilities[s] for s in ("buy", "hold", "sell")])
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_regime_labels_train_a_four_class_model_that_predicts_a_regime(
    tmp_path: Path, synthetic_data_dir: Path
) -> None:
    text = V2_FILE.replace(
        "labels: {source: zigzag, zigzag_threshold: 0.02, label_lookahead: 20}",
        "labels: {source: regime, vol_lookback: 60, progression_tolerance: 0.5}",
    ).replace("name: v2_for_migration", "name: regimes")
    strategy = _write(tmp_path, "regimes", text)
    context = build_training_context(
        strategy, data_dir=synthetic_data_dir, models_dir=tmp_path / "m"
    )
    output = execute_pipeline(context)
    names = ("trending_up", "trending_down", "ranging", "volatile")
    assert output.fit.module.class_names == names
    test = output.test_metrics
    assert test is not None and set(test.per_class) == set(names)
    assert len(test.confusion_matrix) == 4
    assert set(output.data_summary.label_distribution["train"]) == set(names)

    model = load_model("regimes", root=tmp_path / "m")
    assert model.module.class_names == names
    prediction = predict_signal(model, "SYNTH", data_dir=synthetic_data_dir)
    assert prediction.signal == "hold" and prediction.regime in names
    assert set(prediction.probabilities) == set(names)
    assert sum(prediction.probabilities.values()) == pytest.approx(1.0, abs=1e-6)
    assert prediction.regime == max(prediction.probabilities, key=prediction.probabilities.get)
