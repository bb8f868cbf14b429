"""ModelStore: versioned, atomically written model directories, and the shared predictor.

Layout: ``root/{strategy}/v{N}/`` holding::

    weights.pt          torch state_dict of the FuzzyMLP
    model_config.json   {"format": 1, "model_spec": {...}, "n_features": int}
    strategy.json       the strategy configuration the model was trained with
    features.json       feature names, in column order
    scaler.json         FeatureScaler.to_dict(), or null when features are not scaled
    metrics.json        whatever the caller passes (training/validation/test figures...)
    metadata.json       created_at (UTC ISO), library versions, and the caller's metadata

A version is written into a hidden temp directory under ``root/{strategy}/`` and renamed to
``v{N}`` in one ``os.rename``; when a concurrent writer took ``v{N}`` first the rename fails and
the next number is tried, so a version is never overwritten or seen half-written. Listing
ignores anything that is not ``v{N}`` (leftover temp directories included).

:class:`ModelPredictor` is used both for the in-memory model after training and for a loaded
one (:class:`LoadedModel` is a predictor with its stored configuration), so both predict through
the same code and give identical outputs.

Example:
    >>> store = ModelStore(tmp_path)  # doctest: +SKIP
    >>> saved = store.save(strategy_name="rsi_mlp", module=module, ...)  # doctest: +SKIP
    >>> load_model("rsi_mlp").predict(raw_features)  # doctest: +SKIP
"""

from __future__ import annotations

import errno
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
from ktrdr_lib.strategy.spec import ModelSpec
from ktrdr_lib.training.module import FuzzyMLP
from ktrdr_lib.training.scaling import FeatureScaler

__all__ = [
    "LoadedModel",
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

    Attributes:
        name: strategy name.
        version: version number.
        model_id: ``"name/vN"``.
        path: the version directory.
        created_at: UTC ISO time of saving (``None`` when the metadata is unreadable).
        size_bytes: total size of its files.
        training_accuracy: final training accuracy, when the metrics hold it.
        test_accuracy: test accuracy, when the metrics hold it.
    """

    name: str
    version: int
    model_id: str
    path: str
    created_at: str | None
    size_bytes: int
    training_accuracy: float | None = None
    test_accuracy: float | None = None


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
        (directory / file_name).write_bytes(msgspec.json.format(msgspec.json.encode(document)))


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
    created_at: str | None = None
    training_accuracy: float | None = None
    test_accuracy: float | None = None
    try:
        created = _read_json(path / _METADATA).get("created_at")
        created_at = created if isinstance(created, str) else None
        metrics = _read_json(path / _METRICS)
        training_accuracy = _number(metrics, ("training", "final_train_accuracy"))
        test_accuracy = _number(metrics, ("test", "accuracy"))
    except (DataError, AttributeError):
        pass  # listing shows what it can; load() reports the broken file
    return ModelInfo(
        name=name,
        version=version,
        model_id=f"{name}/v{version}",
        path=str(path),
        created_at=created_at,
        size_bytes=_directory_size(path),
        training_accuracy=training_accuracy,
        test_accuracy=test_accuracy,
    )


def _number(document: Any, keys: tuple[str, ...]) -> float | None:
    for key in keys:
        if not isinstance(document, dict):
            return None
        document = document.get(key)
    return float(document) if isinstance(document, int | float) else None
