"""Model-ready arrays: feature matrix, labels and the chronological, purged split."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["DatasetSplits"]


@dataclass(frozen=True)
class DatasetSplits:
    """Chronological train/validation/test arrays.

    Features are raw (unscaled) ``float32`` of shape ``(n, len(feature_names))``; labels are
    ``int64`` class ids (0 BUY, 1 HOLD, 2 SELL). ``*_index`` hold each row's bar time.
    """

    feature_names: list[str]
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    train_index: pd.DatetimeIndex
    val_index: pd.DatetimeIndex
    test_index: pd.DatetimeIndex
