"""Per-epoch loss and accuracy curves as inline SVG (drawn here: no plotting dependency).

Two panels side by side, loss and accuracy, each scaled to its own range; training solid and
blue, validation dashed and orange. A run that recorded detailed analytics gets two more
(:func:`analytics_svg`): the gradient norm per epoch, and the validation F1 of each class (a
regression: its validation MAE). An epoch with one point is a dot. The picture scales to
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

import html
import math
from collections.abc import Sequence

from ktrdr_lib.schemas.progress import EpochHistoryRow
from ktrdr_lib.schemas.results import TrainingAnalytics

__all__ = ["analytics_svg", "curve_svg"]

_TRAIN = "#1f77b4"  # the series colours read on light and dark backgrounds alike
_VALIDATION = "#ff7f0e"
_LABEL = "var(--jp-ui-font-color1, #424242)"
_MUTED = "var(--jp-ui-font-color2, #757575)"
_FRAME = "var(--jp-border-color1, #bdbdbd)"

_CLASS_COLOURS = ("#2ca02c", "#7f7f7f", "#d62728", "#9467bd", "#8c564b")
"""One per class, in output order (BUY green, HOLD grey, SELL red, then others)."""

Points = list[tuple[int, float]]

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
    series = [
        (
            colour,
            dash,
            [
                (row.epoch, float(v))
                for row in rows
                if isinstance(v := getattr(row, field), int | float)
            ],
        )
        for p, field, colour, dash in _SERIES
        if p == panel
    ]
    return _series_panel(f"{panel} per epoch", series, x0, width, height)


def _series_panel(
    title_text: str,
    series: Sequence[tuple[str, str, Points]],
    x0: float,
    width: float,
    height: float,
) -> str:
    """A panel: frame, title, range, and a line (or a dot) per ``(colour, dash, points)``;
    points that are not finite are left out."""
    series = [(c, d, [(e, v) for e, v in pts if math.isfinite(v)]) for c, d, pts in series]
    values = [v for _, _, points in series for _, v in points]
    epochs_seen = [e for _, _, points in series for e, _ in points]
    title = f"<text x='{x0 + 4}' y='12' font-size='11' style='fill:{_LABEL}'>{title_text}</text>"
    frame = (
        f"<rect x='{x0}' y='16' width='{width}' height='{height - 20}' fill='none' "
        f"style='stroke:{_FRAME}'/>"
    )
    parts = [title, frame]
    if not values:
        return "".join(parts)
    low, high = min(values), max(values)
    span = (high - low) or 1.0
    last_epoch = max(epochs_seen)
    first_epoch = min(epochs_seen)
    epochs = (last_epoch - first_epoch) or 1

    def xy(epoch: int, value: float) -> str:
        x = x0 + 4 + (width - 8) * (epoch - first_epoch) / epochs
        y = 20 + (height - 28) * (1 - (value - low) / span)
        return f"{x:.1f},{y:.1f}"

    for colour, dash, values_at in series:
        points = [xy(epoch, value) for epoch, value in values_at]
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


def analytics_svg(analytics: TrainingAnalytics, *, width: int = 560, height: int = 110) -> str:
    """The analytics' curves as an inline SVG: the gradient norm per epoch, and the validation
    F1 per class (a regression: its validation MAE).

    Args:
        analytics: what the run recorded (empty string when it has no epoch).
        width: the picture's natural width in pixels (it shrinks with a narrower area).
        height: the panels' height at that width (the legend adds a few).

    Example:
        >>> from ktrdr_lib.schemas.results import EpochAnalytics, TrainingAnalytics
        >>> record = EpochAnalytics(epoch=1, learning_rate=0.01, gradient_norm=0.5,
        ...                         parameters={})
        >>> analytics = TrainingAnalytics(task="classification", classes=["BUY"],
        ...     confidence_threshold=0.6, epochs=[record], fuzzy_active_level=0.01,
        ...     stop_reason="max_epochs")
        >>> "gradient norm" in analytics_svg(analytics)
        True
    """
    records = analytics.epochs
    if not records:
        return ""
    half = (width - 10) / 2
    gradient = [(_TRAIN, "", [(r.epoch, r.gradient_norm) for r in records])]
    right: list[tuple[str, str, Points]]
    if analytics.task == "classification":
        right = [
            (
                _CLASS_COLOURS[i % len(_CLASS_COLOURS)],
                "",
                [
                    (r.epoch, r.per_class[name].f1)
                    for r in records
                    if r.per_class is not None and name in r.per_class
                ],
            )
            for i, name in enumerate(analytics.classes)
        ]
        right_title = "validation F1 per class"
        labels = [
            (_CLASS_COLOURS[i % len(_CLASS_COLOURS)], name)
            for i, name in enumerate(analytics.classes)
        ]
    else:
        right = [
            (
                _VALIDATION,
                "4 2",
                [(r.epoch, r.regression.mae) for r in records if r.regression is not None],
            )
        ]
        right_title = "validation MAE"
        labels = [(_VALIDATION, "validation MAE")]
    legend = "".join(
        f"<text x='{half + 14 + 60 * i}' y='{height - 2}' font-size='10' fill='{colour}'>"
        f"— {html.escape(name)}</text>"
        for i, (colour, name) in enumerate(labels)
    )
    legend += (
        f"<text x='4' y='{height - 2}' font-size='10' fill='{_TRAIN}'>— last batch of the "
        "epoch</text>"
    )
    return (
        f"<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 {width} {height + 8}' "
        f"width='100%' preserveAspectRatio='xMinYMin meet' "
        f"style='display:block;width:100%;max-width:{width}px;height:auto' "
        f"role='img' aria-label='training analytics'>"
        f"{_series_panel('gradient norm per epoch', gradient, 0, half, height - 6)}"
        f"{_series_panel(right_title, right, half + 10, half, height - 6)}{legend}</svg>"
    )
