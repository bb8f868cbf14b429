"""Tests for ktrdr_lib.strategy.discovery: resolving names and paths, and listing."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import msgspec
import pytest

from ktrdr_lib.errors import ConfigError, StrategyNotFoundError
from ktrdr_lib.paths import SHIPPED_STRATEGIES_DIR
from ktrdr_lib.schemas.strategies import StrategyListing
from ktrdr_lib.strategy.discovery import (
    list_strategies,
    resolve_strategy,
    resolve_strategy_name,
)

FIXTURES = Path(__file__).parent / "fixtures" / "strategies"
SHIPPED = SHIPPED_STRATEGIES_DIR / "rsi_mean_reversion.yaml"


def _use_dirs(monkeypatch: pytest.MonkeyPatch, *dirs: Path) -> None:
    monkeypatch.setenv("KTRDR_STRATEGIES_DIR", os.pathsep.join(str(d) for d in dirs))


def _copy_shipped(directory: Path, name: str, *, suffix: str = ".yaml") -> Path:
    """A valid strategy file named ``name`` in ``directory`` (a shipped one, renamed)."""
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / f"{name}{suffix}"
    text = SHIPPED.read_text(encoding="utf-8").replace("name: rsi_mean_reversion", f"name: {name}")
    target.write_text(text, encoding="utf-8")
    return target


# -- resolve_strategy_name ----------------------------------------------------------------------


def test_shipped_name_resolves_without_configuration() -> None:
    assert resolve_strategy_name("rsi_mean_reversion") == SHIPPED


def test_user_directory_comes_before_shipped_examples(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mine = _copy_shipped(tmp_path / "mine", "rsi_mean_reversion")
    _use_dirs(monkeypatch, tmp_path / "mine")
    assert resolve_strategy_name("rsi_mean_reversion") == mine


def test_directories_are_searched_in_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _copy_shipped(tmp_path / "second", "shared")
    first = _copy_shipped(tmp_path / "first", "shared", suffix=".yml")
    _use_dirs(monkeypatch, tmp_path / "missing_dir", tmp_path / "first", tmp_path / "second")
    assert resolve_strategy_name("shared") == first


def test_yaml_is_preferred_to_yml_in_one_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _copy_shipped(tmp_path, "twin", suffix=".yml")
    yaml_file = _copy_shipped(tmp_path, "twin")
    _use_dirs(monkeypatch, tmp_path)
    assert resolve_strategy_name("twin") == yaml_file


def test_unknown_name_lists_every_place_searched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _use_dirs(monkeypatch, tmp_path)
    with pytest.raises(StrategyNotFoundError) as caught:
        resolve_strategy_name("no_such_strategy")
    error = caught.value
    assert str(error).startswith("Strategy file not found")
    expected = [
        str(tmp_path / "no_such_strategy.yaml"),
        str(tmp_path / "no_such_strategy.yml"),
        str(SHIPPED_STRATEGIES_DIR / "no_such_strategy.yaml"),
        str(SHIPPED_STRATEGIES_DIR / "no_such_strategy.yml"),
    ]
    assert error.searched == expected
    assert all(place in str(error) for place in expected)


@pytest.mark.parametrize(
    "name",
    ["..", "../etc/passwd", "/etc/passwd", "a/b", "a\\b", "", ".hidden", "name.yaml", "x\n"],
)
def test_names_that_are_paths_are_refused(name: str) -> None:
    with pytest.raises(ConfigError, match="not valid"):
        resolve_strategy_name(name)


def test_a_name_cannot_reach_a_file_outside_the_directories(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    inside = tmp_path / "strategies"
    inside.mkdir()
    _copy_shipped(tmp_path, "outside")
    _use_dirs(monkeypatch, inside)
    with pytest.raises(ConfigError):
        resolve_strategy_name("../outside")


# -- resolve_strategy ---------------------------------------------------------------------------


def test_resolve_strategy_takes_names(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    mine = _copy_shipped(tmp_path, "mine")
    _use_dirs(monkeypatch, tmp_path)
    assert resolve_strategy("mine") == mine


def test_resolve_strategy_takes_explicit_paths(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere = _copy_shipped(tmp_path / "elsewhere", "anything")
    assert resolve_strategy(elsewhere) == elsewhere
    assert resolve_strategy(str(elsewhere)) == elsewhere
    monkeypatch.chdir(tmp_path / "elsewhere")
    assert resolve_strategy("anything.yaml") == Path("anything.yaml")


def test_missing_explicit_path_is_not_searched_for(tmp_path: Path) -> None:
    missing = tmp_path / "gone.yaml"
    with pytest.raises(StrategyNotFoundError) as caught:
        resolve_strategy(str(missing))
    assert caught.value.searched == [str(missing)]
    with pytest.raises(StrategyNotFoundError):
        resolve_strategy(tmp_path / "gone_too")


def test_directory_given_as_a_path_is_not_a_strategy(tmp_path: Path) -> None:
    with pytest.raises(StrategyNotFoundError):
        resolve_strategy(str(tmp_path) + os.sep)


def test_invalid_bare_name_is_a_config_error() -> None:
    with pytest.raises(ConfigError):
        resolve_strategy("..")


# -- list_strategies ----------------------------------------------------------------------------


def test_shipped_examples_are_listed_valid() -> None:
    listings = {item.name: item for item in list_strategies()}
    assert {"rsi_mean_reversion", "macd_trend", "multi_timeframe_momentum"} <= set(listings)
    momentum = listings["multi_timeframe_momentum"]
    assert momentum.valid
    assert momentum.problems == []
    assert momentum.symbols == ["AAPL"]
    assert momentum.timeframes == ["1d", "1w"]
    assert momentum.description
    assert Path(momentum.path).parent == SHIPPED_STRATEGIES_DIR


def test_broken_file_is_listed_with_its_problems(monkeypatch: pytest.MonkeyPatch) -> None:
    _use_dirs(monkeypatch, FIXTURES)
    listings = {item.name: item for item in list_strategies()}
    broken = listings["broken_strategy"]
    assert not broken.valid
    assert len(broken.problems) == 3
    assert any("indicators[0].period" in problem for problem in broken.problems)
    assert all("broken_strategy.yaml:" in problem for problem in broken.problems)
    assert listings["macd_trend"].valid  # the rest of the listing is unaffected


def test_unparseable_and_unreadable_files_do_not_stop_the_listing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "garbage.yaml").write_text("name: [unclosed\n", encoding="utf-8")
    (tmp_path / "binary.yml").write_bytes(b"\xff\xfe\x00name")
    (tmp_path / "folder.yaml").mkdir()
    (tmp_path / "notes.txt").write_text("not a strategy", encoding="utf-8")
    _use_dirs(monkeypatch, tmp_path)
    listings = {item.name: item for item in list_strategies()}
    assert not listings["garbage"].valid
    assert "invalid YAML" in listings["garbage"].problems[0]
    assert not listings["binary"].valid
    assert "folder" not in listings
    assert "notes" not in listings


def test_earlier_directories_shadow_later_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shutil.copy(FIXTURES / "broken_strategy.yaml", tmp_path / "macd_trend.yaml")
    _use_dirs(monkeypatch, tmp_path)
    listings = [item for item in list_strategies() if item.name == "macd_trend"]
    assert len(listings) == 1
    assert listings[0].path == str(tmp_path / "macd_trend.yaml")
    assert not listings[0].valid


def test_listing_is_sorted_and_skips_unresolvable_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _copy_shipped(tmp_path, "zeta")
    _copy_shipped(tmp_path, "alpha")
    shutil.copy(SHIPPED, tmp_path / "has space.yaml")
    _use_dirs(monkeypatch, tmp_path)
    names = [item.name for item in list_strategies()]
    assert names == sorted(names)
    assert {"alpha", "zeta"} <= set(names)
    assert "has space" not in names
    assert all(resolve_strategy_name(name) for name in names)


def test_listing_encodes_as_json() -> None:
    listings = list_strategies()
    decoded = msgspec.json.decode(msgspec.json.encode(listings), type=list[StrategyListing])
    assert decoded == listings
