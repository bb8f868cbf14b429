"""ModelStore: versioned, atomically written model directories.

The layout of a version and the publish protocol are in :mod:`ktrdr_lib.models.layout`;
:meth:`ModelStore.copy_as` publishes a copy of a stored version under another name by the same
protocol (the API's "save model"), and :meth:`ModelStore.describe` summarises one name.

Example:
    >>> store = ModelStore(tmp_path)  # doctest: +SKIP
    >>> saved = store.save(strategy_name="rsi_mlp", module=module, ...)  # doctest: +SKIP
    >>> load_model("rsi_mlp").predict(raw_features)  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeAlias

import msgspec

from ktrdr_lib.errors import ConfigError, DataError, NotFoundError
from ktrdr_lib.models.layout import (
    FEATURES,
    METADATA,
    METRICS,
    MODEL_CONFIG,
    NAME_PATTERN,
    OPTIONAL_FILES,
    SCALER,
    STRATEGY,
    VERSION_FILES,
    VERSION_PATTERN,
    WEIGHTS,
    check_name,
    corrupt,
    directory_size,
    encode,
    load_weights,
    read_analytics,
    read_json,
    stage_version,
    versions_in,
    write_version,
)
from ktrdr_lib.models.listing import SELECTION_METRICS, model_info, selection_figure
from ktrdr_lib.models.predictor import LoadedModel
from ktrdr_lib.paths import models_dir
from ktrdr_lib.pipeline.limits import RunLimits
from ktrdr_lib.schemas.models import ModelDetail, ModelInfo
from ktrdr_lib.schemas.results import TrainingAnalytics
from ktrdr_lib.strategy.spec import ModelSpec, model_name
from ktrdr_lib.training.scaling import FeatureScaler

if TYPE_CHECKING:  # torch and Lightning load with a network, not with a listing
    from ktrdr_lib.training.module import FuzzyMLP

__all__ = [
    "MAX_MODEL_LAYERS",
    "ModelStore",
    "SavedModel",
    "VersionChoice",
    "list_models",
    "load_model",
    "network_parameters",
    "parse_version",
]

VersionChoice: TypeAlias = int | Literal["newest", "best"] | None
"""Which version to load: a number, ``"newest"`` (the highest number; ``None`` says the same)
or ``"best"`` (the highest validation figure, :data:`~ktrdr_lib.models.listing.SELECTION_METRICS`;
the newest of equals)."""


def parse_version(text: str | int | None) -> VersionChoice:
    """A version choice as a request or command line writes it: ``newest``, ``best``, ``3``
    or ``v3`` (``None`` or empty: newest).

    Raises:
        ConfigError: anything else; the message says what is accepted.

    Example:
        >>> parse_version("v3"), parse_version("best"), parse_version(None)
        (3, 'best', 'newest')
    """
    if text is None or (isinstance(text, str) and not text.strip()):
        return "newest"
    if isinstance(text, int) and not isinstance(text, bool):
        return text
    word = str(text).strip().lower()
    if word in ("newest", "latest"):
        return "newest"
    if word == "best":
        return "best"
    if VERSION_PATTERN.fullmatch(word):
        return int(word[1:])
    if word.isdigit() and int(word) > 0:
        return int(word)
    raise ConfigError(
        f"version {text!r} is not a model version; use newest, best, or a number such as 3 (or v3)"
    )


# The most hidden MLP layers (or stacked LSTM/GRU layers) a stored model's model_config.json
# may declare: a long list of narrow layers stays under any parameter cap yet builds millions
# of modules. Its parameters are capped by the run cap (KTRDR_MAX_PARAMETERS).
MAX_MODEL_LAYERS = 256


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
        analytics: TrainingAnalytics | None = None,
    ) -> SavedModel:
        """Write a new version of ``strategy_name`` atomically and return where it went.

        ``analytics``, when the run recorded them, go with it as ``analytics.json`` and
        ``analytics.csv`` (read back with :meth:`analytics`).

        Raises:
            ConfigError: when ``strategy_name`` is not an identifier.
            DataError: when the feature names do not match the network's input width, or no
                free version number was found after many concurrent attempts.
        """
        check_name(strategy_name)
        if len(feature_names) != module.n_features:
            raise DataError(
                f"{len(feature_names)} feature names given for a model with "
                f"{module.n_features} inputs; pass the training feature names in order."
            )
        strategy_dir = self.root / strategy_name
        version = stage_version(
            strategy_dir,
            lambda staging: write_version(
                staging,
                module=module,
                feature_names=list(feature_names),
                scaler=scaler,
                model_spec_config=model_spec_config,
                strategy_config=strategy_config,
                metrics=metrics,
                metadata=metadata,
                analytics=analytics,
            ),
        )
        path = strategy_dir / f"v{version}"
        return SavedModel(strategy_name, version, path, directory_size(path))

    def versions(self, name: str) -> list[int]:
        """Stored version numbers of ``name``, ascending (empty when there are none).

        Raises:
            ConfigError: when ``name`` is not an identifier.
        """
        check_name(name)
        return versions_in(self.root / name)

    def names(self) -> list[str]:
        """Strategy names with at least one stored version, sorted."""
        if not self.root.is_dir():
            return []
        return sorted(
            entry.name
            for entry in self.root.iterdir()
            if NAME_PATTERN.fullmatch(entry.name) and versions_in(entry)
        )

    def load(self, name: str, version: VersionChoice = None) -> LoadedModel:
        """Load ``name`` at ``version``: the newest (highest number) when ``None`` or
        ``"newest"``, the best by validation figure when ``"best"`` (:meth:`best_version`), or
        that number.

        Raises:
            ConfigError: when ``name`` is not an identifier or ``version`` not a choice.
            NotFoundError: unknown name or version, or ``"best"`` with no version that has a
                validation figure; the message names the model and lists its versions.
            DataError: a file of the version is missing or corrupt, or its
                ``model_config.json`` declares a network that does not match its features or
                is bigger than a run may train (``KTRDR_MAX_PARAMETERS``, see
                :mod:`ktrdr_lib.pipeline.limits`) or deeper than :data:`MAX_MODEL_LAYERS`
                (checked before the network is built); the message names the file.
        """
        from ktrdr_lib.training.module import CLASS_NAMES, FuzzyMLP  # torch: only to load

        path, version = self._version_dir(name, version)
        model_config = read_json(path / MODEL_CONFIG)
        try:
            model_spec = msgspec.convert(model_config["model_spec"], ModelSpec)
            n_features = int(model_config["n_features"])
            task = model_config.get("task", "classification")  # older versions: classifiers
            if task not in ("classification", "regression"):
                raise ValueError(f"task {task!r} is neither classification nor regression")
            classes = tuple(str(name) for name in model_config.get("classes") or CLASS_NAMES)
        except (KeyError, TypeError, ValueError, msgspec.ValidationError) as exc:
            raise corrupt(path / MODEL_CONFIG, exc) from exc
        n_outputs = 1 if task == "regression" else len(classes)
        _check_network_size(path / MODEL_CONFIG, model_spec, n_features, n_outputs)
        feature_names = read_json(path / FEATURES)
        if not isinstance(feature_names, list) or len(feature_names) != n_features:
            raise corrupt(
                path / FEATURES,
                f"expected a list of {n_features} feature names, as model_config.json declares",
            )
        module = FuzzyMLP(
            model_spec, n_features, regression=task == "regression", class_names=classes
        )
        load_weights(module, path / WEIGHTS)
        module.eval()
        scaler_data = read_json(path / SCALER)
        try:
            scaler = None if scaler_data is None else FeatureScaler.from_dict(scaler_data)
        except DataError as exc:
            raise corrupt(path / SCALER, exc) from exc
        return LoadedModel(
            name=name,
            version=version,
            path=path,
            module=module,
            scaler=scaler,
            feature_names=[str(feature) for feature in feature_names],
            strategy_config=read_json(path / STRATEGY),
            metrics=read_json(path / METRICS),
            metadata=read_json(path / METADATA),
        )

    def best_version(self, name: str) -> int:
        """The version of ``name`` with the highest validation figure it was saved with
        (:data:`~ktrdr_lib.models.listing.SELECTION_METRICS`: a classifier's validation
        accuracy, a regression's validation directional accuracy), the newest of equals.
        Versions without one (unreadable metrics, or no completed epoch) are never chosen.

        Raises:
            ConfigError: when ``name`` is not an identifier.
            NotFoundError: no model of that name, or none of its versions has a figure.
        """
        best = self._best_of(name)
        if best is None:
            listed = ", ".join(f"v{number}" for number in self.versions(name))
            raise NotFoundError(
                f"model {name!r} has no version with a validation figure to rank by "
                f"({' or '.join(SELECTION_METRICS)}) in {self.root} (versions: {listed}); "
                "load one by number or the newest"
            )
        return best

    def _best_of(self, name: str) -> int | None:
        """:meth:`best_version`, or ``None`` when no version has a figure (``name`` must
        exist)."""
        ranked: list[tuple[float, int]] = []
        for number in self._existing(name):
            with contextlib.suppress(DataError):
                figure = selection_figure(read_json(self.root / name / f"v{number}" / METRICS))
                if figure is not None:
                    ranked.append((figure[1], number))
        return max(ranked)[1] if ranked else None

    def analytics(self, name: str, version: VersionChoice = None) -> TrainingAnalytics | None:
        """The detailed analytics saved with ``name`` at ``version`` (the latest when
        ``None``); ``None`` when its run recorded none.

        Raises:
            ConfigError: when ``name`` is not an identifier.
            NotFoundError: unknown name or version.
            DataError: ``analytics.json`` is unreadable.
        """
        path, _ = self._version_dir(name, version)
        return read_analytics(path)

    def list_models(self) -> list[ModelInfo]:
        """Every stored version, by name then version. Unreadable metadata lists as ``None``."""
        return [
            model_info(name, version, self.root / name / f"v{version}")
            for name in self.names()
            for version in versions_in(self.root / name)
        ]

    def describe(self, name: str) -> ModelDetail:
        """Every version of ``name`` plus the newest version's metrics and strategy, and
        which version is the best (:meth:`best_version`; ``None`` when none has a figure).

        Raises:
            ConfigError: when ``name`` is not an identifier.
            NotFoundError: no stored model has that name; the message lists those that exist.
            DataError: a JSON file of the latest version is missing or corrupt.
        """
        path, latest = self._version_dir(name, None)
        metrics = read_json(path / METRICS)
        strategy_config = read_json(path / STRATEGY)
        feature_names = read_json(path / FEATURES)
        if not isinstance(metrics, dict):
            raise corrupt(path / METRICS, "expected a JSON object")
        if not isinstance(strategy_config, dict):
            raise corrupt(path / STRATEGY, "expected a JSON object")
        if not isinstance(feature_names, list):
            raise corrupt(path / FEATURES, "expected a list of feature names")
        return ModelDetail(
            name=name,
            latest_version=latest,
            versions=[
                model_info(name, version, self.root / name / f"v{version}")
                for version in versions_in(self.root / name)
            ],
            metrics=metrics,
            strategy_config=strategy_config,
            feature_names=[str(feature) for feature in feature_names],
            best_version=self._best_of(name),
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
        check_name(new_name)
        source_dir, source_id = self._source_dir(source)
        missing = [name for name in VERSION_FILES if not (source_dir / name).is_file()]
        if missing:
            raise DataError(
                f"cannot copy {source_id} from {source_dir}: missing {', '.join(missing)}. "
                "The version directory is incomplete; copy a complete version."
            )
        source_metadata = read_json(source_dir / METADATA)
        if not isinstance(source_metadata, dict):
            raise corrupt(source_dir / METADATA, "expected a JSON object")
        metadata: dict[str, Any] = {**source_metadata, **(extra_metadata or {})}
        if description is not None:
            metadata["description"] = description
        metadata["saved_from"] = source_id
        metadata["source_created_at"] = source_metadata.get("created_at")
        metadata["created_at"] = datetime.now(UTC).isoformat()

        def fill(staging: Path) -> None:
            for file_name in VERSION_FILES:
                if file_name != METADATA:
                    shutil.copyfile(source_dir / file_name, staging / file_name)
            for file_name in OPTIONAL_FILES:
                if (source_dir / file_name).is_file():
                    shutil.copyfile(source_dir / file_name, staging / file_name)
            (staging / METADATA).write_bytes(encode(metadata))

        strategy_dir = self.root / new_name
        version = stage_version(strategy_dir, fill)
        path = strategy_dir / f"v{version}"
        return SavedModel(new_name, version, path, directory_size(path))

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
        if VERSION_PATTERN.fullmatch(path.name) and NAME_PATTERN.fullmatch(path.parent.name):
            return path, f"{path.parent.name}/{path.name}"
        return path, str(path)

    def _existing(self, name: str) -> list[int]:
        """The versions of ``name``, ascending; NotFoundError naming the models there when
        it has none."""
        check_name(name)
        versions = versions_in(self.root / name)
        if not versions:
            known = ", ".join(self.names()) or "none"
            raise NotFoundError(
                f"no stored model named {name!r} in {self.root} (models there: {known}). "
                "Train the strategy first or check the name."
            )
        return versions

    def _version_dir(self, name: str, version: VersionChoice) -> tuple[Path, int]:
        versions = self._existing(name)
        if isinstance(version, str):
            version = parse_version(version)
        if version is None or version == "newest":
            chosen = versions[-1]
        elif version == "best":
            chosen = self.best_version(name)
        else:
            chosen = version
        if chosen not in versions:
            listed = ", ".join(f"v{number}" for number in versions)
            raise NotFoundError(
                f"model {name!r} has no version {version!r} in {self.root} (versions: {listed})."
            )
        return self.root / name / f"v{chosen}", chosen


def network_parameters(model_spec: ModelSpec, n_features: int, n_outputs: int) -> int:
    """The trainable parameters of the network ``model_spec`` describes, counted without
    building it (:func:`~ktrdr_lib.training.module.build_network` builds the same layers).

    Example:
        >>> spec = msgspec.convert({"architecture": {"hidden_layers": [4]}}, ModelSpec)
        >>> network_parameters(spec, 3, 3)  # (3·4 + 4) + (4·3 + 3)
        31
    """
    architecture = model_spec.architecture
    if model_spec.type in ("lstm", "gru"):
        gates = 4 if model_spec.type == "lstm" else 3
        hidden = architecture.hidden_size
        recurrent = sum(
            gates * hidden * ((n_features if layer == 0 else hidden) + hidden + 2)
            for layer in range(architecture.num_layers)
        )
        return recurrent + hidden * n_outputs + n_outputs
    widths = [n_features, *architecture.hidden_layers, n_outputs]
    return sum(width_in * width + width for width_in, width in pairwise(widths))


def _check_network_size(
    config_path: Path, model_spec: ModelSpec, n_features: int, n_outputs: int
) -> None:
    """Refuse a declared network too big to build, before anything is allocated: a stored
    version may have come from an archive nobody here wrote."""
    architecture = model_spec.architecture
    layers = (
        architecture.num_layers
        if model_spec.type in ("lstm", "gru")
        else len(architecture.hidden_layers)
    )
    if layers > MAX_MODEL_LAYERS:
        raise corrupt(
            config_path,
            f"it declares {layers} hidden layers, more than the {MAX_MODEL_LAYERS} a stored "
            "model may have",
        )
    if n_outputs < 1 or n_features < 1:
        raise corrupt(
            config_path, f"it declares {n_features} inputs and {n_outputs} outputs (need >= 1)"
        )
    count = network_parameters(model_spec, n_features, n_outputs)
    limit = RunLimits.from_env().max_parameters
    if count > limit:
        raise DataError(
            f"stored model file {config_path} declares a network of {count:,} trainable "
            f"parameters ({model_spec.type}), more than the {limit:,} a run may train "
            "(KTRDR_MAX_PARAMETERS); it was not built. If the model comes from a source you "
            "trust, raise KTRDR_MAX_PARAMETERS to load it; otherwise delete its directory "
            f"{config_path.parent}."
        )


def load_model(
    name: str, version: VersionChoice = "newest", *, root: Path | None = None
) -> LoadedModel:
    """Load a stored model: by default the **newest** version (the highest number, the last
    saved), whatever its figures; ``version="best"`` loads the version with the highest
    validation figure it was saved with (a classifier's validation accuracy, a regression's
    validation directional accuracy: :data:`~ktrdr_lib.models.listing.SELECTION_METRICS`;
    the newest of equals), and a number loads that version (see :meth:`ModelStore.load`).

    ``name`` may be the strategy's own name: a name a directory cannot carry
    (``v15_rsi_zigzag_1.5``) is looked up as the name its models are stored under
    (``v15_rsi_zigzag_1_5``).

    Raises:
        NotFoundError: no such model or version; the message names the model and lists the
            versions there are.

    Example:
        >>> newest = load_model("rsi_mean_reversion")  # doctest: +SKIP
        >>> best = load_model("rsi_mean_reversion", version="best")  # doctest: +SKIP
        >>> best.version, best.metrics["validation"]["accuracy"]  # doctest: +SKIP
    """
    return ModelStore(root).load(model_name(name), version)


def list_models(root: Path | None = None) -> list[ModelInfo]:
    """List stored models (see :meth:`ModelStore.list_models`)."""
    return ModelStore(root).list_models()
