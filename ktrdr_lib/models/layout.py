"""The on-disk layout of one model version, and the atomic publish protocol.

Layout: ``root/{strategy}/v{N}/`` holding::

    weights.pt          torch state_dict of the network
    model_config.json   {"format": 1, "model_spec": {...}, "n_features": int,
                         "task": "classification" | "regression" (absent: classification),
                         "classes": [class names] | null (absent: BUY, HOLD, SELL),
                         "parameters_count": int}
    strategy.json       the strategy configuration the model was trained with
    features.json       feature names, in column order
    scaler.json         FeatureScaler.to_dict(), or null when features are not scaled
    metrics.json        whatever the caller passes (training/validation/test figures...)
    metadata.json       created_at (UTC ISO), library versions, and the caller's metadata
    analytics.json      only when the run recorded detailed analytics: the TrainingAnalytics
    analytics.csv       the same, one row per epoch (see :func:`analytics_table`)

The two analytics files are optional (:data:`OPTIONAL_FILES`): a version without them is
complete.

A version is written into a hidden temp directory under ``root/{strategy}/`` and renamed to
``v{N}`` in one ``os.rename`` (:func:`publish_version`); when a concurrent writer took ``v{N}``
first the rename fails and the next number is tried, so a version is never overwritten or seen
half-written. Anything that is not ``v{N}`` (leftover temp directories included) is ignored.
"""

from __future__ import annotations

import csv
import errno
import io
import math
import os
import re
import shutil
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from ktrdr_lib.environment import library_versions
from ktrdr_lib.errors import ConfigError, DataError
from ktrdr_lib.schemas.results import TrainingAnalytics
from ktrdr_lib.training.scaling import FeatureScaler

if TYPE_CHECKING:  # torch loads with the weights, not with a listing of the store
    from ktrdr_lib.training.module import FuzzyMLP

__all__ = [
    "ANALYTICS_CSV",
    "ANALYTICS_JSON",
    "FEATURES",
    "FORMAT",
    "METADATA",
    "METRICS",
    "MODEL_CONFIG",
    "NAME_PATTERN",
    "OPTIONAL_FILES",
    "SCALER",
    "STRATEGY",
    "VERSION_FILES",
    "VERSION_PATTERN",
    "WEIGHTS",
    "analytics_table",
    "check_name",
    "corrupt",
    "directory_size",
    "encode",
    "load_weights",
    "publish_version",
    "read_analytics",
    "read_json",
    "stage_version",
    "versions_in",
    "write_version",
]

NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")
VERSION_PATTERN = re.compile(r"v([1-9][0-9]*)")
FORMAT = 1
WEIGHTS = "weights.pt"
MODEL_CONFIG = "model_config.json"
STRATEGY = "strategy.json"
FEATURES = "features.json"
SCALER = "scaler.json"
METRICS = "metrics.json"
METADATA = "metadata.json"
VERSION_FILES = (WEIGHTS, MODEL_CONFIG, STRATEGY, FEATURES, SCALER, METRICS, METADATA)
ANALYTICS_JSON = "analytics.json"
ANALYTICS_CSV = "analytics.csv"
OPTIONAL_FILES = (ANALYTICS_JSON, ANALYTICS_CSV)
"""Files a version holds only when the run recorded them."""
_MAX_SAVE_ATTEMPTS = 100


def stage_version(strategy_dir: Path, fill: Callable[[Path], None]) -> int:
    """Write a version with ``fill(staging_dir)`` and publish it as the next ``v{N}``.

    The staging directory is removed if anything fails; returns the version number.
    """
    strategy_dir.mkdir(parents=True, exist_ok=True)
    staging = strategy_dir / f".tmp-{uuid.uuid4().hex}"
    staging.mkdir()
    try:
        fill(staging)
        return publish_version(staging, strategy_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def publish_version(staging: Path, strategy_dir: Path) -> int:
    """Rename ``staging`` to the next free ``v{N}``; retry when another writer won."""
    for _ in range(_MAX_SAVE_ATTEMPTS):
        existing = versions_in(strategy_dir)
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


def check_name(name: str) -> None:
    if not NAME_PATTERN.fullmatch(name):
        raise ConfigError(
            f"model name {name!r} is not an identifier: use letters, digits, '_' and '-', "
            "starting with a letter or digit (no path separators, no '..')."
        )


def versions_in(strategy_dir: Path) -> list[int]:
    if not strategy_dir.is_dir():
        return []
    numbers = (VERSION_PATTERN.fullmatch(entry.name) for entry in strategy_dir.iterdir())
    return sorted(int(match.group(1)) for match in numbers if match)


def write_version(
    directory: Path,
    *,
    module: FuzzyMLP,
    feature_names: list[str],
    scaler: FeatureScaler | None,
    model_spec_config: dict[str, Any],
    strategy_config: dict[str, Any],
    metrics: dict[str, Any],
    metadata: dict[str, Any],
    analytics: TrainingAnalytics | None = None,
) -> None:
    import torch

    state = {key: value.detach().cpu() for key, value in module.state_dict().items()}
    torch.save(state, directory / WEIGHTS)
    documents: dict[str, Any] = {
        MODEL_CONFIG: {
            "format": FORMAT,
            "model_spec": model_spec_config,
            "n_features": module.n_features,
            "task": "regression" if module.regression else "classification",
            "classes": None if module.regression else list(module.class_names),
            "parameters_count": sum(parameter.numel() for parameter in module.parameters()),
        },
        STRATEGY: strategy_config,
        FEATURES: feature_names,
        SCALER: None if scaler is None else scaler.to_dict(),
        METRICS: metrics,
        METADATA: {
            **metadata,
            "created_at": datetime.now(UTC).isoformat(),
            "library_versions": library_versions(),
        },
    }
    if analytics is not None:
        documents[ANALYTICS_JSON] = analytics
    for file_name, document in documents.items():
        (directory / file_name).write_bytes(encode(document))
    if analytics is not None:
        (directory / ANALYTICS_CSV).write_text(_csv_text(analytics), encoding="utf-8")


def analytics_table(analytics: TrainingAnalytics) -> tuple[list[str], list[list[float | None]]]:
    """The analytics as one row per epoch: the header and the rows.

    Columns: ``epoch``, ``learning_rate``, ``gradient_norm``; per parameter tensor
    ``grad_norm/NAME``, ``mean/NAME``, ``std/NAME``, ``abs_max/NAME``; for a classifier
    ``precision/CLASS``, ``recall/CLASS``, ``f1/CLASS``, ``macro_f1``,
    ``mean_max_probability``, ``mean_entropy``, ``confident_share``; for a regression
    ``val_mae``, ``val_rmse``, ``val_directional_accuracy``, ``prediction_mean``,
    ``prediction_std``. A figure an epoch lacks is ``None`` (an empty CSV cell).
    """
    parameters: list[str] = []
    for record in analytics.epochs:
        parameters += [name for name in record.parameters if name not in parameters]
    header = ["epoch", "learning_rate", "gradient_norm"]
    for kind in ("grad_norm", "mean", "std", "abs_max"):
        header += [f"{kind}/{name}" for name in parameters]
    if analytics.task == "classification":
        for kind in ("precision", "recall", "f1"):
            header += [f"{kind}/{name}" for name in analytics.classes]
        header += ["macro_f1", "mean_max_probability", "mean_entropy", "confident_share"]
    else:
        header += [
            "val_mae",
            "val_rmse",
            "val_directional_accuracy",
            "prediction_mean",
            "prediction_std",
        ]
    rows = []
    for record in analytics.epochs:
        cells: dict[str, float | None] = {
            "epoch": record.epoch,
            "learning_rate": record.learning_rate,
            "gradient_norm": record.gradient_norm,
        }
        for name, figures in record.parameters.items():
            for kind in ("grad_norm", "mean", "std", "abs_max"):
                cells[f"{kind}/{name}"] = getattr(figures, kind)
        for name, metrics in (record.per_class or {}).items():
            for kind in ("precision", "recall", "f1"):
                cells[f"{kind}/{name}"] = getattr(metrics, kind)
        cells["macro_f1"] = record.macro_f1
        if record.confidence is not None:
            cells.update(msgspec.structs.asdict(record.confidence))
        if record.regression is not None:
            regression = record.regression
            cells.update(
                val_mae=regression.mae,
                val_rmse=regression.rmse,
                val_directional_accuracy=regression.directional_accuracy,
                prediction_mean=regression.prediction_mean,
                prediction_std=regression.prediction_std,
            )
        rows.append([cells.get(column) for column in header])
    return header, rows


def _csv_text(analytics: TrainingAnalytics) -> str:
    header, rows = analytics_table(analytics)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow(
            ["" if v is None or (isinstance(v, float) and math.isnan(v)) else v for v in row]
        )
    return buffer.getvalue()


def read_analytics(directory: Path) -> TrainingAnalytics | None:
    """A version's analytics (``None`` when it recorded none).

    Raises:
        DataError: ``analytics.json`` is there but unreadable.
    """
    path = directory / ANALYTICS_JSON
    if not path.is_file():
        return None
    try:
        return msgspec.json.decode(path.read_bytes(), type=TrainingAnalytics)
    except (OSError, msgspec.DecodeError) as exc:
        raise corrupt(path, exc) from exc


def encode(document: Any) -> bytes:
    return msgspec.json.format(msgspec.json.encode(document))


def read_json(path: Path) -> Any:
    try:
        return msgspec.json.decode(path.read_bytes())
    except FileNotFoundError as exc:
        raise corrupt(path, "the file is missing") from exc
    except (OSError, msgspec.DecodeError) as exc:
        raise corrupt(path, exc) from exc


def load_weights(module: FuzzyMLP, path: Path) -> None:
    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        module.load_state_dict(state)
    except FileNotFoundError as exc:
        raise corrupt(path, "the file is missing") from exc
    except (OSError, RuntimeError, ValueError, KeyError, EOFError) as exc:
        raise corrupt(path, exc) from exc


def corrupt(path: Path, reason: object) -> DataError:
    return DataError(
        f"stored model file {path} is unreadable: {reason}. The version directory "
        f"{path.parent} is incomplete or corrupt; delete it and train again."
    )


def directory_size(path: Path) -> int:
    return sum(entry.stat().st_size for entry in path.iterdir() if entry.is_file())
