"""Every ``KTRDR_*`` variable is declared once in :mod:`ktrdr_lib.settings` and read through it.

The scans look at the code itself: a name the code (or the docs) mentions must be declared,
nothing outside the settings module reads a ``KTRDR_*`` variable from the environment, and
every declared variable is used somewhere.
"""

from __future__ import annotations

import ast
import inspect
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from ktrdr_lib import settings
from ktrdr_lib.errors import ConfigError
from ktrdr_lib.settings import (
    SETTINGS,
    read_choice,
    read_float,
    read_int,
    read_list,
    read_path,
    read_paths,
    read_raw,
    read_str,
)

ROOT = Path(__file__).resolve().parents[1]
CODE = ("ktrdr_lib", "api", "host", "web", "scripts", "bench")
RUNTIME = ("ktrdr_lib", "api", "host", "web")
SETTINGS_FILE = ROOT / "ktrdr_lib" / "settings.py"
# A KTRDR_ name, not part of a longer identifier (``_KTRDR_OPTIMIZERS`` is a Python constant)
# and not a family written with a star (``KTRDR_MAX_*``, ``KTRDR_SERVER_*``).
_NAME = re.compile(r"(?<![A-Za-z0-9_])KTRDR_[A-Z0-9_]*[A-Z0-9](?![A-Z0-9_]*\*)")


def _files(packages: tuple[str, ...], suffix: str = ".py") -> Iterator[Path]:
    for package in packages:
        yield from sorted((ROOT / package).rglob(f"*{suffix}"))


def mentioned_names(text: str) -> set[str]:
    """The ``KTRDR_*`` variables a text names."""
    return set(_NAME.findall(text))


def _is_environ(node: ast.expr) -> bool:
    """``os.environ``, or a mapping named like one (``environ``, ``env``)."""
    if isinstance(node, ast.Attribute):
        return node.attr == "environ"
    return isinstance(node, ast.Name) and node.id in ("environ", "env")


def direct_reads(source: str) -> list[str]:
    """Environment reads in ``source`` that may read a ``KTRDR_*`` variable: ``os.environ
    .get(X)``, ``os.environ[X]``, ``os.getenv(X)`` where X is a ``KTRDR_`` literal or not a
    literal at all (a constant or a variable could hold one)."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        key: ast.expr | None = None
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.args:
            func = node.func
            if (func.attr == "get" and _is_environ(func.value)) or func.attr == "getenv":
                key = node.args[0]
        elif isinstance(node, ast.Subscript) and _is_environ(node.value):
            key = node.slice
        if key is None:
            continue
        literal = key.value if isinstance(key, ast.Constant) else None
        if not isinstance(literal, str) or literal.startswith("KTRDR_"):
            found.append(f"line {node.lineno}: {ast.unparse(node)}")
    return found


def string_constants(source: str) -> set[str]:
    """Every whole string literal in ``source`` (not the text around a name in a message)."""
    return {
        node.value
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
    }


# -- the scans, checked on made-up code first (they must be able to fail) ----------------------


def test_the_scans_see_what_they_look_for() -> None:
    code = (
        "import os\n"
        "A = os.environ.get('KTRDR_NOPE')\n"
        "B = os.environ[NAME]\n"
        "C = os.getenv('KTRDR_OTHER', '')\n"
        "D = env.get('KTRDR_MAPPED')\n"
        "E = os.environ.get('HOME')\n"
        "_KTRDR_OPTIMIZERS = ('adam',)\n"
        "# see KTRDR_MAX_* and KTRDR_IN_A_COMMENT\n"
    )
    assert len(direct_reads(code)) == 4  # all but HOME
    assert mentioned_names(code) == {
        "KTRDR_NOPE",
        "KTRDR_OTHER",
        "KTRDR_MAPPED",
        "KTRDR_IN_A_COMMENT",
    }
    assert "KTRDR_NOPE" in string_constants(code)
    assert "KTRDR_IN_A_COMMENT" not in string_constants(code)


def test_every_variable_the_code_names_is_declared() -> None:
    undeclared = {
        f"{path.relative_to(ROOT)}: {name}"
        for path in _files(CODE)
        for name in mentioned_names(path.read_text(encoding="utf-8"))
        if name not in SETTINGS
    }
    assert undeclared == set(), "declare these in ktrdr_lib/settings.py"


def test_every_variable_the_docs_name_is_declared() -> None:
    pages = [ROOT / "README.md", *_files(("docs",), ".md")]
    undeclared = {
        f"{path.relative_to(ROOT)}: {name}"
        for path in pages
        for name in mentioned_names(path.read_text(encoding="utf-8"))
        if name not in SETTINGS
    }
    assert undeclared == set()


def test_only_the_settings_module_reads_ktrdr_variables() -> None:
    reads = {
        f"{path.relative_to(ROOT)} {read}"
        for path in _files(RUNTIME)
        if path != SETTINGS_FILE
        for read in direct_reads(path.read_text(encoding="utf-8"))
    }
    assert reads == set(), "read KTRDR_* variables with ktrdr_lib.settings.read_*"


def test_every_declared_variable_is_used() -> None:
    used: set[str] = set()
    for path in _files(RUNTIME):
        if path != SETTINGS_FILE:
            used |= string_constants(path.read_text(encoding="utf-8"))
    assert sorted(set(SETTINGS) - used) == [], "declared but read nowhere"


def test_the_settings_module_loads_no_adapter() -> None:
    code = (
        "import sys\n"
        "import ktrdr_lib.settings\n"
        "heavy = ('litestar', 'ipywidgets', 'ktrdr_lib.cli', 'torch', 'httpx')\n"
        "print(','.join(m for m in heavy if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


# -- the declarations ---------------------------------------------------------------------------


def test_each_declaration_is_complete() -> None:
    for name, item in SETTINGS.items():
        assert name == item.name and name.startswith("KTRDR_")
        assert item.description and "\n" not in item.description, name
        assert item.read_by and set(item.read_by) <= {"library", "api", "host", "cli"}, name
        if item.kind == "choice":
            assert item.default in item.choices, name
        if item.kind in ("int", "float"):
            assert isinstance(item.default, int | float), name
            # the default is a value the reader accepts
            assert item.ge is None or item.default >= item.ge, name
            assert item.gt is None or item.default > item.gt, name


def test_choices_agree_with_the_code_that_uses_them() -> None:
    from api.app import LOCAL_RUNNERS
    from ktrdr_lib.training.loggers import LOGGER_KINDS
    from ktrdr_lib.views.display import MODES

    assert SETTINGS["KTRDR_PROGRESS"].choices == MODES
    assert SETTINGS["KTRDR_LOGGERS"].choices == tuple(LOGGER_KINDS)
    assert set(SETTINGS["KTRDR_LOCAL_RUNNER"].choices) == set(LOCAL_RUNNERS)


def test_defaults_agree_with_the_classes_that_hold_them() -> None:
    from ktrdr_lib.pipeline.limits import RunLimits
    from ktrdr_lib.runners.host import HostTrainingRunner
    from web.app import DEFAULT_MAX_BODY
    from web.limits import RequestLimits
    from web.server import ServerLimits

    assert RunLimits.from_env({}) == RunLimits()
    assert RequestLimits.from_env({}) == RequestLimits()
    assert ServerLimits.from_env({}) == ServerLimits()
    assert read_int("KTRDR_API_MAX_BODY", {}) == read_int("KTRDR_HOST_MAX_BODY", {})
    assert read_int("KTRDR_API_MAX_BODY", {}) == DEFAULT_MAX_BODY
    budget = inspect.signature(HostTrainingRunner).parameters["retry_budget_s"].default
    assert read_float("KTRDR_HOST_RETRY_BUDGET_S", {}) == budget


# -- the readers --------------------------------------------------------------------------------


def test_numbers_are_read_when_asked_for(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KTRDR_MAX_PENDING", raising=False)
    assert read_int("KTRDR_MAX_PENDING") == 100
    monkeypatch.setenv("KTRDR_MAX_PENDING", " 1_000 ")
    assert read_int("KTRDR_MAX_PENDING") == 1000
    monkeypatch.setenv("KTRDR_MAX_PENDING", "")
    assert read_int("KTRDR_MAX_PENDING") == 100
    assert read_float("KTRDR_MAX_RUN_HOURS", {"KTRDR_MAX_RUN_HOURS": "0.5"}) == 0.5


@pytest.mark.parametrize(
    ("name", "raw", "accepted"),
    [
        ("KTRDR_MAX_PENDING", "lots", "a number of runs >= 1"),
        ("KTRDR_MAX_PENDING", "0", "a number of runs >= 1"),
        ("KTRDR_MAX_PENDING", "2.5", "a number of runs >= 1"),
        ("KTRDR_MAX_EPOCHS", "-3", "a positive whole number"),
        ("KTRDR_MAX_RUN_HOURS", "inf", "a positive number"),
        ("KTRDR_HOST_RETRY_BUDGET_S", "nan", "a number of seconds >= 0"),
        ("KTRDR_KEEP_OPERATIONS", "0", "a whole number >= 1"),
        ("KTRDR_PROGRESS", "bars", "one of auto, widget, html, text, off"),
        ("KTRDR_LOGGERS", "csv,wandb", "a comma-separated list of csv, tensorboard, mlflow"),
    ],
)
def test_a_bad_value_names_the_variable_the_value_and_what_is_accepted(
    name: str, raw: str, accepted: str
) -> None:
    item = SETTINGS[name]
    read = {
        "int": read_int,
        "float": read_float,
        "choice": read_choice,
        "list": read_list,
    }[item.kind]
    with pytest.raises(ConfigError) as caught:
        read(name, {name: raw})
    assert caught.value.detail == (
        f"{name}={raw!r} is not {accepted}; unset it for the default ({item.default_words})"
    )


def test_text_choices_lists_and_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert read_str("KTRDR_API_URL", {}) is None
    assert read_str("KTRDR_API_URL", {"KTRDR_API_URL": ""}) is None
    assert read_str("KTRDR_API_URL", {"KTRDR_API_URL": "http://x:1"}) == "http://x:1"
    assert read_raw("KTRDR_API_TOKEN", {"KTRDR_API_TOKEN": ""}) == ""  # set but empty stays
    assert read_raw("KTRDR_API_TOKEN", {}) is None
    assert read_choice("KTRDR_PROGRESS", {"KTRDR_PROGRESS": " HTML "}) == "html"
    assert read_choice("KTRDR_LOCAL_RUNNER", {}) == "process"
    assert read_list("KTRDR_LOGGERS", {"KTRDR_LOGGERS": "CSV, ,mlflow"}) == ["csv", "mlflow"]
    assert read_list("KTRDR_ALLOWED_HOSTS", {"KTRDR_ALLOWED_HOSTS": "a.lan, B"}) == ["a.lan", "B"]
    monkeypatch.setenv("HOME", str(tmp_path))
    assert read_path("KTRDR_HOME", {}) == tmp_path / ".ktrdr"
    assert read_path("KTRDR_HOME", {"KTRDR_HOME": "~/state"}) == tmp_path / "state"
    assert read_path("KTRDR_DATA_DIR", {}) is None
    joined = f"~/a{os.pathsep}{os.pathsep}/b"
    assert read_paths("KTRDR_STRATEGIES_DIR", {"KTRDR_STRATEGIES_DIR": joined}) == [
        tmp_path / "a",
        Path("/b"),
    ]


def test_an_undeclared_name_or_the_wrong_reader_is_a_mistake_in_the_code() -> None:
    with pytest.raises(KeyError, match="KTRDR_NOPE is not declared"):
        read_str("KTRDR_NOPE", {})
    with pytest.raises(
        TypeError, match=r"KTRDR_MAX_PENDING is declared as int; read it with read_int"
    ):
        read_str("KTRDR_MAX_PENDING", {})
    assert settings.setting("KTRDR_HOME").kind == "path"
