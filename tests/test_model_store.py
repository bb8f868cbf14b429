"""ModelStore: atomic versioned saves, identical predictions after loading, clear errors."""

from __future__ import annotations

import re
import threading
from datetime import datetime
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import pytest
import torch

from ktrdr_lib.errors import ConfigError, DataError, NotFoundError
from ktrdr_lib.models.predictor import ModelPredictor
from ktrdr_lib.models.store import ModelStore, list_models, load_model, network_parameters
from ktrdr_lib.paths import models_dir
from ktrdr_lib.strategy.spec import ArchitectureSpec, ModelSpec
from ktrdr_lib.training.module import FuzzyMLP, build_network
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


def save_scored(store: ModelStore, predictor: ModelPredictor, metrics: dict[str, Any]) -> Any:
    return store.save(
        strategy_name="rsi_mlp",
        module=predictor.module,
        feature_names=predictor.feature_names,
        scaler=predictor.scaler,
        model_spec_config=msgspec.to_builtins(SPEC),
        strategy_config={"name": "rsi_mlp"},
        metrics=metrics,
        metadata={},
    )


def scored(accuracy: float, epochs: int = 3) -> dict[str, Any]:
    return {"training": {"epochs_completed": epochs}, "validation": {"accuracy": accuracy}}


def test_newest_is_the_default_and_best_is_asked_for_by_validation_figure(
    tmp_path: Path,
) -> None:
    store = ModelStore(tmp_path)
    models = [trained_predictor(seed=seed) for seed in range(4)]
    save_scored(store, models[0], scored(0.52))
    save_scored(store, models[1], scored(0.61))  # the best
    save_scored(store, models[2], scored(0.90, epochs=0))  # no completed epoch: never best
    save_scored(store, models[3], {"training": {}, "test": {"accuracy": 0.7}})  # no figure
    x = raw_features()
    assert store.load("rsi_mlp").version == 4
    assert load_model("rsi_mlp", root=tmp_path).version == 4
    assert load_model("rsi_mlp", "newest", root=tmp_path).version == 4
    best = load_model("rsi_mlp", version="best", root=tmp_path)
    assert best.version == 2 == store.best_version("rsi_mlp")
    assert np.array_equal(best.predict_proba(x), models[1].predict_proba(x))
    assert store.load("rsi_mlp", "v1").version == 1
    detail = store.describe("rsi_mlp")
    assert (detail.latest_version, detail.best_version) == (4, 2)
    listed = {info.version: info for info in store.list_models()}
    assert listed[2].selection_metric == "validation_accuracy"
    assert listed[2].selection_value == 0.61 and listed[2].epochs_completed == 3
    assert listed[3].selection_value is None and listed[4].selection_value is None
    save_scored(store, trained_predictor(seed=9), scored(0.61))  # a tie: the newer wins
    assert store.best_version("rsi_mlp") == 5


def test_best_of_a_regression_ranks_by_directional_accuracy(tmp_path: Path) -> None:
    store = ModelStore(tmp_path)
    for accuracy in (0.58, 0.51):
        metrics = {"validation": {"loss": 0.1, "directional_accuracy": accuracy}}
        save_scored(store, trained_predictor(), metrics)
    assert store.best_version("rsi_mlp") == 1
    assert store.list_models()[0].selection_metric == "validation_directional_accuracy"


def test_best_without_any_ranked_version_names_the_model_and_its_versions(
    tmp_path: Path,
) -> None:
    store = ModelStore(tmp_path)
    save(store, trained_predictor())
    save(store, trained_predictor())
    with pytest.raises(NotFoundError, match=r"'rsi_mlp' has no version with a validation.*v1, v2"):
        load_model("rsi_mlp", "best", root=tmp_path)
    assert store.describe("rsi_mlp").best_version is None
    with pytest.raises(ConfigError, match=r"'latest-ish' is not a model version; use newest, best"):
        store.load("rsi_mlp", "latest-ish")  # type: ignore[arg-type]
    with pytest.raises(NotFoundError, match=r"'rsi_mlp' has no version 9 .*v1, v2"):
        store.load("rsi_mlp", "v9")  # type: ignore[arg-type]


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


def test_copy_as_publishes_the_next_version_with_its_provenance(tmp_path: Path) -> None:
    store = ModelStore(tmp_path)
    predictor = trained_predictor()
    save(store, predictor)
    save(store, trained_predictor(seed=5), name="prod")  # "prod" already has v1
    copied = store.copy_as(
        ("rsi_mlp", 1),
        "prod",
        description="for paper trading",
        extra_metadata={"task_id": "op-42"},
    )
    assert (copied.model_id, copied.path) == ("prod/v2", tmp_path / "prod" / "v2")
    assert copied.size_bytes == sum(path.stat().st_size for path in copied.path.iterdir())
    assert sorted(p.name for p in (tmp_path / "prod").iterdir()) == ["v1", "v2"]  # no temp dir
    loaded = store.load("prod", 2)
    x = raw_features()
    assert np.array_equal(loaded.predict_proba(x), predictor.predict_proba(x))
    source_metadata = store.load("rsi_mlp", 1).metadata
    assert loaded.metadata["description"] == "for paper trading"
    assert loaded.metadata["saved_from"] == "rsi_mlp/v1"
    assert loaded.metadata["task_id"] == "op-42"
    assert loaded.metadata["operation_id"] == "op-1"  # the source's metadata is kept
    assert loaded.metadata["source_created_at"] == source_metadata["created_at"]
    assert loaded.metadata["created_at"] >= source_metadata["created_at"]
    assert store.versions("rsi_mlp") == [1]  # the source is untouched


def test_copy_as_takes_a_loaded_model_or_a_directory(tmp_path: Path) -> None:
    store = ModelStore(tmp_path)
    saved = save(store, trained_predictor())
    from_loaded = store.copy_as(store.load("rsi_mlp"), "rsi_mlp")
    from_path = store.copy_as(saved.path, "other")
    elsewhere = ModelStore(tmp_path / "elsewhere").copy_as(saved.path, "imported")
    assert [from_loaded.model_id, from_path.model_id] == ["rsi_mlp/v2", "other/v1"]
    assert store.load("rsi_mlp", 2).metadata["saved_from"] == "rsi_mlp/v1"
    assert store.load("other").metadata["saved_from"] == "rsi_mlp/v1"
    assert "description" not in store.load("other").metadata
    assert elsewhere.path == tmp_path / "elsewhere" / "imported" / "v1"


def test_concurrent_copies_never_share_a_version(tmp_path: Path) -> None:
    store = ModelStore(tmp_path)
    save(store, trained_predictor())
    versions: list[int] = []
    lock = threading.Lock()

    def copier() -> None:
        version = store.copy_as(("rsi_mlp", 1), "prod").version
        with lock:
            versions.append(version)

    threads = [threading.Thread(target=copier) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(versions) == list(range(1, 7))
    assert store.versions("prod") == list(range(1, 7))


def test_copy_as_rejects_bad_names_and_missing_or_incomplete_sources(tmp_path: Path) -> None:
    store = ModelStore(tmp_path)
    saved = save(store, trained_predictor())
    with pytest.raises(ConfigError, match="identifier"):
        store.copy_as(("rsi_mlp", 1), "../escape")
    with pytest.raises(NotFoundError, match=r"version 9.*v1"):
        store.copy_as(("rsi_mlp", 9), "prod")
    with pytest.raises(NotFoundError, match="no model version directory"):
        store.copy_as(tmp_path / "nowhere" / "v1", "prod")
    (saved.path / "scaler.json").unlink()
    with pytest.raises(DataError, match=r"missing scaler\.json"):
        store.copy_as(("rsi_mlp", 1), "prod")
    assert not (tmp_path / "prod").exists() or not any((tmp_path / "prod").iterdir())
    assert store.names() == ["rsi_mlp"]


def test_listing_reads_description_symbols_and_network_size(tmp_path: Path) -> None:
    store = ModelStore(tmp_path)
    predictor = trained_predictor()
    save(store, predictor, symbols=["AAPL", "MSFT"], timeframes=["1h", "4h"], base_timeframe="1h")
    store.copy_as(("rsi_mlp", 1), "prod", description="for paper trading")
    copy, first = store.list_models()  # by name: prod, rsi_mlp
    n_parameters = sum(parameter.numel() for parameter in predictor.module.parameters())
    assert n_parameters == (4 * 8 + 8) + (8 * 4 + 4) + (4 * 3 + 3)
    for info in (first, copy):
        assert info.symbols == ["AAPL", "MSFT"]
        assert info.timeframes == ["1h", "4h"]
        assert info.base_timeframe == "1h"
        assert info.architecture == "mlp_8_4"
        assert info.parameters_count == n_parameters
    assert first.description is None  # neither the metadata nor the strategy has one
    assert copy.description == "for paper trading"

    # Versions saved before parameters_count was stored get it from the layer widths.
    config_path = first.path + "/model_config.json"
    config = msgspec.json.decode(Path(config_path).read_bytes())
    del config["parameters_count"]
    Path(config_path).write_bytes(msgspec.json.encode(config))
    assert store.list_models()[1].parameters_count == n_parameters


def test_listing_falls_back_to_the_strategy_description_and_survives_broken_files(
    tmp_path: Path,
) -> None:
    store = ModelStore(tmp_path)
    saved = store.save(
        strategy_name="described",
        module=trained_predictor().module,
        feature_names=FEATURES,
        scaler=None,
        model_spec_config=msgspec.to_builtins(SPEC),
        strategy_config={"name": "described", "description": "RSI mean reversion"},
        metrics={},
        metadata={},
    )
    assert store.list_models()[0].description == "RSI mean reversion"
    (saved.path / "model_config.json").write_text("{not json")
    (saved.path / "metadata.json").unlink()
    info = store.list_models()[0]
    assert (info.parameters_count, info.architecture, info.created_at) == (None, None, None)
    assert info.symbols == []


def test_describe_lists_versions_with_the_latest_metrics_and_strategy(tmp_path: Path) -> None:
    store = ModelStore(tmp_path)
    save(store, trained_predictor(seed=1))
    save(store, trained_predictor(seed=2))
    detail = store.describe("rsi_mlp")
    assert detail.name == "rsi_mlp"
    assert detail.latest_version == 2
    assert [info.model_id for info in detail.versions] == ["rsi_mlp/v1", "rsi_mlp/v2"]
    assert detail.versions == store.list_models()
    assert detail.metrics == {
        "training": {"final_train_accuracy": 0.61},
        "test": {"accuracy": 0.55},
    }
    assert detail.strategy_config["indicators"] == [{"name": "rsi", "period": 14}]
    assert detail.feature_names == FEATURES
    encoded = msgspec.json.decode(msgspec.json.encode(detail))
    assert encoded["versions"][1]["architecture"] == "mlp_8_4"
    with pytest.raises(NotFoundError, match=r"'nope'.*rsi_mlp"):
        store.describe("nope")
    with pytest.raises(ConfigError, match="identifier"):
        store.describe("../rsi_mlp")


@pytest.mark.parametrize(
    "model",
    [
        {"architecture": {"hidden_layers": [8, 4]}},
        {"type": "lstm", "architecture": {"sequence_length": 5, "hidden_size": 7, "num_layers": 3}},
        {"type": "gru", "architecture": {"sequence_length": 5, "hidden_size": 6, "num_layers": 1}},
    ],
)
@pytest.mark.parametrize(("n_features", "n_outputs"), [(4, 3), (2, 1)])
def test_network_parameters_counts_what_build_network_builds(
    model: dict[str, Any], n_features: int, n_outputs: int
) -> None:
    spec = msgspec.convert(model, ModelSpec)
    built = build_network(spec, n_features, n_outputs)
    assert network_parameters(spec, n_features, n_outputs) == sum(
        parameter.numel() for parameter in built.parameters() if parameter.requires_grad
    )


def _declare(path: Path, **changes: Any) -> None:
    """Rewrite a stored version's model_config.json with ``changes`` (``model_spec`` merged)."""
    config = msgspec.json.decode((path / "model_config.json").read_bytes())
    config["model_spec"] = {**config["model_spec"], **changes.pop("model_spec", {})}
    (path / "model_config.json").write_bytes(msgspec.json.encode({**config, **changes}))


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        # 10^12 parameters (4 TB): building it would fail to allocate, or take the machine down
        (
            {"model_spec": {"architecture": {"hidden_layers": [1_000_000, 1_000_000]}}},
            "network of 1,000,009,000,003 trainable parameters (mlp), more than the 20,000,000",
        ),
        (
            {
                "model_spec": {
                    "type": "lstm",
                    "architecture": {"sequence_length": 2, "hidden_size": 1, "num_layers": 10**9},
                }
            },
            "1000000000 hidden layers, more than the 256",
        ),
        ({"n_features": 3}, "expected a list of 3 feature names"),
        ({"n_features": 0}, "0 inputs"),
    ],
)
def test_a_declared_network_is_checked_before_it_is_built(
    tmp_path: Path, changes: dict[str, Any], reason: str
) -> None:
    store = ModelStore(tmp_path)
    saved = save(store, trained_predictor())
    _declare(saved.path, **changes)
    with pytest.raises(DataError, match=re.escape(reason)):
        store.load("rsi_mlp")


def test_the_parameter_cap_on_loading_is_the_run_cap_and_its_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = ModelStore(tmp_path)
    save(store, trained_predictor())  # 4 → 8 → 4 → 3: 91 parameters
    monkeypatch.setenv("KTRDR_MAX_PARAMETERS", "90")
    with pytest.raises(DataError, match=r"91 trainable parameters .* \(KTRDR_MAX_PARAMETERS\)"):
        store.load("rsi_mlp")
    monkeypatch.setenv("KTRDR_MAX_PARAMETERS", "91")
    assert store.load("rsi_mlp").module.n_features == len(FEATURES)
