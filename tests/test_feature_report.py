"""Dead and constant features (decision 9): the share of training rows where a membership is
above 0.01, below 1 % dead; one value on every row constant."""

from __future__ import annotations

import numpy as np
from msgspec import structs

from ktrdr_lib.features.report import feature_report
from ktrdr_lib.schemas.results import DataSummary, FeatureReport
from ktrdr_lib.views.formatting import summary_rows
from tests.builders import make_result, record_of


def test_shares_dead_and_constant_columns() -> None:
    rows = 1000
    alive = np.linspace(0.0, 1.0, rows)
    rare = np.zeros(rows)
    rare[:9] = 0.5  # active on 0.9 % of the rows: dead
    just_alive = np.zeros(rows)
    just_alive[:10] = 0.5  # 1.0 %: alive
    barely_above_zero = np.full(rows, 0.01)  # never above the 0.01 level: dead, and constant
    raw = np.full(rows, 3.0)  # a raw input: no share, but constant
    x = np.column_stack([alive, rare, just_alive, barely_above_zero, raw, alive]).astype(np.float32)
    names = ["a", "b", "c", "d", "raw"]  # the sixth column (a lag) is not reported
    report = feature_report(x, names, fuzzy=[True, True, True, True, False])
    assert report.active_share == {"a": 0.99, "b": 0.009, "c": 0.01, "d": 0.0}
    assert report.dead == ["b", "d"]
    assert report.constant == ["d", "raw"]


def test_no_rows_no_report() -> None:
    assert feature_report(np.empty((0, 2), np.float32), ["a", "b"], fuzzy=[True, True]) == (
        FeatureReport()
    )


def test_the_summary_names_dead_and_constant_inputs() -> None:
    result = make_result("op_1")
    report = FeatureReport(active_share={"1h_bb_low": 0.0}, dead=["1h_bb_low"], constant=["1h_x"])
    result = structs.replace(result, data_summary=DataSummary(feature_report=report))
    rows = dict(summary_rows(record_of(result)))
    assert rows["inputs"] == ("dead (active on < 1 % of training rows): 1h_bb_low · constant: 1h_x")
