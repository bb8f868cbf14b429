"""ModelStore: versioned, atomically written model directories, and the shared predictor.

Layout: ``root/{strategy}/v{N}/`` holding::

    weights.pt          torch state_dict of the FuzzyMLP
    model_config.json   {"format": 1, "model_spec": {...}, "n_features": int,
                         "parameters_count": int}
    strategy.json       the strategy configuration the model was trained with
    features.json       feature names, in column order
    scaler.json         FeatureScaler.to_dict(), or null when features are not scaled
    metrics.json        whatever the caller passes (training/validation/test figures...)
    metadata.json       created_at (UTC ISO), library versions, and the caller's metadata

A version is written into a hidden temp directory under ``root/{strategy}/`` and renamed to
``v{N}`` in one ``os.rename``; when a concurrent writer took ``v{N}`` first the rename fails and
the next number is tried, so a version is never overwritten or seen half-written. Listing
ignores anything that is not ``v{N}`` (leftover temp directories included).
:meth:`ModelStore.copy_as` publishes a copy of a stored version under another name by the same
protocol (the API's "save model"), and :meth:`ModelStore.describe` summarises one name.

:class:`ModelPredictor` is used both for the in-memory model after training and for a loaded
one (:class:`LoadedModel` is a predictor with its stored configuration), so both predict through
the same code and give identical outputs.

Example:
    >>> store = ModelStore(tmp_path)  # doctest: +SKIP
    >>> saved = store.save(strategy_name="rsi_mlp", module=module, ...)  # doctest: +SKIP
    >>> load_model("rsi_mlp").predict(raw_features)  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import os
import platform
import re
import shutil
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata as package_metadata
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import torch

from ktrdr_lib.errors import ConfigError, DataError, NotFoundError
from ktrdr_lib.paths import models_dir
from ktrdr_lib.strategy.spec import ArchitectureSpec, ModelSpec
from ktrdr_lib.training.module import N_CLASSES, FuzzyMLP
from ktrdr_lib.training.scaling import FeatureScaler

__all__ = [
    "LoadedModel",
    "ModelDetail",
    "ModelInfo",
    "ModelPredictor",
    "ModelStore",
    "SavedModel",
    "list_models",
    "load_model",
]

_NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")
_VERSION_PATTERN = re.compile(r"v([1-9][0-9]*)")
_FORMAT = 1
_WEIGHTS = "weights.pt"
_MODEL_CONFIG = "model_config.json"
_STRATEGY = "strategy.json"
_FEATURES = "features.json"
_SCALER = "scaler.json"
_METRICS = "metrics.json"
_METADATA = "metadata.json"
_VERSION_FILES = (_WEIGHTS, _MODEL_CONFIG, _STRATEGY, _FEATURES, _SCALER, _METRICS, _METADATA)
_MAX_SAVE_ATTEMPTS = 100
_VERSIONED_PACKAGES = ("ktrdr_lib", "torch", "lightning", "numpy", "msgspec")


class ModelPredictor:
    """Scales raw features (when the model was trained on scaled ones) and predicts.

    Args:
        module: the trained network.
        scaler: the scaler fitted on the training split, or ``None`` when features were not
            scaled.
        feature_names: the feature columns, in the order the network expects.
    """

    def __init__(
        self, module: FuzzyMLP, scaler: FeatureScaler | None, feature_names: Sequence[str]
    ) -> None:
        self.module = module
        self.scaler = scaler
        self.feature_names = list(feature_names)

    def predict_proba(self, raw_features: np.ndarray) -> np.ndarray:
        """Class probabilities, shape ``(n, 3)`` (columns BUY, HOLD, SELL).

        Args:
            raw_features: unscaled features, shape ``(n, len(feature_names))``.

        Raises:
            DataError: when the column count differs from ``feature_names``.
        """
        features = np.asarray(raw_features, dtype=np.float32)
        if features.ndim != 2 or features.shape[1] != len(self.feature_names):
            raise DataError(
                f"features have shape {features.shape} but the model expects "
                f"{len(self.feature_names)} columns ({', '.join(self.feature_names[:5])}"
                f"{', ...' if len(self.feature_names) > 5 else ''}); pass the model's "
                "feature_names columns in that order."
            )
        if self.scaler is not None:
            features = self.scaler.transform(features)
        probabilities: np.ndarray = (
            self.module.predict_proba(torch.from_numpy(features)).cpu().numpy()
        )
        return probabilities

    def predict(self, raw_features: np.ndarray) -> np.ndarray:
        """Predicted class ids (0 BUY, 1 HOLD, 2 SELL), shape ``(n,)``."""
        classes: np.ndarray = self.predict_proba(raw_features).argmax(axis=1).astype(np.int64)
        return classes


class LoadedModel(ModelPredictor):
    """A stored model version, ready to predict, with the configuration it was saved with.

    Attributes:
        name: strategy name.
        version: version number.
        path: the version directory.
        model_spec: the ``model`` section the network was built from.
        strategy_config: the strategy configuration it was trained with.
        metrics: the metrics saved with it.
        metadata: the metadata saved with it (``created_at``, ``library_versions``, ...).
    """

    def __init__(
        self,
        *,
        name: str,
        version: int,
        path: Path,
        module: FuzzyMLP,
        scaler: FeatureScaler | None,
        feature_names: Sequence[str],
        strategy_config: dict[str, Any],
        metrics: dict[str, Any],
        metadata: dict[str, Any],
    ) -> None:
        super().__init__(module, scaler, feature_names)
        self.name = name
        self.version = version
        self.path = path
        self.model_spec = module.model_spec
        self.strategy_config = strategy_config
        self.metrics = metrics
        self.metadata = metadata

    @property
    def model_id(self) -> str:
        """``"name/vN"``."""
        return f"{self.name}/v{self.version}"


@dataclass(frozen=True)
class SavedModel:
    """Where :meth:`ModelStore.save` put a model.

    Attributes:
        name: strategy name.
        version: the version number assigned.
        path: the version directory.
        size_bytes: total size of its files.
    """

    name: str
    version: int
    path: Path
    size_bytes: int

    @property
    def model_id(self) -> str:
        """``"name/vN"``."""
        return f"{self.name}/v{self.version}"


class ModelInfo(msgspec.Struct, frozen=True, kw_only=True):
    """One stored model version, as listed.

    Everything comes from the version's small JSON files; listing never loads weights.

    Attributes:
        name: strategy name.
        version: version number.
        model_id: ``"name/vN"``.
        path: the version directory.
        created_at: UTC ISO time of saving (``None`` when the metadata is unreadable).
        size_bytes: total size of its files.
        training_accuracy: final training accuracy, when the metrics hold it.
        test_accuracy: test accuracy, when the metrics hold it.
        description: the description given when it was saved, else the strategy's.
        symbols: the symbols it was trained on.
        timeframes: the timeframes it was trained on.
        base_timeframe: the timeframe its rows (and predictions) are on.
        parameters_count: trainable parameters of the network.
        architecture: ``"mlp_32_16"``: model type and hidden-layer widths.
    """

    name: str
    version: int
    model_id: str
    path: str
    created_at: str | None
    size_bytes: int
    training_accuracy: float | None = None
    test_accuracy: float | None = None
    description: str | None = None
    symbols: list[str] = msgspec.field(default_factory=list)
    timeframes: list[str] = msgspec.field(default_factory=list)
    base_timeframe: str | None = None
    parameters_count: int | None = None
    architecture: str | None = None


class ModelDetail(msgspec.Struct, frozen=True, kw_only=True):
    """One model name in full: every version, and the latest version's figures and strategy.

    Attributes:
        name: strategy (model) name.
        latest_version: the highest version number.
        versions: every version's :class:`ModelInfo`, ascending.
        metrics: the latest version's ``metrics.json`` (training, validation, test, history).
        strategy_config: the strategy configuration the latest version was trained with.
        feature_names: the latest version's feature columns, in order.
    """

    name: str
    latest_version: int
    versions: list[ModelInfo]
    metrics: dict[str, Any]
    strategy_config: dict[str, Any]
    feature_names: list[str]


class ModelStore:
    """Versioned model directories under ``root`` (default ``KTRDR_HOME/models``).

    Args:
        root: the models directory; created on first save.
    """

    def __init__(self, root: Path | None = None) -> None:
        self.root = Path(root) if root is not None else models_dir()

    def save(
        self,
        *,
        strategy_name: str,
        module: FuzzyMLP,
        feature_names: Sequence[str],
        scaler: FeatureScaler | None,
        model_spec_config: dict[str, Any],
        strategy_config: dict[str, Any],
        metrics: dict[str, Any],
        metadata: dict[str, Any],
    ) -> SavedModel:
        """Write a new version of ``strategy_name`` atomically and return where it went.

        Raises:
            ConfigError: when ``strategy_name`` is not an identifier.
            DataError: when the feature names do not match the network's input width, or no
                free version number was found after many concurrent attempts.
        """
        _check_name(strategy_name)
        if len(feature_names) != module.n_features:
            raise DataError(
                f"{len(feature_names)} feature names given for a model with "
                f"{module.n_features} inputs; pass the training feature names in order."
            )
        strategy_dir = self.root / strategy_name
        strategy_dir.mkdir(parents=True, exist_ok=True)
        staging = strategy_dir / f".tmp-{uuid.uuid4().hex}"
        staging.mkdir()
        try:
            _write_version(
                staging,
                module=module,
                feature_names=list(feature_names),
                scaler=scaler,
                model_spec_config=model_spec_config,
                strategy_config=strategy_config,
                metrics=metrics,
                metadata=metadata,
            )
            version = self._publish(staging, strategy_dir)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        path = strategy_dir / f"v{version}"
        return SavedModel(strategy_name, version, path, _directory_size(path))

    def versions(self, name: str) -> list[int]:
        """Stored version numbers of ``name``, ascending (empty when there are none).

        Raises:
            ConfigError: when ``name`` is not an identifier.
        """
        _check_name(name)
        return _versions_in(self.root / name)

    def names(self) -> list[str]:
        """Strategy names with at least one stored version, sorted."""
        if not self.root.is_dir():
            return []
        return sorted(
            entry.name
            for entry in self.root.iterdir()
            if _NAME_PATTERN.fullmatch(entry.name) and _versions_in(entry)
        )

    def load(self, name: str, version: int | None = None) -> LoadedModel:
        """Load ``name`` at ``version`` (the latest when ``None``).

        Raises:
            ConfigError: when ``name`` is not an identifier.
            NotFoundError: unknown name or version; the message lists what exists.
            DataError: a file of the version is missing or corrupt; the message names it.
        """
        path, version = self._version_dir(name, version)
        model_config = _read_json(path / _MODEL_CONFIG)
        try:
            model_spec = msgspec.convert(model_config["model_spec"], ModelSpec)
            n_features = int(model_config["n_features"])
        except (KeyError, TypeError, ValueError, msgspec.ValidationError) as exc:
            raise _corrupt(path / _MODEL_CONFIG, exc) from exc
        module = FuzzyMLP(model_spec, n_features)
        _load_weights(module, path / _WEIGHTS)
        module.eval()
        scaler_data = _read_json(path / _SCALER)
        feature_names = _read_json(path / _FEATURES)
        if not isinstance(feature_names, list) or len(feature_names) != n_features:
            raise _corrupt(path / _FEATURES, f"expected a list of {n_features} feature names")
        try:
            scaler = None if scaler_data is None else FeatureScaler.from_dict(scaler_data)
        except DataError as exc:
            raise _corrupt(path / _SCALER, exc) from exc
        return LoadedModel(
            name=name,
            version=version,
            path=path,
            module=module,
            scaler=scaler,
            feature_names=[str(feature) for feature in feature_names],
            strategy_config=_read_json(path / _STRATEGY),
            metrics=_read_json(path / _METRICS),
            metadata=_read_json(path / _METADATA),
        )

    def list_models(self) -> list[ModelInfo]:
        """Every stored version, by name then version. Unreadable metadata lists as ``None``."""
        return [
            _model_info(name, version, self.root / name / f"v{version}")
            for name in self.names()
            for version in _versions_in(self.root / name)
        ]

    def describe(self, name: str) -> ModelDetail:
        """Every version of ``name`` plus the latest version's metrics and strategy.

        Raises:
            ConfigError: when ``name`` is not an identifier.
            NotFoundError: no stored model has that name; the message lists those that exist.
            DataError: a JSON file of the latest version is missing or corrupt.
        """
        path, latest = self._version_dir(name, None)
        metrics = _read_json(path / _METRICS)
        strategy_config = _read_json(path / _STRATEGY)
        feature_names = _read_json(path / _FEATURES)
        if not isinstance(metrics, dict):
            raise _corrupt(path / _METRICS, "expected a JSON object")
        if not isinstance(strategy_config, dict):
            raise _corrupt(path / _STRATEGY, "expected a JSON object")
        if not isinstance(feature_names, list):
            raise _corrupt(path / _FEATURES, "expected a list of feature names")
        return ModelDetail(
            name=name,
            latest_version=latest,
            versions=[
                _model_info(name, version, self.root / name / f"v{version}")
                for version in _versions_in(self.root / name)
            ],
            metrics=metrics,
            strategy_config=strategy_config,
            feature_names=[str(feature) for feature in feature_names],
        )

    def copy_as(
        self,
        source: LoadedModel | tuple[str, int] | Path,
        new_name: str,
        *,
        description: str | None = None,
        extra_metadata: dict[str, Any] | None = None,
    ) -> SavedModel:
        """Publish a copy of a stored version as the next version of ``new_name``.

        The copy is written to a temp directory and renamed like :meth:`save`, so it never
        overwrites a version and is never seen half-written. Its ``metadata.json`` keeps the
        source's metadata and adds ``saved_from`` (the source's model id), ``description``
        (when given), ``extra_metadata`` (e.g. ``{"task_id": ...}``), ``source_created_at``
        and a fresh ``created_at``.

        Args:
            source: a loaded model, ``(name, version)`` in this store, or a version directory.
            new_name: the name to publish under (may equal the source's name).
            description: a free-text description, listed by :meth:`list_models`.
            extra_metadata: more keys for ``metadata.json``.

        Returns:
            Where the copy went.

        Raises:
            ConfigError: ``new_name`` (or the source name) is not an identifier.
            NotFoundError: ``(name, version)`` is not stored, or the directory does not exist.
            DataError: the source directory lacks a file or its metadata is unreadable.

        Example:
            >>> store.copy_as(("rsi_mlp", 3), "rsi_prod", description="for paper trading")
            ... # doctest: +SKIP
        """
        _check_name(new_name)
        source_dir, source_id = self._source_dir(source)
        missing = [name for name in _VERSION_FILES if not (source_dir / name).is_file()]
        if missing:
            raise DataError(
                f"cannot copy {source_id} from {source_dir}: missing {', '.join(missing)}. "
                "The version directory is incomplete; copy a complete version."
            )
        source_metadata = _read_json(source_dir / _METADATA)
        if not isinstance(source_metadata, dict):
            raise _corrupt(source_dir / _METADATA, "expected a JSON object")
        metadata: dict[str, Any] = {**source_metadata, **(extra_metadata or {})}
        if description is not None:
            metadata["description"] = description
        metadata["saved_from"] = source_id
        metadata["source_created_at"] = source_metadata.get("created_at")
        metadata["created_at"] = datetime.now(UTC).isoformat()

        strategy_dir = self.root / new_name
        strategy_dir.mkdir(parents=True, exist_ok=True)
        staging = strategy_dir / f".tmp-{uuid.uuid4().hex}"
        staging.mkdir()
        try:
            for file_name in _VERSION_FILES:
                if file_name != _METADATA:
                    shutil.copyfile(source_dir / file_name, staging / file_name)
            (staging / _METADATA).write_bytes(_encode(metadata))
            version = self._publish(staging, strategy_dir)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        path = strategy_dir / f"v{version}"
        return SavedModel(new_name, version, path, _directory_size(path))

    def _source_dir(self, source: LoadedModel | tuple[str, int] | Path) -> tuple[Path, str]:
        """The version directory to copy and the model id to record as ``saved_from``."""
        if isinstance(source, LoadedModel):
            return source.path, source.model_id
        if isinstance(source, tuple):
            name, version = source
            path, chosen = self._version_dir(name, version)
            return path, f"{name}/v{chosen}"
        path = Path(source)
        if not path.is_dir():
            raise NotFoundError(
                f"no model version directory at {path}; pass a stored version's directory "
                "(e.g. a training result's artifacts.model_path)."
            )
        if _VERSION_PATTERN.fullmatch(path.name) and _NAME_PATTERN.fullmatch(path.parent.name):
            return path, f"{path.parent.name}/{path.name}"
        return path, str(path)

    def _version_dir(self, name: str, version: int | None) -> tuple[Path, int]:
        _check_name(name)
        versions = _versions_in(self.root / name)
        if not versions:
            known = ", ".join(self.names()) or "none"
            raise NotFoundError(
                f"no stored model named {name!r} in {self.root} (models there: {known}). "
                "Train the strategy first or check the name."
            )
        chosen = versions[-1] if version is None else version
        if chosen not in versions:
            listed = ", ".join(f"v{number}" for number in versions)
            raise NotFoundError(
                f"model {name!r} has no version {version!r} in {self.root} (versions: {listed})."
            )
        return self.root / name / f"v{chosen}", chosen

    @staticmethod
    def _publish(staging: Path, strategy_dir: Path) -> int:
        """Rename ``staging`` to the next free ``v{N}``; retry when another writer won."""
        for _ in range(_MAX_SAVE_ATTEMPTS):
            existing = _versions_in(strategy_dir)
            version = existing[-1] + 1 if existing else 1
            try:
                os.rename(staging, strategy_dir / f"v{version}")
            except OSError as exc:
                if exc.errno in (errno.EEXIST, errno.ENOTEMPTY):
                    continue
                raise
            return version
        raise DataError(
            f"could not find a free version number under {strategy_dir} after "
            f"{_MAX_SAVE_ATTEMPTS} attempts; too many concurrent writers, try again."
        )


def load_model(name: str, version: int | None = None, *, root: Path | None = None) -> LoadedModel:
    """Load a stored model (see :meth:`ModelStore.load`)."""
    return ModelStore(root).load(name, version)


def list_models(root: Path | None = None) -> list[ModelInfo]:
    """List stored models (see :meth:`ModelStore.list_models`)."""
    return ModelStore(root).list_models()


def _check_name(name: str) -> None:
    if not _NAME_PATTERN.fullmatch(name):
        raise ConfigError(
            f"model name {name!r} is not an identifier: use letters, digits, '_' and '-', "
            "starting with a letter or digit (no path separators, no '..')."
        )


def _versions_in(strategy_dir: Path) -> list[int]:
    if not strategy_dir.is_dir():
        return []
    numbers = (_VERSION_PATTERN.fullmatch(entry.name) for entry in strategy_dir.iterdir())
    return sorted(int(match.group(1)) for match in numbers if match)


def _write_version(
    directory: Path,
    *,
    module: FuzzyMLP,
    feature_names: list[str],
    scaler: FeatureScaler | None,
    model_spec_config: dict[str, Any],
    strategy_config: dict[str, Any],
    metrics: dict[str, Any],
    metadata: dict[str, Any],
) -> None:
    state = {key: value.detach().cpu() for key, value in module.state_dict().items()}
    torch.save(state, directory / _WEIGHTS)
    documents: dict[str, Any] = {
        _MODEL_CONFIG: {
            "format": _FORMAT,
            "model_spec": model_spec_config,
            "n_features": module.n_features,
            "parameters_count": sum(parameter.numel() for parameter in module.parameters()),
        },
        _STRATEGY: strategy_config,
        _FEATURES: feature_names,
        _SCALER: None if scaler is None else scaler.to_dict(),
        _METRICS: metrics,
        _METADATA: {
            **metadata,
            "created_at": datetime.now(UTC).isoformat(),
            "library_versions": _library_versions(),
        },
    }
    for file_name, document in documents.items():
        (directory / file_name).write_bytes(_encode(document))


def _encode(document: Any) -> bytes:
    return msgspec.json.format(msgspec.json.encode(document))


def _library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for package in _VERSIONED_PACKAGES:
        try:
            versions[package] = package_metadata.version(package)
        except package_metadata.PackageNotFoundError:
            versions[package] = "unknown"
    return versions


def _read_json(path: Path) -> Any:
    try:
        return msgspec.json.decode(path.read_bytes())
    except FileNotFoundError as exc:
        raise _corrupt(path, "the file is missing") from exc
    except (OSError, msgspec.DecodeError) as exc:
        raise _corrupt(path, exc) from exc


def _load_weights(module: FuzzyMLP, path: Path) -> None:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        module.load_state_dict(state)
    except FileNotFoundError as exc:
        raise _corrupt(path, "the file is missing") from exc
    except (OSError, RuntimeError, ValueError, KeyError, EOFError) as exc:
        raise _corrupt(path, exc) from exc


def _corrupt(path: Path, reason: object) -> DataError:
    return DataError(
        f"stored model file {path} is unreadable: {reason}. The version directory "
        f"{path.parent} is incomplete or corrupt; delete it and train again."
    )


def _directory_size(path: Path) -> int:
    return sum(entry.stat().st_size for entry in path.iterdir() if entry.is_file())


def _model_info(name: str, version: int, path: Path) -> ModelInfo:
    # Listing shows what it can: a missing or broken file leaves its fields empty, and
    # load() / describe() report it.
    fields: dict[str, Any] = {}
    with contextlib.suppress(DataError, AttributeError):
        metadata = _read_json(path / _METADATA)
        fields["created_at"] = _text(metadata.get("created_at"))
        fields["description"] = _text(metadata.get("description"))
        fields["symbols"] = _texts(metadata.get("symbols"))
        fields["timeframes"] = _texts(metadata.get("timeframes"))
        fields["base_timeframe"] = _text(metadata.get("base_timeframe"))
    with contextlib.suppress(DataError):
        metrics = _read_json(path / _METRICS)
        fields["training_accuracy"] = _number(metrics, ("training", "final_train_accuracy"))
        fields["test_accuracy"] = _number(metrics, ("test", "accuracy"))
    with contextlib.suppress(DataError, AttributeError):
        fields.update(_network_summary(_read_json(path / _MODEL_CONFIG)))
    if fields.get("description") is None:
        with contextlib.suppress(DataError, AttributeError):
            fields["description"] = _text(_read_json(path / _STRATEGY).get("description"))
    return ModelInfo(
        name=name,
        version=version,
        model_id=f"{name}/v{version}",
        path=str(path),
        created_at=fields.pop("created_at", None),
        size_bytes=_directory_size(path),
        **fields,
    )


def _network_summary(model_config: dict[str, Any]) -> dict[str, Any]:
    """``architecture`` and ``parameters_count`` from ``model_config.json`` (no weights read).

    Versions saved before ``parameters_count`` was stored get it computed from the layer
    widths: each ``Linear(a, b)`` holds ``a * b`` weights and ``b`` biases.
    """
    spec = model_config.get("model_spec")
    if not isinstance(spec, dict):
        return {}
    architecture = spec.get("architecture")
    hidden = architecture.get("hidden_layers") if isinstance(architecture, dict) else None
    if hidden is None:
        hidden = ArchitectureSpec().hidden_layers
    if not isinstance(hidden, list) or not all(isinstance(width, int) for width in hidden):
        return {}
    summary: dict[str, Any] = {
        "architecture": "_".join([str(spec.get("type", "mlp")), *map(str, hidden)])
    }
    stored = model_config.get("parameters_count")
    n_features = model_config.get("n_features")
    if isinstance(stored, int):
        summary["parameters_count"] = stored
    elif isinstance(n_features, int):
        widths = [n_features, *hidden, N_CLASSES]
        summary["parameters_count"] = sum(a * b + b for a, b in itertools.pairwise(widths))
    return summary


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _texts(value: Any) -> list[str]:
    return [str(item) for item in value] if isinstance(value, list) else []


def _number(document: Any, keys: tuple[str, ...]) -> float | None:
    for key in keys:
        if not isinstance(document, dict):
            return None
        document = document.get(key)
    return float(document) if isinstance(document, int | float) else None
