"""``ktrdr strategies validate`` shows notices with file:line; ``ktrdr strategies migrate``."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from ktrdr_lib.cli import main
from ktrdr_lib.cli.remote import ApiBackend
from ktrdr_lib.errors import ConfigError
from ktrdr_lib.http.client import ApiClient
from ktrdr_lib.strategy.loader import check_strategy, load_strategy

V2_EARLY = """\
name: cli_v2
scope: universal
training_data:
  symbols: {mode: single_symbol, list: [AAPL]}
  timeframes: {mode: single, timeframe: 1d}
indicators:
  - {name: sma, period: 10}
fuzzy_sets:
  sma:
    near: [0.95, 1.0, 1.05]
model:
  training: {epochs: 2}
"""


@pytest.fixture
def v2_file(tmp_path: Path) -> Path:
    path = tmp_path / "cli_v2.yaml"
    path.write_text(V2_EARLY, encoding="utf-8")
    return path


def test_validate_prints_the_notices_with_file_and_line(
    v2_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["strategies", "validate", str(v2_file)]) == 0
    out = capsys.readouterr().out.splitlines()
    notices = check_strategy(V2_EARLY).notices
    assert len(out) == len(notices) + 1
    assert any(line.startswith(f"{v2_file}:2: notice: scope: ") for line in out)
    assert any(line.startswith(f"{v2_file}:9: notice: fuzzy_sets.sma: ") for line in out)
    assert out[-1] == f"{v2_file}: OK (v2 layout, {len(notices)} notices)"


def test_validate_fails_on_problems_and_still_shows_notices(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(V2_EARLY.replace("period: 10", "period: 1"), encoding="utf-8")
    assert main(["strategies", "validate", str(bad)]) == 1
    out = capsys.readouterr().out
    assert f"{bad}:7: indicators[0].period: must be a whole number in [2" in out
    assert f"{bad}:2: notice: scope:" in out
    assert "INVALID (v2 layout, 1 problem, " in out


def test_migrate_prints_v3_that_loads_to_the_same_strategy(
    v2_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["strategies", "migrate", str(v2_file)]) == 0
    printed = capsys.readouterr().out
    header = " ".join(line.lstrip("# ") for line in printed.splitlines() if line.startswith("#"))
    assert header.startswith(f"cli_v2: migrated from the v2 layout ({v2_file}) to v3")
    migrated = load_strategy(printed)
    original = load_strategy(v2_file)
    assert migrated.layout == "v3"
    assert migrated.fuzzy_sets == original.fuzzy_sets
    assert migrated.nn_inputs == original.nn_inputs
    assert migrated.model == original.model


def test_migrate_reports_problems_and_unreadable_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nindicators: []\n", encoding="utf-8")
    assert main(["strategies", "migrate", str(bad)]) == 1
    assert "indicators" in capsys.readouterr().err
    assert main(["strategies", "migrate", str(tmp_path / "none.yaml")]) == 1
    assert "cannot read" in capsys.readouterr().err


def test_migration_is_refused_over_the_api() -> None:
    transport = httpx.MockTransport(lambda request: httpx.Response(500))
    backend = ApiBackend(ApiClient("http://api.test", transport=transport))
    with pytest.raises(ConfigError, match="without --api"):
        backend.migrate_strategy(V2_EARLY, file="cli_v2.yaml")


def test_validate_with_data_reports_each_inputs_activity(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "cli_dead.yaml"
    path.write_text(
        V2_EARLY.replace(
            "    near: [0.95, 1.0, 1.05]\n",
            "    near: [0.95, 1.0, 1.05]\n    far_above: [3.0, 3.5, 4.0]\n",
        ),
        encoding="utf-8",
    )
    assert main(["strategies", "validate", str(path), "--data"]) == 0
    out = capsys.readouterr().out.splitlines()
    rows = {line.split()[0]: line for line in out if line.startswith("  ")}
    assert set(rows) == {"1d_sma_near", "1d_sma_far_above"}
    assert rows["1d_sma_far_above"].split()[1:] == ["0.0", "%", "dead", "constant"]
    share = float(rows["1d_sma_near"].split()[1])
    assert 50.0 < share <= 100.0  # close / SMA(10) sits near 1 on most days
    assert out[-1] == f"{path}: data OK (1 dead, 1 constant input(s); training still runs)"


def test_validate_with_data_fails_on_missing_data_and_names_it(
    v2_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["strategies", "validate", str(v2_file), "--data", "--symbols", "NOPE"]) == 1
    last = capsys.readouterr().out.splitlines()[-1]
    assert last.startswith(f"{v2_file}: data: no 1d data for NOPE")
    assert "NOPE_1d{.csv,.csv.gz,.parquet}" in last
