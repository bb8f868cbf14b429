"""Choosing the display mode: explicit choice, ``KTRDR_PROGRESS``, and what the frontend sends.

A stand-in for IPython's kernel shell plays the headless and live kernels; one test asks a
real in-process ipykernel.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
from typing import Any

import pytest

from ktrdr_lib import ConfigError
from ktrdr_lib.views import display

pytest.importorskip("ipywidgets")


class KernelShell:
    """Stands in for ipykernel's shell: a ``kernel`` and the current request's parent message."""

    def __init__(self, metadata: dict[str, Any]) -> None:
        self.kernel = object()
        self._parent = {"header": {"msg_type": "execute_request"}, "metadata": metadata}

    def get_parent(self) -> dict[str, Any]:
        return self._parent


LIVE = KernelShell({"cellId": "3f1c-cell", "deletedCells": [], "recordTiming": False})
HEADLESS = KernelShell({})  # what nbclient (papermill, nbconvert --execute) sends


def test_plain_python_and_terminals_get_text() -> None:
    assert display.detect_display_mode() == "text"  # pytest: no IPython kernel
    assert display.detect_display_mode(environ={}, shell=None) == "text"

    class TerminalShell:  # terminal IPython has no kernel
        kernel = None

    assert display.detect_display_mode(environ={}, shell=TerminalShell()) == "text"


def test_live_frontend_gets_the_widget_and_headless_kernels_get_text() -> None:
    assert display.detect_display_mode(environ={}, shell=LIVE) == "widget"
    assert display.detect_display_mode(environ={}, shell=HEADLESS) == "text"
    # a kernel a Jupyter server started for a notebook session is live
    session = {"JPY_SESSION_NAME": "/a.ipynb"}
    assert display.detect_display_mode(environ=session, shell=HEADLESS) == "widget"
    # papermill marks the run headless even when the client sends cell ids
    assert display.detect_display_mode(environ={"PAPERMILL_RUN": "1"}, shell=LIVE) == "text"


def test_env_override_and_explicit_modes() -> None:
    env = {display.PROGRESS_ENV_VAR: "HTML"}
    assert display.detect_display_mode(environ=env, shell=LIVE) == "html"
    assert display.detect_display_mode("auto", environ={display.PROGRESS_ENV_VAR: "off"}) == "off"
    assert display.detect_display_mode("text", environ=env, shell=LIVE) == "text"  # argument wins
    assert display.detect_display_mode("widget", environ={}, shell=None) == "widget"
    with pytest.raises(ConfigError, match="KTRDR_PROGRESS"):
        display.detect_display_mode(environ={display.PROGRESS_ENV_VAR: "bars"})
    with pytest.raises(ConfigError, match="unknown"):
        display.detect_display_mode("bars")


def test_without_ipywidgets_auto_falls_back_to_text_with_one_hint(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "ipywidgets", None)  # makes ``import ipywidgets`` fail
    monkeypatch.setattr(display, "_hint_shown", False)
    stream = io.StringIO()

    assert display.detect_display_mode(environ={}, shell=LIVE, hint_stream=stream) == "text"
    assert display.detect_display_mode(environ={}, shell=LIVE, hint_stream=stream) == "text"
    assert stream.getvalue().count("ktrdr_lib[notebook]") == 1  # once per process
    with pytest.raises(ConfigError, match="notebook"):
        display.detect_display_mode("widget", environ={})


def test_the_module_imports_without_ipywidgets() -> None:
    """Every view module but ``widget`` imports without ipywidgets (so does the package)."""
    code = (
        "import sys; sys.modules['ipywidgets'] = None\n"
        "import ktrdr_lib.views, ktrdr_lib.views.progress, ktrdr_lib.views.formatting\n"
        "import ktrdr_lib.views.display as nb\n"
        "assert nb.detect_display_mode(environ={}) == 'text'\n"
        "print('ok')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


KERNEL_PROBE = """
from ipykernel.inprocess.manager import InProcessKernelManager

def run(client, code, metadata):
    content = {"code": code, "silent": False, "store_history": False, "allow_stdin": False}
    client._dispatch_to_kernel(client.session.msg("execute_request", content, metadata=metadata))
    out = []
    while True:
        reply = client.get_iopub_msg(timeout=30)
        if reply["msg_type"] == "stream":
            out.append(reply["content"]["text"])
        elif reply["msg_type"] == "error":
            raise SystemExit("\\n".join(reply["content"]["traceback"]))
        elif reply["msg_type"] == "status" and reply["content"]["execution_state"] == "idle":
            return "".join(out).strip()

manager = InProcessKernelManager()
manager.start_kernel()
client = manager.client()
client.start_channels()
code = "import ktrdr_lib.views.display as nb; print(nb.detect_display_mode())"
print(run(client, code, {}), run(client, code, {"cellId": "c1", "deletedCells": []}))
client.stop_channels()
manager.shutdown_kernel()
"""


def test_a_real_kernel_is_headless_without_cell_ids_and_live_with_them() -> None:
    """A real ipykernel (in-process, in a child process to keep this one clean): requests
    without cell metadata, as nbclient/papermill send them, get text; requests with a
    ``cellId``, as JupyterLab, Notebook 7 and VS Code send them, get the widget."""
    pytest.importorskip("ipykernel")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PAPERMILL_", "JPY_"))}
    env.pop(display.PROGRESS_ENV_VAR, None)
    env["PYDEVD_DISABLE_FILE_VALIDATION"] = "1"
    done = subprocess.run(
        [sys.executable, "-c", KERNEL_PROBE], capture_output=True, text=True, timeout=120, env=env
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["text", "widget"]
