"""ModelStore: atomic versioned saves, identical predictions after loading, clear errors."""

from __future__ import annotations

import threading
from datetime import datetime
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import pytest
import torch

from ktrdr_lib.errors import ConfigError, DataError, NotFoundError
from ktrdr_lib.models.store import ModelPredictor, ModelStore, list_models, load_model
from ktrdr_lib.paths import models_dir
from ktrdr_lib.strategy.spec import ArchitectureSpec, ModelSpec
from ktrdr_lib.training.module import FuzzyMLP
from ktrdr_lib.training.scaling import FeatureScaler

FEATURES = ["1h_rsi_low", "1h_rsi_high", "1h_sma_near", "1h_sma_far"]
SPEC = ModelSpec(architecture=ArchitectureSpec(hidden_layers=[8, 4], dropout=0.2))


def raw_features(rows: int = 32, seed: int = 0) -> np.ndarray:
    return (
        np.random.default_rng(seed).normal(5.0, 3.0, size=(rows, len(FEATURES))).astype(np.float32)
    )


def trained_predictor(seed: int = 0, *, scaled: bool = True) -> ModelPredictor:
    torch.manual_seed(seed)
    scaler = FeatureScaler.fit(raw_features(200, seed=seed + 1)) if scaled else None
    return ModelPredictor(FuzzyMLP(SPEC, len(FEATURES)), scaler, FEATURES)


def save(store: ModelStore, predictor: ModelPredictor, name: str = "rsi_mlp", **extra: Any) -> Any:
    return store.save(
        strategy_name=name,
        module=predictor.module,
        feature_names=predictor.feature_names,
        scaler=predictor.scaler,
        model_spec_config=msgspec.to_builtins(SPEC),
        strategy_config={"name": name, "indicators": [{"name": "rsi", "period": 14}]},
        metrics={"training": {"final_train_accuracy": 0.61}, "test": {"accuracy": 0.55}},
        metadata={"operation_id": "op-1", **extra},
    )


@pytest.mark.parametrize("scaled", [True, False])
def test_loaded_model_predicts_exactly_like_the_in_memory_one(tmp_path: Path, scaled: bool) -> None:
    store = ModelStore(tmp_path)
    predictor = trained_predictor(scaled=scaled)
    saved = save(store, predictor)
    loaded = store.load("rsi_mlp")
    x = raw_features()
    assert np.array_equal(loaded.predict_proba(x), predictor.predict_proba(x))
    assert np.array_equal(loaded.predict(x), predictor.predict(x))
    for name, tensor in predictor.module.state_dict().items():
        assert torch.equal(loaded.module.state_dict()[name], tensor)
    assert (loaded.name, loaded.version, loaded.model_id) == ("rsi_mlp", 1, "rsi_mlp/v1")
    assert loaded.path == saved.path == tmp_path / "rsi_mlp" / "v1"
    assert loaded.feature_names == FEATURES
    assert loaded.model_spec == SPEC
    assert loaded.scaler == predictor.scaler
    assert loaded.strategy_config["indicators"] == [{"name": "rsi", "period": 14}]
    assert loaded.metrics["test"] == {"accuracy": 0.55}


def test_saved_version_holds_every_file_and_metadata(tmp_path: Path) -> None:
    saved = save(ModelStore(tmp_path), trained_predictor(), run="nightly")
    names = {path.name for path in saved.path.iterdir()}
    assert names == {
        "weights.pt",
        "model_config.json",
        "strategy.json",
        "features.json",
        "scaler.json",
        "metrics.json",
        "metadata.json",
    }
    assert saved.size_bytes == sum(path.stat().st_size for path in saved.path.iterdir())
    metadata = msgspec.json.decode((saved.path / "metadata.json").read_bytes())
    assert datetime.fromisoformat(metadata["created_at"]).utcoffset().total_seconds() == 0
    assert metadata["library_versions"]["torch"].split("+")[0] == torch.__version__.split("+")[0]
    assert metadata["run"] == "nightly"
    assert metadata["operation_id"] == "op-1"
    assert [p.name for p in saved.path.parent.iterdir()] == ["v1"]  # no temp dir left behind


def test_versions_increase_and_load_picks_latest_or_asked(tmp_path: Path) -> None:
    store = ModelStore(tmp_path)
    first, second = trained_predictor(seed=1), trained_predictor(seed=2)
    assert save(store, first).version == 1
    assert save(store, second).version == 2
    assert store.versions("rsi_mlp") == [1, 2]
    x = raw_features()
    assert np.array_equal(store.load("rsi_mlp").predict_proba(x), second.predict_proba(x))
    assert np.array_equal(store.load("rsi_mlp", 1).predict_proba(x), first.predict_proba(x))


def test_concurrent_saves_never_share_a_version(tmp_path: Path) -> None:
    store = ModelStore(tmp_path)
    predictor = trained_predictor()
    versions: list[int] = []
    lock = threading.Lock()

    def writer() -> None:
        version = save(store, predictor).version
        with lock:
            versions.append(version)

    threads = [threading.Thread(target=writer) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(versions) == list(range(1, 9))
    assert store.versions("rsi_mlp") == list(range(1, 9))
    assert all(store.load("rsi_mlp", version).feature_names == FEATURES for version in versions)


def test_listing_reports_models_and_ignores_leftovers(tmp_path: Path) -> None:
    store = ModelStore(tmp_path)
    save(store, trained_predictor(), name="alpha")
    save(store, trained_predictor(), name="beta")
    save(store, trained_predictor(), name="beta")
    (tmp_path / "beta" / ".tmp-deadbeef").mkdir()  # a crashed writer's staging dir
    (tmp_path / "beta" / "v3-old").mkdir()
    (tmp_path / "notes.txt").write_text("not a model")
    infos = store.list_models()
    assert [info.model_id for info in infos] == ["alpha/v1", "beta/v1", "beta/v2"]
    info = infos[-1]
    assert info.path == str(tmp_path / "beta" / "v2")
    assert info.training_accuracy == 0.61
    assert info.test_accuracy == 0.55
    assert info.size_bytes > 0
    assert info.created_at is not None
    assert store.names() == ["alpha", "beta"]


def test_module_functions_default_to_ktrdr_home(isolated_home: Path) -> None:
    predictor = trained_predictor()
    save(ModelStore(), predictor)
    assert (models_dir() / "rsi_mlp" / "v1").is_dir()
    assert models_dir().is_relative_to(isolated_home)
    assert [info.model_id for info in list_models()] == ["rsi_mlp/v1"]
    x = raw_features()
    assert np.array_equal(load_model("rsi_mlp").predict(x), predictor.predict(x))
    assert load_model("rsi_mlp", 1, root=models_dir()).version == 1


@pytest.mark.parametrize("name", ["../x", "a/b", "/abs", "", ".hidden", "a b", "-x"])
def test_names_must_be_identifiers(tmp_path: Path, name: str) -> None:
    store = ModelStore(tmp_path)
    with pytest.raises(ConfigError, match="identifier"):
        save(store, trained_predictor(), name=name)
    with pytest.raises(ConfigError, match="identifier"):
        store.load(name)
    assert not any(tmp_path.iterdir())


def test_unknown_name_or_version_lists_what_exists(tmp_path: Path) -> None:
    store = ModelStore(tmp_path)
    save(store, trained_predictor(), name="alpha")
    save(store, trained_predictor(), name="alpha")
    with pytest.raises(NotFoundError, match=r"'nope'.*alpha"):
        store.load("nope")
    with pytest.raises(NotFoundError, match=r"version 7.*v1, v2"):
        store.load("alpha", 7)


@pytest.mark.parametrize(
    ("file_name", "damage"),
    [
        ("features.json", "delete"),
        ("weights.pt", "truncate"),
        ("metrics.json", "garble"),
        ("model_config.json", "garble"),
        ("scaler.json", "wrong"),
    ],
)
def test_corrupt_version_is_a_data_error_naming_the_file(
    tmp_path: Path, file_name: str, damage: str
) -> None:
    saved = save(ModelStore(tmp_path), trained_predictor())
    target = saved.path / file_name
    if damage == "delete":
        target.unlink()
    elif damage == "truncate":
        target.write_bytes(target.read_bytes()[:40])
    elif damage == "garble":
        target.write_text("{not json")
    else:
        target.write_text('{"mean": [0.0]}')
    with pytest.raises(DataError, match=file_name):
        ModelStore(tmp_path).load("rsi_mlp")
    assert [info.model_id for info in ModelStore(tmp_path).list_models()] == ["rsi_mlp/v1"]


def test_feature_names_must_match_the_network(tmp_path: Path) -> None:
    predictor = trained_predictor()
    with pytest.raises(DataError, match="3 feature names"):
        ModelStore(tmp_path).save(
            strategy_name="rsi_mlp",
            module=predictor.module,
            feature_names=FEATURES[:3],
            scaler=None,
            model_spec_config={},
            strategy_config={},
            metrics={},
            metadata={},
        )


def test_predictor_rejects_the_wrong_column_count() -> None:
    with pytest.raises(DataError, match="expects 4 columns"):
        trained_predictor().predict(np.zeros((2, 3), dtype=np.float32))
