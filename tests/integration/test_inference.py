"""predict_signal on a really trained model: exactly the training pipeline's rows and outputs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import msgspec
import numpy as np
import pandas as pd
import pytest

from ktrdr_lib.data.loader import load_ohlcv
from ktrdr_lib.errors import ConfigError, DataError
from ktrdr_lib.features.dataset import DatasetSplits, strategy_warmup
from ktrdr_lib.inference import SignalPrediction, features_for_bars, predict_signal
from ktrdr_lib.models.predictor import LoadedModel
from ktrdr_lib.models.store import load_model
from ktrdr_lib.pipeline.context import build_training_context
from ktrdr_lib.pipeline.run import execute_pipeline
from ktrdr_lib.strategy.config import strategy_to_config
from ktrdr_lib.strategy.loader import load_strategy
from tests.conftest import SMALL_STRATEGY

TRAIN_START = "2020-01-13T12:00:00Z"  # bar 300 of SYNTH 1h: the pipeline loads warm-up before it
TRAIN_END = "2020-04-22T12:00:00Z"  # bar 2700: the data goes on for 299 more bars


@dataclass(frozen=True)
class Trained:
    model: LoadedModel
    splits: DatasetSplits
    data_dir: Path
    bars: pd.DataFrame


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, synthetic_data_dir: Path) -> Trained:
    """One real training of the small strategy on a date range inside the data, saved."""
    root = tmp_path_factory.mktemp("inference")
    strategy_file = root / "small_test.yaml"
    strategy_file.write_text(SMALL_STRATEGY, encoding="utf-8")
    context = build_training_context(
        strategy_file,
        data_dir=synthetic_data_dir,
        models_dir=root / "models",
        start_date=TRAIN_START,
        end_date=TRAIN_END,
        epochs=2,
    )
    output = execute_pipeline(context)
    assert output.saved is not None
    return Trained(
        model=load_model("small_test", root=root / "models"),
        splits=output.prepared.splits,
        data_dir=synthetic_data_dir,
        bars=load_ohlcv("SYNTH", "1h", data_dir=synthetic_data_dir),
    )


def needed_bars() -> int:
    spec = load_strategy(SMALL_STRATEGY)
    return strategy_warmup(spec) + spec.model.features.lookback_periods + 1


def test_prediction_at_split_bars_equals_the_pipeline_rows(trained: Trained) -> None:
    splits = trained.splits
    picks = [
        (splits.x_test, splits.test_index, 0),
        (splits.x_test, splits.test_index, len(splits.test_index) // 2),
        (splits.x_test, splits.test_index, len(splits.test_index) - 1),
        (splits.x_train, splits.train_index, 0),  # right after the start: RSI's seed matters
    ]
    for x, index, position in picks:
        bar = index[position]
        prediction = predict_signal(
            trained.model, "SYNTH", at=bar.isoformat(), data_dir=trained.data_dir
        )
        assert prediction.bar_time == bar.isoformat()
        raw = np.array([list(prediction.input_features.values())], dtype=np.float32)
        # training scaled its rows in place; the prediction's raw row scales to the same row
        assert trained.model.scaler is not None
        assert np.array_equal(trained.model.scaler.transform(raw), x[position : position + 1])
        expected = trained.model.predict_proba(raw)[0]
        assert [prediction.probabilities[key] for key in ("buy", "hold", "sell")] == [
            float(value) for value in expected
        ]


def test_default_time_is_the_last_bar(trained: Trained) -> None:
    latest = predict_signal(trained.model, "SYNTH", data_dir=trained.data_dir)
    last_bar = trained.bars.index[-1]
    assert last_bar > pd.Timestamp(TRAIN_END)  # past the training range
    assert latest.bar_time == last_bar.isoformat()
    asked = predict_signal(
        trained.model, "SYNTH", at=last_bar.to_pydatetime(), data_dir=trained.data_dir
    )
    assert asked == latest


def test_time_between_bars_and_plain_dates_pick_the_bar_at_or_before(trained: Trained) -> None:
    bar = trained.bars.index[2000]
    inside = predict_signal(
        trained.model,
        "SYNTH",
        at=(bar + pd.Timedelta(minutes=30)).isoformat(),
        data_dir=trained.data_dir,
    )
    assert inside.bar_time == bar.isoformat()
    day = predict_signal(trained.model, "SYNTH", at="2020-02-10", data_dir=trained.data_dir)
    assert day.bar_time == "2020-02-10T23:00:00+00:00"


def test_prediction_is_consistent(trained: Trained) -> None:
    prediction = predict_signal(
        trained.model, "SYNTH", timeframe="1h", at=TRAIN_END, data_dir=trained.data_dir
    )
    probabilities = prediction.probabilities
    assert list(probabilities) == ["buy", "hold", "sell"]
    assert sum(probabilities.values()) == pytest.approx(1.0, abs=1e-6)
    ranked = sorted(probabilities.values(), reverse=True)
    assert prediction.signal == max(probabilities, key=lambda key: probabilities[key])
    assert prediction.confidence == ranked[0]
    assert prediction.signal_strength == pytest.approx(ranked[0] - ranked[1])
    assert prediction.fuzzy_outputs == {
        "bullish": probabilities["buy"],
        "bearish": probabilities["sell"],
        "neutral": probabilities["hold"],
    }
    assert list(prediction.input_features) == trained.model.feature_names
    assert (prediction.symbol, prediction.timeframe) == ("SYNTH", "1h")
    assert prediction.model_id == trained.model.model_id
    again = msgspec.json.decode(msgspec.json.encode(prediction), type=SignalPrediction)
    assert again == prediction


def test_too_little_history_says_how_many_bars_are_needed(trained: Trained) -> None:
    needed = needed_bars()
    index = trained.bars.index
    assert needed < 300  # these times are before the training start: data loads from bar 0
    first_possible = predict_signal(
        trained.model, "SYNTH", at=index[needed - 1].isoformat(), data_dir=trained.data_dir
    )
    assert first_possible.bar_time == index[needed - 1].isoformat()
    for position in (needed - 2, 5):
        with pytest.raises(DataError, match=rf"{position + 1} bar\(s\).*at least {needed}"):
            predict_signal(
                trained.model, "SYNTH", at=index[position].isoformat(), data_dir=trained.data_dir
            )


def test_timeframe_must_be_one_the_model_knows(trained: Trained) -> None:
    with pytest.raises(ConfigError, match=r"trained on 1h \(base 1h\).*'4h'"):
        predict_signal(trained.model, "SYNTH", timeframe="4h", data_dir=trained.data_dir)
    same = predict_signal(
        trained.model, "SYNTH", timeframe="60m", at=TRAIN_END, data_dir=trained.data_dir
    )
    assert same.timeframe == "1h"


def test_unknown_symbol_and_bad_time_are_reported(trained: Trained) -> None:
    with pytest.raises(DataError, match=r"no 1h data for NOPE.*SYNTH"):
        predict_signal(trained.model, "NOPE", data_dir=trained.data_dir)
    with pytest.raises(ConfigError, match="not a"):
        predict_signal(trained.model, "SYNTH", at="yesterday-ish", data_dir=trained.data_dir)


def test_features_for_bars_builds_the_training_columns(trained: Trained) -> None:
    frame = features_for_bars(trained.model.strategy_config, {"1h": trained.bars}, "1h")
    assert list(frame.columns) == trained.model.feature_names
    assert frame.index.equals(trained.bars.index)
    # Loaded from the file's start rather than the training start, the windowed SMA columns
    # agree exactly with training wherever its seed has no say; everything is finite late on.
    late = frame.loc[trained.splits.test_index]
    assert np.isfinite(late.to_numpy()).all()
    sma = [i for i, name in enumerate(frame.columns) if "_sma_" in name]
    assert sma
    assert trained.model.scaler is not None
    scaled = trained.model.scaler.transform(late.to_numpy(dtype=np.float64).astype(np.float32))
    assert np.array_equal(scaled[:, sma], trained.splits.x_test[:, sma])
    spec = load_strategy(SMALL_STRATEGY)
    assert features_for_bars(spec, {"1h": trained.bars}, "1h").equals(frame)
    with pytest.raises(ConfigError, match="base timeframe '4h'"):
        features_for_bars(spec, {"1h": trained.bars}, "4h")


def test_features_for_bars_aligns_slower_timeframes(synthetic_data_dir: Path) -> None:
    spec = load_strategy(SMALL_STRATEGY)
    bars = {tf: load_ohlcv("SYNTH", tf, data_dir=synthetic_data_dir) for tf in ("1h", "4h")}
    frame = features_for_bars(strategy_to_config(spec), bars, "1h")
    assert frame.index.equals(bars["1h"].index)
    four_hour = [name for name in frame.columns if name.startswith("4h_")]
    assert len(four_hour) == len([name for name in frame.columns if name.startswith("1h_")])
    # The 4h bar starting at 04:00 is known at 08:00, i.e. from the 07:00 1h bar (which closes
    # at 08:00) on; the 1h bar at 06:00 still sees the 00:00 4h bar.
    column = "4h_rsi_neutral"
    aligned = frame[column]
    four = features_for_bars(spec, {"4h": bars["4h"]}, "4h")[column]
    late = bars["1h"].index[500]
    assert late.hour == 20
    assert aligned[late + pd.Timedelta(hours=3)] == four[late]
    assert aligned[late + pd.Timedelta(hours=2)] == four[late - pd.Timedelta(hours=4)]
