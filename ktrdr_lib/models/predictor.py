"""The predictor shared by a model just trained and a model loaded from the store.

:class:`ModelPredictor` is used both for the in-memory model after training and for a loaded
one (:class:`LoadedModel` is a predictor with its stored configuration), so both predict through
the same code and give identical outputs.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ktrdr_lib.errors import DataError
from ktrdr_lib.training.scaling import FeatureScaler

if TYPE_CHECKING:  # a predictor holds a network, so torch is loaded by then
    from ktrdr_lib.training.module import FuzzyMLP

__all__ = ["LoadedModel", "ModelPredictor"]


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

    @property
    def regression(self) -> bool:
        """Whether the model predicts a value (a return) rather than class probabilities."""
        return bool(self.module.regression)

    @property
    def sequence_length(self) -> int | None:
        """Rows per input window of a recurrent model (``None`` for an MLP)."""
        length: int | None = self.module.sequence_length
        return length

    def _scaled(self, raw_features: np.ndarray) -> np.ndarray:
        """The features scaled as in training; ``(n, columns)`` rows for an MLP, ``(n,
        sequence_length, columns)`` windows for a recurrent model."""
        features = np.asarray(raw_features, dtype=np.float32)
        length = self.sequence_length
        shape = "(n, columns)" if length is None else f"(n, {length}, columns)"
        rank = 2 if length is None else 3
        if (
            features.ndim != rank
            or features.shape[-1] != len(self.feature_names)
            or (length is not None and features.shape[1] != length)
        ):
            names = ", ".join(self.feature_names[:5])
            more = ", ..." if len(self.feature_names) > 5 else ""
            raise DataError(
                f"features have shape {features.shape} but the model expects "
                f"{len(self.feature_names)} columns, as {shape} ({names}{more}); pass the "
                "model's feature_names columns in that order."
            )
        if self.scaler is not None:
            rows = features.reshape(-1, features.shape[-1])
            features = self.scaler.transform(rows).reshape(features.shape)
        return features

    def predict_proba(self, raw_features: np.ndarray) -> np.ndarray:
        """Class probabilities, shape ``(n, 3)`` (columns BUY, HOLD, SELL).

        Args:
            raw_features: unscaled features, shape ``(n, len(feature_names))``; for a
                recurrent model windows ``(n, sequence_length, len(feature_names))``.

        Raises:
            DataError: when the column count differs from ``feature_names``.
            TrainingError: the model is a regression (use :meth:`predict_values`).
        """
        import torch

        features = self._scaled(raw_features)
        probabilities: np.ndarray = (
            self.module.predict_proba(torch.from_numpy(features)).cpu().numpy()
        )
        return probabilities

    def predict_values(self, raw_features: np.ndarray) -> np.ndarray:
        """A regression model's predicted values (returns), shape ``(n,)``.

        Raises:
            DataError: when the column count differs from ``feature_names``.
            TrainingError: the model is a classifier (use :meth:`predict_proba`).
        """
        import torch

        features = self._scaled(raw_features)
        values: np.ndarray = self.module.predict_values(torch.from_numpy(features)).cpu().numpy()
        return values

    def predict(self, raw_features: np.ndarray) -> np.ndarray:
        """Predicted class ids (0 BUY, 1 HOLD, 2 SELL), shape ``(n,)``; a regression's
        predicted values."""
        if self.regression:
            return self.predict_values(raw_features)
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
