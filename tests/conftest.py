"""Shared fixtures: an isolated KTRDR_HOME per test and small synthetic data directories."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def isolated_home(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """Every test gets its own KTRDR_HOME; KTRDR_* settings from the caller's shell are cleared."""
    home = tmp_path_factory.mktemp("ktrdr_home")
    for name in (
        "KTRDR_DATA_DIR",
        "KTRDR_STRATEGIES_DIR",
        "KTRDR_API_TOKEN",
        "KTRDR_API_URL",
        "KTRDR_HOST_URL",
        "KTRDR_HOST_TOKEN",
        "KTRDR_HOST_RETRY_BUDGET_S",
        "KTRDR_RAY_ADDRESS",
        "KTRDR_MAX_PENDING",
        "KTRDR_MAX_PARAMETERS",
        "KTRDR_MAX_EPOCHS",
        "KTRDR_MAX_BATCH_SIZE",
        "KTRDR_MAX_LOOKBACK",
        "KTRDR_MAX_SEQUENCE",
        "KTRDR_MAX_SYMBOLS",
        "KTRDR_MAX_TIMEFRAMES",
        "KTRDR_MAX_OVERRIDES",
        "KTRDR_MAX_RUN_HOURS",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("KTRDR_HOME", str(home))
    # Apps the tests build train in-process unless a test asks for child processes (the
    # default, tested in tests/test_api_runner_default.py, which unsets this).
    monkeypatch.setenv("KTRDR_LOCAL_RUNNER", "thread")
    return home


@pytest.fixture(scope="session")
def synthetic_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data directory with seeded synthetic hourly bars for SYNTH (and SYNTH2), and TINY: a
    series too short to train on, so a run that starts fails while loading its data."""
    from ktrdr_lib.data.synthetic import generate_ohlcv, write_ohlcv_csv

    root = tmp_path_factory.mktemp("data")
    write_ohlcv_csv(generate_ohlcv(3000, timeframe="1h", seed=7), root / "SYNTH_1h.csv")
    write_ohlcv_csv(generate_ohlcv(2500, timeframe="1h", seed=11), root / "SYNTH2_1h.csv.gz")
    write_ohlcv_csv(generate_ohlcv(30, timeframe="1h", seed=13), root / "TINY_1h.csv")
    return root


SMALL_STRATEGY = """
name: small_test
description: a tiny strategy for tests
training_data:
  symbols: {mode: single, symbol: SYNTH}
  timeframes: {mode: single, timeframe: 1h}
  history_required: 30
indicators:
  - {name: rsi, period: 14}
  - {name: sma, period: 20}
fuzzy_sets:
  rsi:
    oversold: {type: triangular, parameters: [0, 20, 40]}
    neutral: {type: trapezoidal, parameters: [30, 45, 55, 70]}
    overbought: {type: triangular, parameters: [60, 80, 100]}
  sma:
    below: {type: gaussian, parameters: [0.97, 0.02]}
    near: {type: gaussian, parameters: [1.0, 0.01]}
    above: {type: gaussian, parameters: [1.03, 0.02]}
model:
  type: mlp
  architecture: {hidden_layers: [16, 8], activation: relu, dropout: 0.1}
  features: {lookback_periods: 2, scale_features: true}
  training: {learning_rate: 0.005, batch_size: 64, epochs: 3, optimizer: adam}
training:
  method: supervised
  labels: {source: zigzag, zigzag_threshold: 0.02, label_lookahead: 20}
  data_split: {train: 0.6, validation: 0.2, test: 0.2}
"""


REGRESSION_STRATEGY = (
    SMALL_STRATEGY.replace(
        "labels: {source: zigzag, zigzag_threshold: 0.02, label_lookahead: 20}",
        "labels: {source: forward_return, horizon: 6}",
    )
    + "decisions: {output_format: regression}\n"
)
"""The small strategy as a forward-return regression."""


@pytest.fixture
def small_strategy_file(tmp_path: Path) -> Path:
    """A valid small strategy on SYNTH 1h, written to a temp file."""
    path = tmp_path / "small_test.yaml"
    path.write_text(SMALL_STRATEGY, encoding="utf-8")
    return path


@pytest.fixture
def strategies_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """KTRDR_STRATEGIES_DIR with the small test strategy (name ``small_test``) in it."""
    folder = tmp_path / "strategies"
    folder.mkdir()
    (folder / "small_test.yaml").write_text(SMALL_STRATEGY, encoding="utf-8")
    monkeypatch.setenv("KTRDR_STRATEGIES_DIR", str(folder))
    return folder
