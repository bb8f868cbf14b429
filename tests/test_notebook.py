"""The notebook progress view: widget values, buttons, final styles, text output, mode choice.

No kernel is needed: widgets work without a frontend (their comm is a no-op), the view follows
real runs of a TrainingOrchestrator on the small synthetic strategy, and a stand-in for
IPython's kernel shell plays the headless and live kernels in the mode-detection tests.
"""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ktrdr_lib import ConfigError, TrainingOrchestrator
from ktrdr_lib import notebook as nb
from ktrdr_lib.operations.handle import OperationHandle
from ktrdr_lib.schemas.progress import DeviceResources, ProgressSnapshot

pytest.importorskip("ipywidgets")


@pytest.fixture(autouse=True)
def _no_progress_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(nb.PROGRESS_ENV_VAR, raising=False)
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    for name in [n for n in os.environ if n.startswith("PAPERMILL_")]:
        monkeypatch.delenv(name)


@pytest.fixture
def orch(synthetic_data_dir: Path) -> Iterator[TrainingOrchestrator]:
    orchestrator = TrainingOrchestrator(data_dir=synthetic_data_dir, progress_interval=0.0)
    yield orchestrator
    orchestrator.shutdown(cancel_running=True, timeout=60)


def _wait_for_training(op: OperationHandle, batches: int = 1) -> None:
    """Block until the run has trained ``batches`` batches (or ended)."""
    for _ in range(6000):
        snap = op.snapshot()
        if snap.status not in ("pending", "running") or (
            snap.phase == "train" and (snap.epoch - 1) * snap.total_batches + snap.batch >= batches
        ):
            return
        time.sleep(0.01)
    raise AssertionError("the run never reached training")


# -- widget view over real runs --------------------------------------------------------------


def test_widget_view_follows_a_run_to_completion(
    orch: TrainingOrchestrator, small_strategy_file: Path
) -> None:
    op = orch.start_training(small_strategy_file, epochs=2)
    view = op.display("widget")

    assert op.wait(timeout=120).status == "completed"
    assert view.wait(timeout=30)
    assert view.mode == "widget"
    assert view.bar.value == pytest.approx(100.0)
    assert view.bar.description == "100%"
    assert view.bar.bar_style == "success"
    assert view.cancel_button.disabled and view.stop_button.disabled
    assert "Epoch 2/2" in view.parts.headline.value
    assert "val loss" in view.parts.metrics.value
    assert [row.epoch for row in view.state.curve] == [1, 2]
    assert all(row.train_loss is not None and row.val_loss is not None for row in view.state.curve)
    assert view.parts.curve.value.count("<polyline") == 4  # train/val loss and accuracy
    summary = view.parts.summary.value
    assert "completed" in summary and "test" in summary and "model" in summary
    assert view.parts.device.layout.display == "none"  # CPU run: no GPU line
    assert view.renders <= view.state.snapshots_seen


def test_cancel_button_aborts_the_run(
    orch: TrainingOrchestrator, small_strategy_file: Path
) -> None:
    op = orch.start_training(small_strategy_file, epochs=200)
    view = op.display("widget")
    _wait_for_training(op, batches=3)

    view.cancel_button.click()
    assert view.cancel_button.disabled and view.stop_button.disabled  # at once
    assert op.wait(timeout=60).status == "cancelled"
    assert view.wait(timeout=30)
    assert view.bar.bar_style == "warning"
    assert "cancelled from the notebook" in view.parts.summary.value
    assert op.info().progress.epoch < 200


def test_stop_button_stops_gracefully_and_saves(
    orch: TrainingOrchestrator, small_strategy_file: Path
) -> None:
    op = orch.start_training(small_strategy_file, epochs=200)
    view = op.display("widget")
    _wait_for_training(op, batches=3)

    view.stop_button.click()
    assert view.stop_button.disabled and not view.cancel_button.disabled  # abort still possible
    assert op.wait(timeout=60).status == "completed"
    assert view.wait(timeout=30)
    result = op.result()
    assert result.training_metrics.early_stopped
    assert result.artifacts.model_id is not None
    assert view.bar.bar_style == "success"
    assert view.cancel_button.disabled and view.stop_button.disabled


def test_failed_run_turns_the_bar_red_and_says_why(
    orch: TrainingOrchestrator, small_strategy_file: Path
) -> None:
    op = orch.start_training(small_strategy_file, symbols=["NOPE"])
    view = op.display("widget")

    assert op.wait(timeout=60).status == "failed"
    assert view.wait(timeout=30)
    assert view.bar.bar_style == "danger"
    assert view.cancel_button.disabled and view.stop_button.disabled
    assert "error" in view.parts.summary.value

    view.cancel()  # too late: a note, not an exception
    assert "already failed" in view.parts.message.value


def test_fed_snapshots_set_the_widget_values(
    orch: TrainingOrchestrator, small_strategy_file: Path
) -> None:
    op = orch.start_training(small_strategy_file, epochs=1)
    view = nb.TrainingProgress(op, "widget", start=False, interval=0.0)
    base: dict[str, Any] = {"operation_id": op.operation_id, "status": "running"}

    view.update(ProgressSnapshot(**base, sequence=1, phase="load_data", message="Loading"))
    assert view.bar.bar_style == "info"
    assert "load_data" in view.parts.headline.value

    view.update(
        ProgressSnapshot(
            **base,
            sequence=2,
            phase="train",
            percentage=42.4,
            epoch=2,
            total_epochs=5,
            batch=10,
            total_batches=20,
            elapsed_s=75.0,
            eta_s=42.0,
            metrics={"train_loss": 0.8123, "val_loss": 0.9, "val_accuracy": 0.61},
            metrics_epoch=1,
            resources=DeviceResources(
                device="cuda:0",
                gpu_used=True,
                gpu_name="NVIDIA H200",
                gpu_memory_allocated_mb=512.0,
                gpu_memory_total_mb=143771.0,
            ),
        )
    )
    assert view.bar.value == pytest.approx(42.4)
    assert view.bar.description == "42%"
    assert "Epoch 2/5 · Batch 10/20" in view.parts.headline.value
    assert "elapsed 1:15" in view.parts.times.value and "ETA 0:42" in view.parts.times.value
    assert "0.8123" in view.parts.metrics.value and "0.610" in view.parts.metrics.value
    assert view.parts.device.layout.display is None
    assert (
        "NVIDIA H200" in view.parts.device.value
        and "512.0 / 143771.0 MB" in view.parts.device.value
    )
    assert [row.epoch for row in view.state.curve] == [1]

    view.update(ProgressSnapshot(**base, sequence=2, phase="save"))  # stale: ignored
    assert "train" in view.parts.headline.value
    view.close()
    op.wait(timeout=60)


# -- html, text, off ----------------------------------------------------------------------------


def test_html_view_draws_bar_curve_and_summary(
    orch: TrainingOrchestrator, small_strategy_file: Path
) -> None:
    op = orch.start_training(small_strategy_file, epochs=2)
    view = op.display("html")
    op.wait(timeout=120)
    assert view.wait(timeout=30)
    assert "data-status='completed'" in view.markup
    assert "<svg" in view.markup and "<table>" in view.markup
    with pytest.raises(ConfigError):
        _ = view.bar  # no widgets in html mode


def test_text_mode_writes_a_bounded_number_of_lines(
    orch: TrainingOrchestrator, small_strategy_file: Path
) -> None:
    stream = io.StringIO()
    op = orch.start_training(small_strategy_file, epochs=3, overrides={"batch_size": 8})
    view = op.display("text", stream=stream)
    op.wait(timeout=120)
    assert view.wait(timeout=30)

    final = op.snapshot()
    batches = final.total_batches * final.total_epochs
    assert batches >= 600  # many batches...
    lines = stream.getvalue().splitlines()
    assert len(lines) <= 40  # ...few lines: phases, epochs, every 10 %, summary
    assert len(lines) == view.lines_written
    assert len([line for line in lines if re.search(r"Epoch \d/3 · train loss", line)]) == 3
    assert len([line for line in lines if "· Batch " in line]) <= 10
    assert any(line.startswith("[completed]") for line in lines)
    assert any(line.startswith("test ") for line in lines)


def test_text_mode_thins_epoch_lines_of_long_runs(
    orch: TrainingOrchestrator, small_strategy_file: Path
) -> None:
    op = orch.start_training(small_strategy_file, epochs=1)
    stream = io.StringIO()
    view = nb.TrainingProgress(op, "text", stream=stream, start=False, max_epoch_lines=20)
    for epoch in range(1, 401):
        view.update(
            ProgressSnapshot(
                operation_id=op.operation_id,
                sequence=epoch,
                status="running",
                phase="train",
                percentage=10 + 85 * epoch / 400,
                epoch=epoch,
                total_epochs=400,
                batch=5,
                total_batches=5,
                metrics={"train_loss": 1.0 / epoch},
                metrics_epoch=epoch,
            )
        )
    lines = stream.getvalue().splitlines()
    assert len(view.state.curve) == 400
    epoch_lines = [line for line in lines if "train loss" in line]
    assert len(epoch_lines) == 20  # every 20th epoch...
    assert len(lines) <= 1 + 20 + 10  # ...plus the phase line and the 10 % marks
    assert epoch_lines[-1].startswith("[train]  95.0% · Epoch 400/400")
    op.wait(timeout=60)


def test_train_returns_at_once_and_shows_the_view(
    orch: TrainingOrchestrator, small_strategy_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    op = orch.train(small_strategy_file, epochs=2, display="text")
    assert isinstance(op, OperationHandle)
    assert not op.info().is_final  # the call did not wait for the run
    assert op.wait(timeout=120).status == "completed"
    for _ in range(3000):  # the view prints its summary just after the run ends
        if "[completed]" in capsys.readouterr().out:
            break
        time.sleep(0.01)
    else:
        raise AssertionError("the text view never printed the end of the run")

    with pytest.raises(ConfigError):
        orch.train(small_strategy_file, display="fancy")


def test_off_mode_draws_nothing(orch: TrainingOrchestrator, small_strategy_file: Path) -> None:
    op = orch.start_training(small_strategy_file, epochs=1)
    view = op.display("off")
    op.wait(timeout=60)
    assert view.wait(timeout=30)
    assert view.renders == 0 and view.lines_written == 0


# -- mode detection ---------------------------------------------------------------------------


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
    assert nb.detect_display_mode() == "text"  # pytest: no IPython kernel
    assert nb.detect_display_mode(environ={}, shell=None) == "text"

    class TerminalShell:  # terminal IPython has no kernel
        kernel = None

    assert nb.detect_display_mode(environ={}, shell=TerminalShell()) == "text"


def test_live_frontend_gets_the_widget_and_headless_kernels_get_text() -> None:
    assert nb.detect_display_mode(environ={}, shell=LIVE) == "widget"
    assert nb.detect_display_mode(environ={}, shell=HEADLESS) == "text"
    # a kernel a Jupyter server started for a notebook session is live
    assert nb.detect_display_mode(environ={"JPY_SESSION_NAME": "/a.ipynb"}, shell=HEADLESS) == (
        "widget"
    )
    # papermill marks the run headless even when the client sends cell ids
    assert nb.detect_display_mode(environ={"PAPERMILL_RUN": "1"}, shell=LIVE) == "text"


def test_env_override_and_explicit_modes() -> None:
    env = {nb.PROGRESS_ENV_VAR: "HTML"}
    assert nb.detect_display_mode(environ=env, shell=LIVE) == "html"
    assert nb.detect_display_mode("auto", environ={nb.PROGRESS_ENV_VAR: "off"}) == "off"
    assert nb.detect_display_mode("text", environ=env, shell=LIVE) == "text"  # argument wins
    assert nb.detect_display_mode("widget", environ={}, shell=None) == "widget"
    with pytest.raises(ConfigError, match="KTRDR_PROGRESS"):
        nb.detect_display_mode(environ={nb.PROGRESS_ENV_VAR: "bars"})
    with pytest.raises(ConfigError, match="unknown"):
        nb.detect_display_mode("bars")


def test_without_ipywidgets_auto_falls_back_to_text_with_one_hint(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "ipywidgets", None)  # makes ``import ipywidgets`` fail
    monkeypatch.setattr(nb, "_hint_shown", False)
    stream = io.StringIO()

    assert nb.detect_display_mode(environ={}, shell=LIVE, hint_stream=stream) == "text"
    assert nb.detect_display_mode(environ={}, shell=LIVE, hint_stream=stream) == "text"
    assert stream.getvalue().count("ktrdr_lib[notebook]") == 1  # once per process
    with pytest.raises(ConfigError, match="notebook"):
        nb.detect_display_mode("widget", environ={})


def test_the_module_imports_without_ipywidgets() -> None:
    code = (
        "import sys; sys.modules['ipywidgets'] = None\n"
        "import ktrdr_lib.notebook as nb\n"
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
code = "import ktrdr_lib.notebook as nb; print(nb.detect_display_mode())"
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
    env.pop(nb.PROGRESS_ENV_VAR, None)
    env["PYDEVD_DISABLE_FILE_VALIDATION"] = "1"
    done = subprocess.run(
        [sys.executable, "-c", KERNEL_PROBE], capture_output=True, text=True, timeout=120, env=env
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["text", "widget"]
