"""The SVG curves: a line per series with two or more epochs, a dot for one, a frame for none."""

from __future__ import annotations

from ktrdr_lib.schemas.progress import EpochHistoryRow
from ktrdr_lib.views.curves import curve_svg


def test_two_epochs_draw_four_lines() -> None:
    rows = [
        EpochHistoryRow(
            epoch=1, train_loss=0.9, val_loss=1.0, train_accuracy=0.5, val_accuracy=0.4
        ),
        EpochHistoryRow(
            epoch=2, train_loss=0.7, val_loss=0.8, train_accuracy=0.6, val_accuracy=0.5
        ),
    ]
    svg = curve_svg(rows)
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    assert svg.count("<polyline") == 4
    assert svg.count("stroke-dasharray='4 2'") == 2  # validation dashed
    assert "0.7–1" in svg  # the loss panel's range


def test_one_epoch_is_a_dot_and_no_figures_a_frame() -> None:
    one = curve_svg([EpochHistoryRow(epoch=1, train_loss=0.9)])
    assert one.count("<circle") == 1 and "<polyline" not in one
    empty = curve_svg([EpochHistoryRow(epoch=1)])
    assert "<circle" not in empty and "<polyline" not in empty
    assert empty.count("<rect") == 2
