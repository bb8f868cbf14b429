"""build_training_context: resolution, overrides and early, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from ktrdr_lib.data.synthetic import generate_ohlcv, write_ohlcv_csv
from ktrdr_lib.errors import ConfigError, StrategyNotFoundError
from ktrdr_lib.pipeline.context import build_training_context, new_operation_id
from ktrdr_lib.strategy.config import apply_overrides, strategy_to_config
from ktrdr_lib.strategy.loader import load_strategy


def test_defaults_come_from_the_strategy(
    small_strategy_file: Path, synthetic_data_dir: Path
) -> None:
    ctx = build_training_context(small_strategy_file, data_dir=synthetic_data_dir)
    assert ctx.symbols == ["SYNTH"]
    assert ctx.timeframes == ["1h"]
    assert ctx.base_timeframe == "1h"
    assert ctx.total_epochs == 3
    assert ctx.batch_size == 64
    assert ctx.batches_per_epoch is None
    assert ctx.strategy_path == str(small_strategy_file)
    assert ctx.operation_id.startswith("op_training_")


def test_request_overrides_the_strategy(small_strategy_file: Path, tmp_path: Path) -> None:
    for symbol in ("AAA", "BBB"):
        for timeframe in ("1h", "4h"):
            write_ohlcv_csv(
                generate_ohlcv(2000, timeframe=timeframe, seed=1),  # covers the dates asked
                tmp_path / f"{symbol}_{timeframe}.csv",
            )
    ctx = build_training_context(
        small_strategy_file,
        data_dir=tmp_path,
        symbols=["AAA", "BBB"],
        timeframes=["4h", "1h"],
        start_date="2020-02-01",
        end_date="2020-03-01",
        overrides={"batch_size": 16, "model.architecture.dropout": 0.0},
        epochs=7,
    )
    assert ctx.symbols == ["AAA", "BBB"]
    assert ctx.base_timeframe == "1h"  # the fastest when the strategy names none
    assert ctx.total_epochs == 7 and ctx.batch_size == 16
    assert ctx.strategy.model.architecture.dropout == 0.0
    assert ctx.start_date == "2020-02-01T00:00:00Z"
    meta = ctx.metadata()
    assert meta["symbol"] == "MULTI"
    assert meta["parameters"]["epochs"] == 7
    assert meta["parameters"]["training_mode"] == "local"


def test_shipped_example_resolves_by_name() -> None:
    ctx = build_training_context("rsi_mean_reversion")
    assert ctx.symbols and ctx.timeframes
    assert ctx.strategy_path is not None and ctx.strategy_path.endswith("rsi_mean_reversion.yaml")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"symbols": ["../etc"]}, "is not a symbol"),
        ({"timeframes": ["7x"]}, "7x"),
        ({"start_date": "not-a-date"}, "start_date: 'not-a-date' is not a date"),
        ({"start_date": "2021-01-01", "end_date": "2020-01-01"}, "is not before end_date"),
        ({"epochs": 0}, "epochs"),
        ({"overrides": {"model.training.nonsense": 1}}, "nonsense"),
        ({"mode": "cloud"}, "not a training mode"),
    ],
)
def test_bad_requests_fail_before_anything_runs(
    small_strategy_file: Path, synthetic_data_dir: Path, kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        build_training_context(small_strategy_file, data_dir=synthetic_data_dir, **kwargs)  # type: ignore[arg-type]


def test_missing_strategy_lists_places_searched() -> None:
    with pytest.raises(StrategyNotFoundError, match="Strategy file not found") as info:
        build_training_context("no_such_strategy")
    assert info.value.searched


def test_config_round_trips_through_yaml(small_strategy_file: Path) -> None:
    spec = load_strategy(small_strategy_file)
    again = load_strategy(yaml.safe_dump(strategy_to_config(spec), sort_keys=False))
    assert strategy_to_config(again) == strategy_to_config(spec)


def test_overrides_keep_the_source(small_strategy_file: Path) -> None:
    spec = load_strategy(small_strategy_file)
    changed = apply_overrides(spec, {"epochs": 2})
    assert changed.model.training.epochs == 2
    assert changed.source == spec.source
    assert apply_overrides(spec, {}) is spec


def test_operation_ids_are_unique() -> None:
    assert len({new_operation_id() for _ in range(50)}) == 50
