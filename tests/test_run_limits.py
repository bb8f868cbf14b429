"""Caps on what one run may ask for: refused before anything is stored, named with the
setting that raises them; a run past its wall-time cap stops after its epoch."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ktrdr_lib import OperationStore, TrainingOrchestrator, build_training_context
from ktrdr_lib.errors import ConfigError
from ktrdr_lib.features.inputs import plan_inputs
from ktrdr_lib.pipeline.limits import RunLimits, count_parameters
from ktrdr_lib.pipeline.prepare import prepare_data
from ktrdr_lib.training.module import FuzzyMLP


def _build(strategy: Path, data: Path, **fields: Any) -> Any:
    return build_training_context(strategy, data_dir=data, **fields)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (
            {"overrides": {"model.architecture.hidden_layers": [100_000, 100_000]}},
            r"about 10,00\d,\d{3},\d{3} trainable parameters .* \(KTRDR_MAX_PARAMETERS\)",
        ),
        ({"epochs": 1_000_000_000}, r"epochs: 1e\+09 is more than this server allows \(10000"),
        ({"overrides": {"model.training.batch_size": 10**6}}, "KTRDR_MAX_BATCH_SIZE"),
        ({"overrides": {"model.features.lookback_periods": 5000}}, "KTRDR_MAX_LOOKBACK"),
        ({"seed": 2**64 - 1}, r"seed: 18446744073709551615 is more than 4294967295"),
        ({"symbols": [f"S{i}" for i in range(51)]}, r"symbols: 51 .*KTRDR_MAX_SYMBOLS"),
        (
            {"overrides": {f"model.training.k{i}": 1 for i in range(201)}},
            r"overrides: 201 keys, more than 200 \(KTRDR_MAX_OVERRIDES\)",
        ),
    ],
)
def test_a_run_past_a_cap_is_refused_and_nothing_is_stored(
    small_strategy_file: Path, synthetic_data_dir: Path, fields: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        _build(small_strategy_file, synthetic_data_dir, **fields)
    orch = TrainingOrchestrator(store=OperationStore(":memory:"), data_dir=synthetic_data_dir)
    try:
        with pytest.raises(ConfigError):
            orch.start_training(small_strategy_file, **fields)
        assert orch.list_operations().total_count == 0
    finally:
        orch.shutdown()


def test_a_deeply_nested_override_is_refused_in_one_line(
    small_strategy_file: Path, synthetic_data_dir: Path
) -> None:
    deep: Any = 1
    for _ in range(900):
        deep = [deep]
    with pytest.raises(ConfigError) as caught:
        _build(small_strategy_file, synthetic_data_dir, overrides={"epochs": deep})
    assert "nests deeper than 16 levels" in caught.value.detail
    assert len(caught.value.detail) < 300


def test_caps_come_from_the_settings(
    monkeypatch: pytest.MonkeyPatch, small_strategy_file: Path, synthetic_data_dir: Path
) -> None:
    monkeypatch.setenv("KTRDR_MAX_EPOCHS", "5")
    assert _build(small_strategy_file, synthetic_data_dir, epochs=5).total_epochs == 5
    with pytest.raises(ConfigError, match=r"epochs: 6 is more than this server allows \(5, "):
        _build(small_strategy_file, synthetic_data_dir, epochs=6)
    monkeypatch.setenv("KTRDR_MAX_RUN_HOURS", "0.5")
    assert RunLimits.from_env().max_run_seconds == 1800
    monkeypatch.setenv("KTRDR_MAX_PARAMETERS", "-3")
    with pytest.raises(ConfigError, match="KTRDR_MAX_PARAMETERS='-3' is not a positive whole"):
        RunLimits.from_env()


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"model.features.include_price_context": True, "model.features.lookback_periods": 3},
        {"model.type": "lstm", "model.architecture.sequence_length": 8},
        {"model.type": "gru", "model.architecture.sequence_length": 4},
    ],
)
def test_the_parameter_count_is_the_networks_own(
    small_strategy_file: Path, synthetic_data_dir: Path, overrides: dict[str, Any]
) -> None:
    context = _build(small_strategy_file, synthetic_data_dir, overrides=overrides, epochs=1)
    width = prepare_data(context).splits.x_train.shape[1]
    module = FuzzyMLP(context.strategy.model, width)
    real = sum(p.numel() for p in module.parameters() if p.requires_grad)
    n_inputs = len(plan_inputs(context.strategy, context.timeframes).columns)
    assert count_parameters(context.strategy, n_inputs) == real


@pytest.mark.slow
def test_a_run_past_its_wall_time_stops_after_its_epoch(
    monkeypatch: pytest.MonkeyPatch, small_strategy_file: Path, synthetic_data_dir: Path
) -> None:
    monkeypatch.setenv("KTRDR_MAX_RUN_HOURS", "0.0005")  # 1.8 s
    orch = TrainingOrchestrator(store=OperationStore(":memory:"), data_dir=synthetic_data_dir)
    try:
        op = orch.start_training(
            small_strategy_file, epochs=2000, overrides={"model.training.batch_size": 8}
        )
        record = op.wait(120)
        assert record.status == "completed", record.error_message
        assert record.cancel_kind == "graceful"
        assert "wall-time cap of 0.0005 h (KTRDR_MAX_RUN_HOURS)" in (
            record.cancellation_reason or ""
        )
        assert 1 <= op.result().training_metrics.epochs_completed < 2000
    finally:
        orch.shutdown(cancel_running=True)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b'{"epochs": 18446744073709551616}', "epochs"),
        (b'{"seed": 18446744073709551615}', "seed"),
        (b'{"placebo_runs": 51}', "placebo_runs"),
        (b'{"num_cpus": -1}', "num_cpus"),
        (b'{"symbols": ["' + b"A" * 65 + b'"]}', "symbols"),
    ],
)
def test_request_bodies_carry_bounded_fields(body: bytes, field: str) -> None:
    import msgspec

    from ktrdr_lib.schemas.requests import TrainingRequest

    with pytest.raises(msgspec.ValidationError, match=field):
        msgspec.json.decode(body, type=TrainingRequest)
