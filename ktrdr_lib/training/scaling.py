"""Feature standardisation fitted on the training split only.

The scaler is plain numpy (no torch, no Lightning) so it loads fast and travels with a saved
model as JSON: ``FeatureScaler.from_dict(scaler.to_dict())`` rebuilds it exactly.

Example:
    >>> import numpy as np
    >>> scaler = FeatureScaler.fit(np.array([[1.0, 5.0], [3.0, 5.0]], dtype=np.float32))
    >>> scaler.transform(np.array([[2.0, 5.0]], dtype=np.float32)).tolist()
    [[0.0, 0.0]]
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ktrdr_lib.errors import DataError

__all__ = ["FeatureScaler"]


class FeatureScaler:
    """Per-column ``(x - mean) / std`` with statistics from the training split.

    A column whose training standard deviation is 0 (a constant feature) gets ``std = 1`` so it
    maps to 0 instead of dividing by zero.

    Args:
        mean: per-column mean, shape ``(n_features,)``.
        std: per-column standard deviation, shape ``(n_features,)``, all > 0.
    """

    def __init__(self, mean: np.ndarray, std: np.ndarray) -> None:
        self.mean = np.asarray(mean, dtype=np.float64)
        self.std = np.asarray(std, dtype=np.float64)
        if self.mean.ndim != 1 or self.mean.shape != self.std.shape:
            raise DataError(
                f"FeatureScaler needs 1-D mean and std of the same length; got shapes "
                f"{self.mean.shape} and {self.std.shape}. Rebuild the scaler with "
                "FeatureScaler.fit(training_features)."
            )
        if not (np.all(np.isfinite(self.std)) and np.all(self.std > 0)):
            raise DataError(
                "FeatureScaler std must be finite and > 0 for every column; rebuild the scaler "
                "with FeatureScaler.fit(training_features)."
            )

    @property
    def n_features(self) -> int:
        """Number of columns the scaler expects."""
        return int(self.mean.shape[0])

    @classmethod
    def fit(cls, x_train: np.ndarray) -> FeatureScaler:
        """Fit mean and std on the training features.

        Args:
            x_train: training features, shape ``(n_samples, n_features)``, n_samples ≥ 1.

        Raises:
            DataError: when the array is not 2-D, is empty or holds NaN/inf.
        """
        x = np.asarray(x_train, dtype=np.float64)
        if x.ndim != 2 or x.shape[0] == 0:
            raise DataError(
                f"cannot fit a feature scaler on training features of shape {x.shape}; expected "
                "(n_samples ≥ 1, n_features). Check the data split and the date range."
            )
        if not np.all(np.isfinite(x)):
            bad_columns = np.flatnonzero(~np.all(np.isfinite(x), axis=0)).tolist()
            raise DataError(
                f"training features hold NaN or inf in columns {bad_columns}; drop warm-up rows "
                "or fix the indicator inputs before scaling."
            )
        std = x.std(axis=0)
        return cls(x.mean(axis=0), np.where(std > 0, std, 1.0))

    def transform(self, x: np.ndarray) -> np.ndarray:
        """Standardise features with the fitted statistics.

        Args:
            x: features of shape ``(n_samples, n_features)``.

        Returns:
            ``float32`` array of the same shape.

        Raises:
            DataError: when the column count differs from the fitted one.
        """
        array = np.asarray(x)
        if array.ndim != 2 or array.shape[1] != self.n_features:
            raise DataError(
                f"features have shape {array.shape} but the scaler was fitted on "
                f"{self.n_features} columns; pass the same feature columns, in the same order, "
                "as in training."
            )
        return ((array - self.mean) / self.std).astype(np.float32)

    def to_dict(self) -> dict[str, list[float]]:
        """JSON-safe form: ``{"mean": [...], "std": [...]}``."""
        return {"mean": self.mean.tolist(), "std": self.std.tolist()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FeatureScaler:
        """Rebuild a scaler from :meth:`to_dict` output.

        Raises:
            DataError: when ``mean`` or ``std`` is missing or malformed.
        """
        try:
            mean = np.asarray(data["mean"], dtype=np.float64)
            std = np.asarray(data["std"], dtype=np.float64)
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(
                f"scaler data must hold numeric lists 'mean' and 'std'; got keys "
                f"{sorted(data)}: {exc}. Re-save the model to rewrite its scaler."
            ) from exc
        return cls(mean, std)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, FeatureScaler):
            return NotImplemented
        return bool(np.array_equal(self.mean, other.mean) and np.array_equal(self.std, other.std))

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"FeatureScaler(n_features={self.n_features})"
