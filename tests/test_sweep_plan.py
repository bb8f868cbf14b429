"""A sweep's request is checked before anything is stored or started (no Ray started here)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ktrdr_lib import OperationStore, TrainingOrchestrator
from ktrdr_lib.errors import ConfigError

pytest.importorskip("ray", reason="sweeps need the ray extra")

from ktrdr_lib.operations.sweep import MAX_TRIALS, plan_sweep
from ktrdr_lib.pipeline.context import build_training_context
from ktrdr_lib.runners.ray import RayTrainingRunner


@pytest.fixture
def orch(synthetic_data_dir: Path) -> Any:
    # The runner connects to Ray only when a sweep passes its checks: none does here.
    made = TrainingOrchestrator(
        store=OperationStore(":memory:"),
        data_dir=synthetic_data_dir,
        ray_runner=RayTrainingRunner("local"),
    )
    yield made
    made.shutdown()


@pytest.mark.parametrize(
    ("space", "options", "message"),
    [
        ({}, {}, "space: give at least one setting to sweep"),
        ({"model.training.learning_rate": []}, {}, "the list of values is empty"),
        ({"model.training.learning_rate": 0.1}, {}, "is not a list of values to try"),
        (
            {"model.training.no_such_knob": [1, 2]},
            {},
            r"sweep trial 0 \(\{'model.training.no_such_knob': 1\}\)",
        ),
        ({"model.training.learning_rate": [-1.0]}, {}, "learning_rate"),
        ({"epochs": [1, 2]}, {"metric": "sharpe"}, "metric: 'sharpe' is not a metric"),
        ({"epochs": [1, 2]}, {"mode": "up"}, "mode: 'up' is not 'min' or 'max'"),
        ({"epochs": [1, 2]}, {"search": "bayes"}, "search: 'bayes'"),
        ({"epochs": [1, 2]}, {"early_stop": "median"}, "early_stop: 'median'"),
        ({"epochs": [1, 2]}, {"early_stop": "asha", "grace_period": 5}, "grace_period: 5 epochs"),
        ({"epochs": [1, 2]}, {"reduction_factor": 1}, "reduction_factor: 1 must be"),
        ({"epochs": [1, 2]}, {"max_concurrent": 0}, "max_concurrent: 0"),
        ({"epochs": [1, 2]}, {"best_model_name": "../x"}, "model name '../x' is not an identifier"),
        (
            {f"model.training.k{i}": list(range(10)) for i in range(4)},
            {},
            f"more than {MAX_TRIALS}",
        ),
    ],
)
def test_a_bad_sweep_is_refused_and_nothing_is_stored(
    orch: Any, small_strategy_file: Path, space: Any, options: Any, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        orch.sweep(small_strategy_file, space, **options)
    assert orch.list_operations().total_count == 0


def test_a_grid_needs_lists_and_a_random_search_repeats_its_draws(
    small_strategy_file: Path, synthetic_data_dir: Path
) -> None:
    from ray import tune

    def plan(space: Any, search: str, seed: int, samples: int | None = None) -> Any:
        counter = iter(range(1000))
        return plan_sweep(
            "op_sweep_test",
            "small_test",
            space,
            metric="val_loss",
            mode=None,
            search=search,
            num_samples=samples,
            max_concurrent=2,
            early_stop=None,
            grace_period=1,
            reduction_factor=2.0,
            best_model_name=None,
            seed=seed,
            base_overrides={"epochs": 2},
            build=lambda overrides, op_id: build_training_context(
                small_strategy_file,
                data_dir=synthetic_data_dir,
                overrides=overrides,
                operation_id=op_id,
            ),
            new_id=lambda: f"op_training_t{next(counter)}",
            default_concurrency=lambda context: 1,
        )

    grid = plan({"model.training.learning_rate": [0.1, 0.01], "epochs": [1, 3]}, "grid", 1)
    assert len(grid.configs) == 4
    assert {(c["model.training.learning_rate"], c["epochs"]) for c in grid.configs} == {
        (0.1, 1),
        (0.01, 1),
        (0.1, 3),
        (0.01, 3),
    }
    assert [c.total_epochs for c in grid.contexts] == [c["epochs"] for c in grid.configs]
    assert grid.mode == "min" and grid.best_model_name == "small_test_sweep_best"

    space = {"model.training.learning_rate": tune.loguniform(1e-4, 1e-1), "epochs": [1, 2, 3]}
    first, again, other = (plan(space, "random", seed, 6) for seed in (7, 7, 8))
    assert len(first.configs) == 6
    assert first.configs == again.configs
    assert first.configs != other.configs
    for config in first.configs:
        assert 1e-4 <= config["model.training.learning_rate"] <= 1e-1
        assert type(config["model.training.learning_rate"]) is float
    assert first.metadata()["space"]["model.training.learning_rate"] == "loguniform(0.0001, 0.1)"

    with pytest.raises(ConfigError, match="a grid search needs a list of values"):
        plan({"model.training.learning_rate": tune.loguniform(1e-4, 1e-1)}, "grid", 1)
