"""What keeps the view readable in a narrow output area and in JupyterLab's dark theme.

A browser is the real judge (``lab_shots.py``, by hand); these tests pin the structure that
makes it work: colours of text, frames and backgrounds come from JupyterLab's theme variables,
the curve scales with the area (a viewBox, width 100 %), nothing has a fixed width wider than
a narrow area, and the widget's rows wrap while its buttons size to their labels.
"""

from __future__ import annotations

import re

import msgspec
import pytest

from ktrdr_lib.schemas.progress import EpochHistoryRow, ProgressSnapshot
from ktrdr_lib.views.curves import curve_svg
from ktrdr_lib.views.formatting import summary_rows, table_html
from ktrdr_lib.views.html import BAR_COLOURS, HtmlRenderer
from ktrdr_lib.views.state import ViewState
from tests.builders import make_result, record_of

NARROW_PX = 320
"""No part may insist on being wider than this."""
SERIES_COLOURS = {"#1f77b4", "#ff7f0e"}
"""The curves' line colours: data, not text; they read on light and dark backgrounds."""

ROWS = [
    EpochHistoryRow(epoch=1, train_loss=0.9, val_loss=1.0, train_accuracy=0.5, val_accuracy=0.4),
    EpochHistoryRow(epoch=2, train_loss=0.7, val_loss=0.8, train_accuracy=0.6, val_accuracy=0.5),
]


def _finished_markup() -> str:
    """The HTML view of a finished run: bar, headline, curve, note, summary table."""
    state = ViewState("op_1")
    state.apply(
        ProgressSnapshot(
            operation_id="op_1",
            sequence=1,
            status="completed",
            phase="save",
            percentage=100.0,
            metrics={"train_loss": 0.7, "val_loss": 0.8},
            metrics_epoch=2,
        )
    )
    state.set_history(ROWS)
    result = make_result("op_1", epochs_completed=2)
    path = "/a/very/long/path/" + "x" * 300  # must wrap, not widen the view
    artifacts = msgspec.structs.replace(result.artifacts, model_id="demo_v1", model_path=path)
    state.record = record_of(msgspec.structs.replace(result, artifacts=artifacts))
    renderer = HtmlRenderer()
    renderer.note("refused: <why>")
    renderer.render(state, set())
    assert "refused" in renderer.markup
    renderer.finish(state)
    return renderer.markup


def _colours_outside_theme_variables(markup: str) -> set[str]:
    """Hex colours that are not the fallback of a ``var(--jp-...)``."""
    themed = re.sub(r"var\(--jp-[\w-]+,\s*#[0-9a-fA-F]{3,8}\)", "var()", markup)
    return set(re.findall(r"#[0-9a-fA-F]{3,8}\b", themed))


def test_the_curve_scales_with_the_area() -> None:
    svg = curve_svg(ROWS)
    root = svg[: svg.index(">") + 1]
    assert "viewBox='0 0 560 118'" in root
    assert "width='100%'" in root and "height:auto" in root
    assert not re.search(r"\swidth='\d+'", root)  # no fixed pixel width
    assert not re.search(r"\sheight='\d+'", root)
    assert "max-width:560px" in root  # grows no wider than it was drawn


def test_text_frames_and_backgrounds_take_the_theme_colours() -> None:
    svg = curve_svg(ROWS)
    assert _colours_outside_theme_variables(svg) <= SERIES_COLOURS
    assert "fill:var(--jp-ui-font-color1" in svg  # the panel titles
    assert "stroke:var(--jp-border-color1" in svg  # the frames

    markup = _finished_markup()
    assert _colours_outside_theme_variables(markup) <= SERIES_COLOURS | set(BAR_COLOURS.values())
    assert "color:var(--jp-ui-font-color1" in markup  # body text
    assert "background:var(--jp-layout-color2" in markup  # the bar's track
    assert "border:1px solid var(--jp-border-color1" in markup
    assert "color:#" not in markup and "background:#eee" not in markup
    assert "color:var(--jp-ui-font-color1" in table_html(summary_rows(record_of(make_result())))


def test_nothing_is_wider_than_a_narrow_area() -> None:
    markup = _finished_markup() + curve_svg(ROWS)
    fixed = [int(px) for px in re.findall(r"(?<![-\w])width:\s*(\d+)px", markup)]
    assert all(px <= NARROW_PX for px in fixed), fixed
    assert "overflow-wrap:anywhere" in markup  # long paths break instead of widening it
    assert "Completed: 2 epochs" in markup and "refused" not in markup  # the note is over


def test_the_widget_rows_wrap_and_the_buttons_fit_their_labels() -> None:
    pytest.importorskip("ipywidgets")
    from ktrdr_lib.views.widget import WidgetRenderer

    view = WidgetRenderer("op_1", on_cancel=lambda: None, on_stop=lambda: None)
    try:
        for button in (view.cancel_button, view.stop_button):
            assert button.layout.width == "auto"  # not the 148 px that cuts "Stop after ..."
            assert button.layout.min_width == "fit-content"
        for row in (view.bar_row, view.button_row):
            assert row.layout.flex_flow == "row wrap"
            assert row.layout.min_width == "0"
        assert view.root.layout.width == "100%" and view.root.layout.min_width == "0"
        # The bar gives way: it starts at 300 px but may shrink, the headline moves under it.
        assert view.bar.layout.flex == "0 1 300px" and view.bar.layout.width == "auto"
        assert view.headline.layout.min_width == "0"
        for part in (view.title, view.times, view.metrics, view.curve, view.message):
            # auto, not 100 %: the widget's margin would come on top and overflow the area
            assert part.layout.width == "auto" and part.layout.min_width == "0"
            assert part.layout.max_width == "100%"
    finally:
        view.close()
