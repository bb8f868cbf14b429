"""Which display mode a progress view uses: ``widget``, ``html``, ``text`` or ``off``.

An explicit argument wins; else the ``KTRDR_PROGRESS`` environment variable; else detection.
A kernel cannot know for sure who is on the other end of its sockets, so detection reads the
signals frontends do send: Jupyter frontends that render widgets (JupyterLab, Notebook 7,
VS Code) put a ``cellId`` in every ``execute_request``'s metadata, and kernels started by a
Jupyter server get ``JPY_SESSION_NAME``. nbclient (used by papermill and
``nbconvert --execute``) sends neither, so such a kernel is *headless* and gets text, as does
plain Python or a terminal. Any ``PAPERMILL_*`` variable also counts as headless. Without
ipywidgets, ``auto`` falls back to text and says once which extra installs it.

Example:
    >>> detect_display_mode("auto", environ={}, shell=None)
    'text'
    >>> detect_display_mode("auto", environ={"KTRDR_PROGRESS": "off"})
    'off'
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
import threading
from collections.abc import Mapping
from typing import Any, Literal, TextIO

from ktrdr_lib.errors import ConfigError
from ktrdr_lib.settings import read_choice

__all__ = [
    "MODES",
    "NOTEBOOK_HINT",
    "PROGRESS_ENV_VAR",
    "DisplayMode",
    "current_shell",
    "detect_display_mode",
    "optional_module",
]

log = logging.getLogger(__name__)

DisplayMode = Literal["auto", "widget", "html", "text", "off"]
MODES: tuple[str, ...] = ("auto", "widget", "html", "text", "off")
PROGRESS_ENV_VAR = "KTRDR_PROGRESS"
NOTEBOOK_HINT = (
    "ktrdr: showing text progress because ipywidgets is not installed; "
    "`pip install 'ktrdr_lib[notebook]'` gives the live widget with a Cancel button."
)
_hint_shown = False
_hint_lock = threading.Lock()


def optional_module(name: str) -> Any | None:
    """The module ``name``, or ``None`` when it cannot be imported.

    Args:
        name: a dotted module name, e.g. ``"IPython.display"``.

    Returns:
        The imported module, or ``None`` when it (or one of its imports) is missing.
    """
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


def current_shell() -> Any | None:
    """The running IPython shell, or ``None`` outside IPython (never imports IPython anew).

    Returns:
        ``IPython.get_ipython()`` when IPython is already loaded, else ``None``.
    """
    if "IPython" not in sys.modules:
        return None
    ipython = optional_module("IPython")
    get = getattr(ipython, "get_ipython", None)
    return get() if callable(get) else None


def _is_headless_kernel(shell: Any, environ: Mapping[str, str]) -> bool:
    """Whether a kernel shell is driven by a client that renders no widgets (nbclient)."""
    if any(name.startswith("PAPERMILL_") for name in environ):
        return True
    if environ.get("JPY_SESSION_NAME"):
        return False  # started by a Jupyter server for a notebook session: a frontend
    get_parent = getattr(shell, "get_parent", None)
    parent: Any = get_parent() if callable(get_parent) else getattr(shell, "parent_header", None)
    metadata = parent.get("metadata") if isinstance(parent, Mapping) else None
    return not (isinstance(metadata, Mapping) and metadata.get("cellId"))


def _show_hint(stream: TextIO | None) -> None:
    """Say once per process that the ``notebook`` extra gives the widget."""
    global _hint_shown
    with _hint_lock:
        if _hint_shown:
            return
        _hint_shown = True
    (stream or sys.stderr).write(NOTEBOOK_HINT + "\n")
    log.info(NOTEBOOK_HINT)


def detect_display_mode(
    requested: str = "auto",
    *,
    environ: Mapping[str, str] | None = None,
    shell: Any | None = None,
    hint_stream: TextIO | None = None,
) -> Literal["widget", "html", "text", "off"]:
    """The display mode to use.

    Args:
        requested: ``auto`` or a mode; an explicit mode wins over the environment.
        environ: environment to read (default ``os.environ``); ``KTRDR_PROGRESS`` there
            replaces ``auto``.
        shell: the IPython shell to inspect (default: the running one, if any).
        hint_stream: where the one-time "install the notebook extra" hint goes (stderr).

    Returns:
        ``widget`` for a live notebook frontend with ipywidgets; ``text`` for plain Python,
        a terminal, a headless kernel (papermill, nbclient) or without ipywidgets; or the
        explicit choice.

    Raises:
        ConfigError: an unknown mode, or ``widget`` asked for explicitly without ipywidgets.
    """
    env = os.environ if environ is None else environ
    choice = requested.strip().lower()
    if choice == "auto":
        choice = read_choice(PROGRESS_ENV_VAR, env)
    elif choice not in MODES:
        raise ConfigError(f"display mode {requested!r} is unknown; use one of {', '.join(MODES)}")
    if choice == "widget" and optional_module("ipywidgets") is None:
        raise ConfigError(
            "display mode 'widget' needs ipywidgets: `pip install 'ktrdr_lib[notebook]'`, or "
            "use display 'text' or 'html'"
        )
    if choice != "auto":
        return choice  # type: ignore[return-value]
    kernel_shell = current_shell() if shell is None else shell
    if kernel_shell is None or getattr(kernel_shell, "kernel", None) is None:
        return "text"  # plain Python, a terminal, or terminal IPython
    if _is_headless_kernel(kernel_shell, env):
        return "text"
    if optional_module("ipywidgets") is None:
        _show_hint(hint_stream)
        return "text"
    return "widget"
