"""Ray mode without a cluster: the errors a user sees, and which runs share prepared data."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from ktrdr_lib import OperationStore, TrainingOrchestrator
from ktrdr_lib.errors import ConfigError
from ktrdr_lib.pipeline.context import build_training_context
from ktrdr_lib.pipeline.prepare import preparation_key
from ktrdr_lib.runners.ray import import_ray


def test_without_the_extra_ray_mode_names_the_extra(
    monkeypatch: pytest.MonkeyPatch, small_strategy_file: Path, synthetic_data_dir: Path
) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # as if Ray were not installed
    with pytest.raises(
        ConfigError, match=r"install the ray extra \(pip install 'ktrdr-lib\[ray\]'"
    ):
        import_ray()
    orch = TrainingOrchestrator(store=OperationStore(":memory:"), data_dir=synthetic_data_dir)
    try:
        with pytest.raises(ConfigError, match="ray extra"):
            orch.start_training(small_strategy_file, mode="ray", epochs=1)
        assert orch.list_operations().total_count == 0
    finally:
        orch.shutdown()
    monkeypatch.setenv("KTRDR_RAY_ADDRESS", "local")
    with pytest.raises(ConfigError, match="ray extra"):
        TrainingOrchestrator(store=OperationStore(":memory:"))


def test_ray_mode_without_a_cluster_says_how_to_name_one(
    small_strategy_file: Path, synthetic_data_dir: Path
) -> None:
    pytest.importorskip("ray")
    orch = TrainingOrchestrator(store=OperationStore(":memory:"), data_dir=synthetic_data_dir)
    try:
        with pytest.raises(ConfigError, match=r"set KTRDR_RAY_ADDRESS .*'local'"):
            orch.start_training(small_strategy_file, mode="ray", epochs=1)
    finally:
        orch.shutdown()


def test_ray_resources_are_checked_and_belong_to_ray_mode(
    small_strategy_file: Path, synthetic_data_dir: Path
) -> None:
    def build(**fields: object) -> object:
        return build_training_context(small_strategy_file, data_dir=synthetic_data_dir, **fields)

    with pytest.raises(ConfigError, match="num_gpus: the resources a Ray worker reserves apply"):
        build(num_gpus=1)
    with pytest.raises(ConfigError, match=r"num_cpus: -1\.0 is not a number >= 0"):
        build(mode="ray", num_cpus=-1.0)
    with pytest.raises(ConfigError, match="leaves the run no CPU"):
        build(mode="ray", num_cpus=0)
    context = build_training_context(
        small_strategy_file, data_dir=synthetic_data_dir, mode="ray", num_cpus=2, num_gpus=0.5
    )
    assert (context.num_cpus, context.num_gpus) == (2.0, 0.5)


def test_runs_that_differ_only_in_fit_settings_share_one_preparation(
    small_strategy_file: Path, synthetic_data_dir: Path
) -> None:
    def key(**overrides: object) -> str:
        context = build_training_context(
            small_strategy_file, data_dir=synthetic_data_dir, overrides=overrides, seed=1
        )
        return preparation_key(context)

    base = key()
    assert key(**{"model.training.learning_rate": 0.1}) == base
    assert key(epochs=7, **{"model.training.batch_size": 16}) == base
    assert key(**{"model.architecture.hidden_layers": [4]}) == base
    assert key(**{"training.labels.zigzag_threshold": 0.05}) != base
    assert key(**{"model.features.lookback_periods": 3}) != base
    other_seed = build_training_context(small_strategy_file, data_dir=synthetic_data_dir, seed=9)
    assert preparation_key(other_seed) == base
