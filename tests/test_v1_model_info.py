"""The v1 performance answer's ``model_info`` is complete: after a real short training, over
HTTP on loopback, it carries the saved network's parameter count and architecture (as the v1
reference shows them: ``mlp_25_15``), for an MLP and for a recurrent network."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from ktrdr_lib.models.store import ModelStore
from tests.conftest import SMALL_STRATEGY
from tests.integration.conftest import LiveServer, start_server

MLP_LINE = "  type: mlp\n  architecture: {hidden_layers: [16, 8], activation: relu, dropout: 0.1}"
GRU_LINE = "  type: gru\n  architecture: {sequence_length: 6, hidden_size: 8, num_layers: 2}"


@pytest.fixture
def api(
    tmp_path: Path, synthetic_data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[httpx.Client, Path]]:
    """The API on loopback with two strategies: ``small_test`` (MLP 16-8) and ``small_gru``
    (two GRU layers of 8); yields a client and the models directory."""
    from api import create_app

    folder = tmp_path / "strategies"
    folder.mkdir()
    (folder / "small_test.yaml").write_text(SMALL_STRATEGY, encoding="utf-8")
    gru = SMALL_STRATEGY.replace(MLP_LINE, GRU_LINE).replace("name: small_test", "name: small_gru")
    assert "type: gru" in gru
    (folder / "small_gru.yaml").write_text(gru, encoding="utf-8")
    monkeypatch.setenv("KTRDR_STRATEGIES_DIR", str(folder))
    models = tmp_path / "models"
    app = create_app(
        orchestrator_options={
            "data_dir": synthetic_data_dir,
            "models_dir": models,
            "progress_interval": 0.05,
        }
    )
    live: LiveServer = start_server(app)
    try:
        with httpx.Client(base_url=live.url + "/api/v1", timeout=120) as client:
            yield client, models
    finally:
        live.stop()


def _train(client: httpx.Client, strategy: str) -> dict[str, Any]:
    started = client.post(
        "/trainings/start",
        json={
            "strategy_name": strategy,
            "symbols": ["SYNTH"],
            "timeframes": ["1h"],
            "overrides": {"epochs": 1},
        },
    )
    assert started.status_code == 200, started.text
    task_id = started.json()["task_id"]
    events = client.get(f"/operations/{task_id}/events")  # ends when the run is final
    assert events.status_code == 200 and "event: final" in events.text
    info = client.get(f"/operations/{task_id}").json()["data"]
    assert info["status"] == "completed", info["error_message"]
    performance = client.get(f"/trainings/{task_id}/performance")
    assert performance.status_code == 200, performance.text
    body: dict[str, Any] = performance.json()
    return body


def _parameters_of_saved(models: Path, model_id: str) -> int:
    name, version = model_id.split("/v")
    module = ModelStore(models).load(name, int(version)).module
    return sum(parameter.numel() for parameter in module.parameters())


def test_model_info_names_the_mlp_and_counts_its_parameters(
    api: tuple[httpx.Client, Path],
) -> None:
    client, models = api
    model_info = _train(client, "small_test")["model_info"]
    assert model_info["architecture"] == "mlp_16_8"
    assert model_info["parameters_count"] == _parameters_of_saved(models, model_info["model_id"])
    # n_features → 16 → 8 → 3 classes: weights and biases of three layers
    n_features = len(ModelStore(models).load("small_test").feature_names)
    expected = n_features * 16 + 16 + 16 * 8 + 8 + 8 * 3 + 3
    assert model_info["parameters_count"] == expected
    assert model_info["model_size_bytes"] > 0 and model_info["model_path"]


def test_performance_carries_the_phase_times_and_peak_memory(
    api: tuple[httpx.Client, Path],
) -> None:
    client, _models = api
    usage = _train(client, "small_test")["resource_usage"]
    assert list(usage["phase_seconds"]) == [
        "load_data",
        "indicators",
        "fuzzy",
        "labels",
        "train",
        "evaluate",
        "save",
    ]
    assert usage["run_peak_rss_mb"] > 0 and usage["device"] == "cpu"


def test_model_info_names_a_recurrent_network_by_its_layers(
    api: tuple[httpx.Client, Path],
) -> None:
    client, models = api
    model_info = _train(client, "small_gru")["model_info"]
    assert model_info["architecture"] == "gru_8_8"  # two stacked layers of 8
    assert model_info["parameters_count"] == _parameters_of_saved(models, model_info["model_id"])
