"""Feature scaling fitted on the training split only: per column, z-score, min-max or none.

The scaler is plain numpy (no torch, no Lightning) so it loads fast and travels with a saved
model as JSON: ``FeatureScaler.from_dict(scaler.to_dict())`` rebuilds it exactly.

Example:
    >>> import numpy as np
    >>> scaler = FeatureScaler.fit(np.array([[1.0, 5.0], [3.0, 5.0]], dtype=np.float32))
    >>> scaler.transform(np.array([[2.0, 5.0]], dtype=np.float32)).tolist()
    [[0.0, 0.0]]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ktrdr_lib.errors import DataError

__all__ = ["FeatureScaler"]


class FeatureScaler:
    """Per-column ``(x - offset) / scale`` with statistics from the training split.

    Each column is scaled as :meth:`fit` was told: ``zscore`` (offset the mean, scale the
    standard deviation), ``minmax`` (offset the minimum, scale the range, so training values
    fall in [0, 1]) or ``none`` (offset 0, scale 1). A zero spread (a constant feature) gets
    scale 1 so it maps to 0 instead of dividing by zero. The two vectors are stored as
    ``mean`` and ``std`` whatever the modes were.

    Args:
        mean: per-column offset, shape ``(n_features,)``.
        std: per-column scale, shape ``(n_features,)``, all > 0.
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
    def fit(
        cls, x_train: np.ndarray, modes: Sequence[str] | None = None, *, chunk: int = 65_536
    ) -> FeatureScaler:
        """Fit each column's offset and scale on the training features.

        The statistics are accumulated in float64 over slices of rows, so fitting never
        holds a float64 copy of the whole split.

        Args:
            x_train: training features, shape ``(n_samples, n_features)``, n_samples ≥ 1.
            modes: per column ``zscore``, ``minmax`` or ``none`` (default: all ``zscore``).
            chunk: rows per slice.

        Raises:
            DataError: when the array is not 2-D, is empty or holds NaN/inf, or ``modes`` does
                not match its columns.
        """
        x = np.asarray(x_train)
        if x.ndim != 2 or x.shape[0] == 0:
            raise DataError(
                f"cannot fit a feature scaler on training features of shape {x.shape}; expected "
                "(n_samples ≥ 1, n_features). Check the data split and the date range."
            )
        columns = x.shape[1]
        wanted = list(modes) if modes is not None else ["zscore"] * columns
        unknown = sorted(set(wanted) - {"zscore", "minmax", "none"})
        if len(wanted) != columns or unknown:
            raise DataError(
                f"scaler modes must name zscore, minmax or none for each of the {columns} "
                f"columns; got {len(wanted)} modes{f' with {unknown}' if unknown else ''}"
            )
        total = np.zeros(columns)
        squares = np.zeros(columns)
        low = np.full(columns, np.inf)
        high = np.full(columns, -np.inf)
        for start in range(0, x.shape[0], chunk):
            block = x[start : start + chunk].astype(np.float64)
            if not np.all(np.isfinite(block)):
                bad_columns = np.flatnonzero(~np.all(np.isfinite(block), axis=0)).tolist()
                raise DataError(
                    f"training features hold NaN or inf in columns {bad_columns}; drop warm-up "
                    "rows or fix the indicator inputs before scaling."
                )
            total += block.sum(axis=0)
            squares += np.square(block).sum(axis=0)
            np.minimum(low, block.min(axis=0), out=low)
            np.maximum(high, block.max(axis=0), out=high)
        rows = x.shape[0]
        mean = total / rows
        std = np.sqrt(np.maximum(squares / rows - mean * mean, 0.0))
        choice = np.array(wanted)
        offset = np.where(choice == "zscore", mean, np.where(choice == "minmax", low, 0.0))
        spread = np.where(choice == "zscore", std, np.where(choice == "minmax", high - low, 1.0))
        return cls(offset, np.where(spread > 0, spread, 1.0))

    def _check(self, array: np.ndarray) -> None:
        if array.ndim != 2 or array.shape[1] != self.n_features:
            raise DataError(
                f"features have shape {array.shape} but the scaler was fitted on "
                f"{self.n_features} columns; pass the same feature columns, in the same order, "
                "as in training."
            )

    def transform(self, x: np.ndarray, *, in_place: bool = False) -> np.ndarray:
        """Standardise features with the fitted statistics.

        Args:
            x: features of shape ``(n_samples, n_features)``.
            in_place: overwrite ``x`` (a writable float32 array) instead of allocating the
                result; training scales its splits so, to hold one copy of the features.

        Returns:
            ``float32`` array of the same shape (``x`` itself when ``in_place``).

        Raises:
            DataError: when the column count differs from the fitted one, or ``in_place`` is
                asked of an array that is not a writable float32 one.
        """
        array = np.asarray(x)
        self._check(array)
        mean, std = self.mean.astype(np.float32), self.std.astype(np.float32)
        if in_place:
            if array.dtype != np.float32 or not array.flags.writeable:
                raise DataError(
                    f"in-place scaling needs a writable float32 array, got {array.dtype} "
                    f"(writeable={array.flags.writeable}); call transform without in_place"
                )
            np.subtract(array, mean, out=array)
            array /= std
            return array
        # In float32 throughout: one output array, no float64 copy of the features.
        scaled: np.ndarray = np.subtract(array, mean, dtype=np.float32)
        scaled /= std
        return scaled

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
