"""Per-epoch loss and accuracy curves as inline SVG (drawn here: no plotting dependency).

Two panels side by side, loss and accuracy, each scaled to its own range; training solid and
blue, validation dashed and orange. An epoch with one point is a dot.

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

_SERIES: tuple[tuple[str, str, str, str], ...] = (
    # panel, row field, colour, dash
    ("loss", "train_loss", "#1f77b4", ""),
    ("loss", "val_loss", "#ff7f0e", "4 2"),
    ("accuracy", "train_accuracy", "#1f77b4", ""),
    ("accuracy", "val_accuracy", "#ff7f0e", "4 2"),
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
    parts = [
        f"<text x='{x0 + 4}' y='12' font-size='11' fill='#555'>{panel} per epoch</text>",
        f"<rect x='{x0}' y='16' width='{width}' height='{height - 20}' fill='none' stroke='#ddd'/>",
    ]
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
        f"<text x='{x0 + width - 4}' y='12' font-size='10' fill='#888' text-anchor='end'>"
        f"{low:.3g}–{high:.3g}</text>"
    )
    return "".join(parts)


def curve_svg(rows: Sequence[EpochHistoryRow], *, width: int = 560, height: int = 110) -> str:
    """Loss and accuracy per epoch (train solid, validation dashed) as an inline SVG.

    Args:
        rows: the epoch history, one row per epoch.
        width: the picture's width in pixels.
        height: the panels' height in pixels (the legend adds a few).

    Returns:
        An ``<svg>`` element, ready to put in HTML.
    """
    half = (width - 10) / 2
    legend = (
        f"<text x='4' y='{height - 2}' font-size='10' fill='#1f77b4'>— train</text>"
        f"<text x='60' y='{height - 2}' font-size='10' fill='#ff7f0e'>-- validation</text>"
    )
    return (
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height + 8}' "
        f"role='img' aria-label='training curves'>"
        f"{_panel_svg(rows, 'loss', 0, half, height - 6)}"
        f"{_panel_svg(rows, 'accuracy', half + 10, half, height - 6)}{legend}</svg>"
    )
