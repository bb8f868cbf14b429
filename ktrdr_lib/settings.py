"""Every ``KTRDR_*`` environment variable, declared once, and the typed readers for them.

Each :class:`Setting` says its name, kind, default, valid range or choices, which part of
ktrdr honours it and what it means; ``docs/settings.md`` is generated from :data:`SETTINGS`
(``scripts/gen_settings_reference.py``), and a test fails when code names a ``KTRDR_*``
variable this module does not declare, or when a declared one is read nowhere.

The readers read the environment when they are called, never at import (tests and notebooks
change it), from ``env`` when one is given (else ``os.environ``). An unset or empty variable
gives the default; a bad value is a :class:`~ktrdr_lib.errors.ConfigError` naming the
variable, the value and what is accepted::

    KTRDR_MAX_PENDING='lots' is not a number of runs >= 1; unset it for the default (100)

Reading a name that is not declared is a ``KeyError`` (a mistake in the code, not the
user's).

Who reads what (``read_by``): ``library`` is any process using ktrdr_lib (notebooks, the CLI,
both servers), ``api`` the API server (``ktrdr serve api``), ``host`` the training host
(``ktrdr serve host``), ``cli`` the ``ktrdr`` command.

Example:
    >>> read_int("KTRDR_MAX_PENDING", env={"KTRDR_MAX_PENDING": "8"})
    8
    >>> read_int("KTRDR_MAX_PENDING", env={})
    100
    >>> read_int("KTRDR_MAX_PENDING", env={"KTRDR_MAX_PENDING": "lots"})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ktrdr_lib.errors.ConfigError: KTRDR_MAX_PENDING='lots' is not a number of runs >= 1; ...
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ktrdr_lib.errors import ConfigError

__all__ = [
    "SETTINGS",
    "Setting",
    "read_choice",
    "read_float",
    "read_int",
    "read_list",
    "read_path",
    "read_paths",
    "read_raw",
    "read_str",
    "setting",
]

Kind = Literal["str", "choice", "int", "float", "path", "paths", "list"]
Reader = Literal["library", "api", "host", "cli"]


@dataclass(frozen=True, kw_only=True)
class Setting:
    """One environment variable.

    Attributes:
        name: the variable, ``KTRDR_...``.
        kind: ``str``; ``choice`` (one of ``choices``, any case); ``int``; ``float``;
            ``path`` (``~`` expanded); ``paths`` (``os.pathsep``-separated paths); ``list``
            (comma-separated, blanks dropped; each one of ``choices`` when there are some).
        default: the value when unset or empty (``None``: none; ``default_text`` then says
            what happens instead).
        description: what it means, one line.
        read_by: who honours it (see the module).
        ge: numbers: the least accepted value.
        gt: numbers: every value must be greater than this.
        unit: numbers: what they count (``runs``, ``seconds``), used in messages.
        choices: ``choice`` and ``list``: the accepted words.
        default_text: the default in words, when ``default`` cannot say it.
        internal: set by ktrdr itself for a child process, not by users.
    """

    name: str
    kind: Kind
    default: str | int | float | None
    description: str
    read_by: tuple[Reader, ...]
    ge: float | None = None
    gt: float | None = None
    unit: str | None = None
    choices: tuple[str, ...] = ()
    default_text: str | None = None
    internal: bool = False

    @property
    def accepts(self) -> str:
        """What a value must be, in words (``a whole number >= 1``)."""
        if self.kind == "choice":
            return f"one of {', '.join(self.choices)}"
        if self.kind == "list":
            if self.choices:
                return f"a comma-separated list of {', '.join(self.choices)}"
            return "a comma-separated list"
        if self.kind not in ("int", "float"):
            return {"path": "a path", "paths": "paths separated by os.pathsep (: or ;)"}.get(
                self.kind, "text"
            )
        if self.unit:
            return f"a number of {self.unit}{self._bound()}"
        number = "whole number" if self.kind == "int" else "number"
        if self.gt == 0 and self.ge is None:
            return f"a positive {number}"
        return f"a {number}{self._bound()}"

    @property
    def range_text(self) -> str:
        """The valid range (``>= 1``, ``> 0``), or the choices, or ``""``."""
        if self.kind in ("choice", "list") and self.choices:
            return ", ".join(self.choices)
        return self._bound().strip()

    @property
    def default_words(self) -> str:
        """The default as the docs and messages show it."""
        if self.default_text is not None:
            return self.default_text
        if self.default is None or self.default == "":
            return "none"
        if isinstance(self.default, float):
            return f"{self.default:g}"
        if isinstance(self.default, int) and self.default >= 10_000:
            return f"{self.default:_}"  # as it may be written: 20_000_000
        return str(self.default)

    def _bound(self) -> str:
        if self.ge is not None:
            return f" >= {self.ge:g}"
        if self.gt is not None:
            return f" > {self.gt:g}"
        return ""

    def refuse(self, raw: str) -> ConfigError:
        """The error for a value this setting does not accept."""
        return ConfigError(
            f"{self.name}={raw!r} is not {self.accepts}; unset it for the default "
            f"({self.default_words})"
        )


_SERVERS: tuple[Reader, ...] = ("api", "host")


def _declare(*settings: Setting) -> dict[str, Setting]:
    table: dict[str, Setting] = {}
    for item in settings:
        if item.name in table:
            raise ValueError(f"{item.name} is declared twice")
        table[item.name] = item
    return table


SETTINGS: Mapping[str, Setting] = _declare(
    # -- where things live ---------------------------------------------------------------------
    Setting(
        name="KTRDR_HOME",
        kind="path",
        default="~/.ktrdr",
        description="state directory: the operations store (operations.db), models/, "
        "checkpoints/ and runs/",
        read_by=("library",),
    ),
    Setting(
        name="KTRDR_DATA_DIR",
        kind="path",
        default=None,
        default_text="the bundled sample data",
        description="the folder of OHLCV files training and inference read",
        read_by=("library",),
    ),
    Setting(
        name="KTRDR_STRATEGIES_DIR",
        kind="paths",
        default=None,
        default_text="none (the shipped examples only)",
        description="folders searched for strategies by name, before the shipped examples",
        read_by=("library",),
    ),
    # -- training ------------------------------------------------------------------------------
    Setting(
        name="KTRDR_LOGGERS",
        kind="list",
        default=None,
        choices=("csv", "tensorboard", "mlflow"),
        description="experiment loggers for runs that do not choose their own",
        read_by=("library",),
    ),
    Setting(
        name="KTRDR_CHECKPOINT_EVERY",
        kind="int",
        default=1,
        ge=0,
        unit="epochs",
        description="write a resumable checkpoint every N epochs (0: no checkpoints)",
        read_by=("library",),
    ),
    Setting(
        name="KTRDR_CHECKPOINT_KEEP_DAYS",
        kind="float",
        default=0.0,
        ge=0,
        unit="days",
        description="days a completed run's checkpoints are kept (0: removed when it completes)",
        read_by=("library",),
    ),
    Setting(
        name="KTRDR_PROGRESS",
        kind="choice",
        default="auto",
        choices=("auto", "widget", "html", "text", "off"),
        description="how progress is shown (notebook widget, html, text or off) where the "
        "code leaves it at auto, which detects the frontend",
        read_by=("library",),
    ),
    # -- what one run may ask for (ktrdr_lib.pipeline.limits) -----------------------------------
    Setting(
        name="KTRDR_MAX_PARAMETERS",
        kind="int",
        default=20_000_000,
        gt=0,
        description="most trainable parameters a run's network (or a loaded model) may have",
        read_by=("library",),
    ),
    Setting(
        name="KTRDR_MAX_EPOCHS",
        kind="int",
        default=10_000,
        gt=0,
        description="most epochs a run may ask for",
        read_by=("library",),
    ),
    Setting(
        name="KTRDR_MAX_BATCH_SIZE",
        kind="int",
        default=65_536,
        gt=0,
        description="largest batch size a run may ask for",
        read_by=("library",),
    ),
    Setting(
        name="KTRDR_MAX_LOOKBACK",
        kind="int",
        default=500,
        gt=0,
        description="most lookback periods (lags) a run may ask for",
        read_by=("library",),
    ),
    Setting(
        name="KTRDR_MAX_SEQUENCE",
        kind="int",
        default=2_000,
        gt=0,
        description="longest LSTM/GRU window a run may ask for",
        read_by=("library",),
    ),
    Setting(
        name="KTRDR_MAX_SYMBOLS",
        kind="int",
        default=50,
        gt=0,
        description="most symbols one run may train on",
        read_by=("library",),
    ),
    Setting(
        name="KTRDR_MAX_TIMEFRAMES",
        kind="int",
        default=8,
        gt=0,
        description="most timeframes one run may use",
        read_by=("library",),
    ),
    Setting(
        name="KTRDR_MAX_OVERRIDES",
        kind="int",
        default=200,
        gt=0,
        description="most override keys one request may carry",
        read_by=("library",),
    ),
    Setting(
        name="KTRDR_MAX_RUN_HOURS",
        kind="float",
        default=72.0,
        gt=0,
        description="a run's wall-time cap in hours; past it the run stops after its epoch",
        read_by=("library",),
    ),
    Setting(
        name="KTRDR_MAX_PENDING",
        kind="int",
        default=100,
        ge=1,
        unit="runs",
        description="runs that may wait for a free slot; one more is refused (429 over HTTP)",
        read_by=("library",),
    ),
    # -- finished operations -------------------------------------------------------------------
    Setting(
        name="KTRDR_KEEP_OPERATIONS_DAYS",
        kind="int",
        default=90,
        ge=1,
        description="days a finished operation is kept before it is forgotten (models stay)",
        read_by=("api", "cli"),
    ),
    Setting(
        name="KTRDR_KEEP_OPERATIONS",
        kind="int",
        default=10_000,
        ge=1,
        description="most finished operations kept (the newest)",
        read_by=("api", "cli"),
    ),
    # -- remote training -----------------------------------------------------------------------
    Setting(
        name="KTRDR_HOST_URL",
        kind="str",
        default=None,
        default_text="none (mode host is off)",
        description="the training host that mode host runs train on",
        read_by=("library",),
    ),
    Setting(
        name="KTRDR_HOST_TOKEN",
        kind="str",
        default=None,
        default_text="none (the host will not start without one, unless --insecure-no-token)",
        description="the training host's bearer token (the host's own, and what clients send); "
        "at least 16 characters",
        read_by=("library", "host"),
    ),
    Setting(
        name="KTRDR_HOST_RETRY_BUDGET_S",
        kind="float",
        default=30.0,
        ge=0,
        unit="seconds",
        description="how long a training host may go unanswered before its runs fail",
        read_by=("library",),
    ),
    Setting(
        name="KTRDR_RAY_ADDRESS",
        kind="str",
        default=None,
        default_text="none (mode ray and sweeps are off)",
        description="the Ray cluster mode ray runs and sweeps train on (ray://head:10001, "
        "head:6379, auto, or local for a Ray in this process)",
        read_by=("library", "api", "cli"),
    ),
    Setting(
        name="KTRDR_WORKER_AUTHKEY",
        kind="str",
        default=None,
        description="the key a multi-device training command connects back with (set by "
        "ktrdr for the child it starts)",
        read_by=("library",),
        internal=True,
    ),
    # -- the API and its clients ---------------------------------------------------------------
    Setting(
        name="KTRDR_API_URL",
        kind="str",
        default=None,
        default_text="none (commands work in this process)",
        description="the API the CLI drives unless --local (like --api URL)",
        read_by=("cli", "library"),
    ),
    Setting(
        name="KTRDR_API_TOKEN",
        kind="str",
        default=None,
        default_text="none (no authentication; loopback only)",
        description="the API's bearer token (the server's own, and what the CLI and ApiClient "
        "send); at least 16 characters",
        read_by=("api", "cli", "library"),
    ),
    Setting(
        name="KTRDR_LOCAL_RUNNER",
        kind="choice",
        default="process",
        choices=("process", "thread"),
        description="where the API (ktrdr serve api, and create_app() when not told) trains "
        "local runs: a child process each, or inside the server process (like --local-runner)",
        read_by=("api",),
    ),
    Setting(
        name="KTRDR_API_MAX_BODY",
        kind="int",
        default=1_000_000,
        ge=1,
        description="largest request body the API accepts, in bytes (413 beyond)",
        read_by=("api",),
    ),
    Setting(
        name="KTRDR_HOST_MAX_BODY",
        kind="int",
        default=1_000_000,
        ge=1,
        description="largest request body the training host accepts, in bytes (413 beyond)",
        read_by=("host",),
    ),
    # -- both servers ----------------------------------------------------------------------------
    Setting(
        name="KTRDR_MAX_JSON_DEPTH",
        kind="int",
        default=32,
        ge=1,
        description="deepest nesting of a JSON request body (400 beyond)",
        read_by=_SERVERS,
    ),
    Setting(
        name="KTRDR_MAX_STRATEGY_BYTES",
        kind="int",
        default=256 * 1024,
        ge=1,
        description="longest strategy text a request may send, in bytes (400 beyond)",
        read_by=_SERVERS,
    ),
    Setting(
        name="KTRDR_ALLOWED_HOSTS",
        kind="list",
        default=None,
        description="without a token: host names answered besides this machine's (`*`: any)",
        read_by=_SERVERS,
    ),
    Setting(
        name="KTRDR_ALLOWED_ORIGINS",
        kind="list",
        default=None,
        description="without a token: origins (https://dash.example:8443) whose pages are answered",
        read_by=_SERVERS,
    ),
    Setting(
        name="KTRDR_SERVER_MAX_CONNECTIONS",
        kind="int",
        default=100,
        ge=1,
        description="connections a server holds at once (503 beyond)",
        read_by=_SERVERS,
    ),
    Setting(
        name="KTRDR_SERVER_KEEP_ALIVE_S",
        kind="int",
        default=5,
        ge=1,
        description="seconds an idle connection is kept between requests",
        read_by=_SERVERS,
    ),
    Setting(
        name="KTRDR_SERVER_REQUEST_TIMEOUT_S",
        kind="int",
        default=30,
        ge=1,
        description="seconds a request has to arrive whole (head and body) before its "
        "connection is closed",
        read_by=_SERVERS,
    ),
    Setting(
        name="KTRDR_SERVER_MAX_HEADER_BYTES",
        kind="int",
        default=16 * 1024,
        ge=1,
        description="longest request head, in bytes (400 beyond)",
        read_by=_SERVERS,
    ),
)
"""Every setting, by name, in the order the docs list them."""


def setting(name: str) -> Setting:
    """The declared setting ``name``.

    Raises:
        KeyError: ``name`` is not declared here (declare it in :data:`SETTINGS`).
    """
    try:
        return SETTINGS[name]
    except KeyError:
        raise KeyError(f"{name} is not declared in ktrdr_lib.settings.SETTINGS") from None


def _checked(name: str, *kinds: Kind) -> Setting:
    item = setting(name)
    if item.kind not in kinds:
        raise TypeError(f"{name} is declared as {item.kind}; read it with read_{item.kind}()")
    return item


def read_raw(name: str, env: Mapping[str, str] | None = None) -> str | None:
    """The variable's text exactly as set (``""`` too), or ``None`` when it is unset.

    For values whose emptiness means something (a token set but empty is an error, not
    "no token").
    """
    setting(name)
    return (os.environ if env is None else env).get(name)


def read_str(name: str, env: Mapping[str, str] | None = None) -> str | None:
    """A ``str`` setting's text, or its default when unset or empty."""
    item = _checked(name, "str")
    value = read_raw(name, env)
    return value if value else (None if item.default is None else str(item.default))


def read_choice(name: str, env: Mapping[str, str] | None = None) -> str:
    """A ``choice`` setting, lower-cased, or its default when unset or empty.

    Raises:
        ConfigError: the value is not one of the choices.
    """
    item = _checked(name, "choice")
    raw = read_raw(name, env) or ""
    value = raw.strip().lower()
    if not value:
        return str(item.default)
    if value not in item.choices:
        raise item.refuse(raw)
    return value


def _number(name: str, whole: bool, env: Mapping[str, str] | None) -> float | None:
    """The value of a number setting (``None`` when unset), checked against its range."""
    item = setting(name)
    raw = read_raw(name, env) or ""
    text = raw.strip()
    if not text:
        return None
    try:
        value = int(text.replace("_", "")) if whole else float(text)
    except ValueError:
        raise item.refuse(raw) from None
    if (
        not math.isfinite(value)
        or (item.ge is not None and value < item.ge)
        or (item.gt is not None and value <= item.gt)
    ):
        raise item.refuse(raw)
    return value


def read_int(name: str, env: Mapping[str, str] | None = None) -> int:
    """An ``int`` setting, or its default when unset or empty (``1_000`` is accepted).

    Raises:
        ConfigError: not a whole number, or outside the setting's range.
    """
    item = _checked(name, "int")
    value = _number(name, True, env)
    return int(item.default or 0) if value is None else int(value)


def read_float(name: str, env: Mapping[str, str] | None = None) -> float:
    """A ``float`` setting, or its default when unset or empty.

    Raises:
        ConfigError: not a finite number, or outside the setting's range.
    """
    item = _checked(name, "float")
    value = _number(name, False, env)
    return float(item.default or 0.0) if value is None else float(value)


def read_path(name: str, env: Mapping[str, str] | None = None) -> Path | None:
    """A ``path`` setting with ``~`` expanded, else its default (``None`` when it has none)."""
    item = _checked(name, "path")
    value = read_raw(name, env) or (None if item.default is None else str(item.default))
    return Path(value).expanduser() if value else None


def read_paths(name: str, env: Mapping[str, str] | None = None) -> list[Path]:
    """A ``paths`` setting: the ``os.pathsep``-separated paths, ``~`` expanded, blanks
    dropped (``[]`` when unset)."""
    _checked(name, "paths")
    value = read_raw(name, env) or ""
    return [Path(part).expanduser() for part in value.split(os.pathsep) if part]


def read_list(name: str, env: Mapping[str, str] | None = None) -> list[str]:
    """A ``list`` setting: the comma-separated entries, stripped, blanks dropped (``[]``
    when unset); with choices, each entry lower-cased and checked.

    Raises:
        ConfigError: an entry that is not one of the setting's choices.
    """
    item = _checked(name, "list")
    raw = read_raw(name, env) or ""
    entries = [part.strip() for part in raw.split(",") if part.strip()]
    if item.choices:
        entries = [entry.lower() for entry in entries]
        if any(entry not in item.choices for entry in entries):
            raise item.refuse(raw)
    return entries
