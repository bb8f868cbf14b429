"""Per-epoch loss and accuracy curves as inline SVG (drawn here: no plotting dependency).

Two panels side by side, loss and accuracy, each scaled to its own range; training solid and
blue, validation dashed and orange. An epoch with one point is a dot. The picture scales to
the width it is given (a ``viewBox``, ``width: 100%`` up to its natural width), and its titles,
labels and frames take JupyterLab's theme colours, so it reads in a narrow output area and in
the dark theme.

Example:
    >>> from ktrdr_lib.schemas.progress import EpochHistoryRow
    >>> rows = [
    ...     EpochHistoryRow(epoch=1, train_loss=0.9, val_loss=1.0),
    ...     EpochHistoryRow(epoch=2, train_loss=0.7, val_loss=0.8),
    ... ]
    >>> curve_svg(rows).count("<polyline")
    2
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from ktrdr_lib.schemas.progress import EpochHistoryRow

__all__ = ["curve_svg"]

_TRAIN = "#1f77b4"  # the series colours read on light and dark backgrounds alike
_VALIDATION = "#ff7f0e"
_LABEL = "var(--jp-ui-font-color1, #424242)"
_MUTED = "var(--jp-ui-font-color2, #757575)"
_FRAME = "var(--jp-border-color1, #bdbdbd)"

_SERIES: tuple[tuple[str, str, str, str], ...] = (
    # panel, row field, colour, dash
    ("loss", "train_loss", _TRAIN, ""),
    ("loss", "val_loss", _VALIDATION, "4 2"),
    ("accuracy", "train_accuracy", _TRAIN, ""),
    ("accuracy", "val_accuracy", _VALIDATION, "4 2"),
)


def _panel_svg(
    rows: Sequence[EpochHistoryRow], panel: str, x0: float, width: float, height: float
) -> str:
    """One panel (``loss`` or ``accuracy``): frame, title, range, and a line per series."""
    series = [(f, c, d) for p, f, c, d in _SERIES if p == panel]
    values = [
        float(v)
        for f, _, _ in series
        for row in rows
        if isinstance(v := getattr(row, f), int | float) and math.isfinite(v)
    ]
    title = (
        f"<text x='{x0 + 4}' y='12' font-size='11' style='fill:{_LABEL}'>{panel} per epoch</text>"
    )
    frame = (
        f"<rect x='{x0}' y='16' width='{width}' height='{height - 20}' fill='none' "
        f"style='stroke:{_FRAME}'/>"
    )
    parts = [title, frame]
    if not values:
        return "".join(parts)
    low, high = min(values), max(values)
    span = (high - low) or 1.0
    last_epoch = max(row.epoch for row in rows)
    first_epoch = min(row.epoch for row in rows)
    epochs = (last_epoch - first_epoch) or 1

    def xy(epoch: int, value: float) -> str:
        x = x0 + 4 + (width - 8) * (epoch - first_epoch) / epochs
        y = 20 + (height - 28) * (1 - (value - low) / span)
        return f"{x:.1f},{y:.1f}"

    for field, colour, dash in series:
        points = [
            xy(row.epoch, float(v))
            for row in rows
            if isinstance(v := getattr(row, field), int | float) and math.isfinite(v)
        ]
        if len(points) == 1:
            cx, cy = points[0].split(",")
            parts.append(f"<circle cx='{cx}' cy='{cy}' r='2' fill='{colour}'/>")
        elif points:
            dashes = f" stroke-dasharray='{dash}'" if dash else ""
            parts.append(
                f"<polyline points='{' '.join(points)}' fill='none' stroke='{colour}' "
                f"stroke-width='1.5'{dashes}/>"
            )
    parts.append(
        f"<text x='{x0 + width - 4}' y='12' font-size='10' style='fill:{_MUTED}' "
        f"text-anchor='end'>{low:.3g}–{high:.3g}</text>"
    )
    return "".join(parts)


def curve_svg(rows: Sequence[EpochHistoryRow], *, width: int = 560, height: int = 110) -> str:
    """Loss and accuracy per epoch (train solid, validation dashed) as an inline SVG.

    Args:
        rows: the epoch history, one row per epoch.
        width: the picture's natural width in pixels: the drawing's coordinates, and the
            most it grows to; in a narrower area it shrinks with it (aspect kept).
        height: the panels' height at that width (the legend adds a few).

    Returns:
        An ``<svg>`` element, ready to put in HTML.
    """
    half = (width - 10) / 2
    legend = (
        f"<text x='4' y='{height - 2}' font-size='10' fill='{_TRAIN}'>— train</text>"
        f"<text x='60' y='{height - 2}' font-size='10' fill='{_VALIDATION}'>-- validation</text>"
    )
    return (
        f"<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 {width} {height + 8}' "
        f"width='100%' preserveAspectRatio='xMinYMin meet' "
        f"style='display:block;width:100%;max-width:{width}px;height:auto' "
        f"role='img' aria-label='training curves'>"
        f"{_panel_svg(rows, 'loss', 0, half, height - 6)}"
        f"{_panel_svg(rows, 'accuracy', half + 10, half, height - 6)}{legend}</svg>"
    )
