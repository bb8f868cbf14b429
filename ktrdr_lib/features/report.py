"""Which inputs are alive: dead and constant features on the training rows.

A fuzzy membership that is (almost) never above zero on the training rows teaches the network
nothing, and is often the sign of a scale mistake (sets written for a ratio around 1.0 over an
indicator that gives a price). :func:`feature_report` reports, per membership column, the share
of training rows where it is above 0.01; below 1 % the column is *dead*. A column with a
single value on every training row is *constant*. Training still runs; the report travels in the
result's data summary.

Example:
    >>> import numpy as np
    >>> x = np.array([[0.0, 0.5, 2.0], [0.005, 0.7, 2.0]], dtype=np.float32)
    >>> report = feature_report(x, ["a", "b", "c"], fuzzy=[True, True, False])
    >>> report.dead, report.constant
    (['a'], ['c'])
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ktrdr_lib.schemas.results import FeatureReport

__all__ = ["ACTIVE_LEVEL", "DEAD_SHARE", "feature_report"]

ACTIVE_LEVEL = 0.01
"""A membership above this counts as active on a row."""
DEAD_SHARE = 0.01
"""A membership column active on fewer than this share of training rows is dead."""


def feature_report(
    x_train: np.ndarray, names: Sequence[str], *, fuzzy: Sequence[bool]
) -> FeatureReport:
    """Active shares, dead and constant columns of the first ``len(names)`` columns.

    Args:
        x_train: training rows, unscaled (columns beyond ``names`` are ignored: lags).
        names: the columns to report on.
        fuzzy: per column of ``names``, whether it is a membership degree.
    """
    width = len(names)
    if x_train.shape[0] == 0 or width == 0:
        return FeatureReport()
    columns = x_train[:, :width]
    active = (columns > ACTIVE_LEVEL).mean(axis=0)
    flat = columns.min(axis=0) == columns.max(axis=0)
    shares = {
        name: round(float(share), 4)
        for name, share, is_fuzzy in zip(names, active, fuzzy, strict=True)
        if is_fuzzy
    }
    return FeatureReport(
        active_share=shares,
        dead=[name for name, share in shares.items() if share < DEAD_SHARE],
        constant=[name for name, is_flat in zip(names, flat, strict=True) if is_flat],
    )
