"""Every notebook under ``notebooks/`` executes under papermill with a real kernel.

The kernel inherits this process's environment, so the autouse ``isolated_home`` fixture's
``KTRDR_HOME`` (a temp dir) is where the notebooks store operations and models. Each run
uses small epochs through papermill parameters and is checked for a readable headless
output: the summary table is there and progress never prints one line per batch.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.integration.ray_support import local_ray

papermill = pytest.importorskip("papermill")
nbformat = pytest.importorskip("nbformat")
kernelspec = pytest.importorskip("jupyter_client.kernelspec")

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
KERNEL = "python3"
RESULT_KEYS = {
    "training_metrics",
    "validation_metrics",
    "test_metrics",
    "resource_usage",
    "artifacts",
    "session_info",
    "data_summary",
    "evaluation",  # the model against its label kind's strongest baseline, and its economics
}
# Text mode prints a line per phase and per epoch plus one every 10 %: a handful of lines
# mention a batch position, never one per batch (a run has epochs x 36 batches here).
MAX_BATCH_LINES = 12

__all__ = ["local_ray"]


def _kernel_python(spec: Any) -> str:
    """The interpreter a kernelspec starts (jupyter_client runs bare ``python`` as ours)."""
    exe = str(spec.argv[0])
    if exe in {
        "python",
        f"python{sys.version_info[0]}",
        "python{}.{}".format(*sys.version_info[:2]),
    }:
        return sys.executable
    return shutil.which(exe) or exe


@pytest.fixture(scope="module")
def python3_kernel() -> str:
    """Make sure kernel ``python3`` runs this interpreter; register it in this prefix if not."""
    manager = kernelspec.KernelSpecManager()
    try:
        spec = manager.get_kernel_spec(KERNEL)
        ours = os.path.realpath(_kernel_python(spec)) == os.path.realpath(sys.executable)
    except kernelspec.NoSuchKernel:
        ours = False
    if not ours:
        subprocess.run(
            [sys.executable, "-m", "ipykernel", "install", "--sys-prefix", "--name", KERNEL],
            check=True,
            capture_output=True,
        )
        spec = kernelspec.KernelSpecManager().get_kernel_spec(KERNEL)
        assert os.path.realpath(_kernel_python(spec)) == os.path.realpath(sys.executable)
    return KERNEL


def _execute(name: str, out_dir: Path, parameters: dict[str, Any]) -> Any:
    output = out_dir / f"executed_{name}"
    papermill.execute_notebook(
        str(NOTEBOOKS / name),
        str(output),
        parameters=parameters,
        kernel_name=KERNEL,
        cwd=str(out_dir),
        progress_bar=False,
        execution_timeout=240,
    )
    return nbformat.read(output, as_version=4)


def _text(nb: Any) -> str:
    """Every text output of the executed notebook (streams and plain-text results)."""
    parts: list[str] = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream":
                parts.append(out.get("text", ""))
            elif "data" in out:
                parts.append(out["data"].get("text/plain", ""))
            elif out.get("output_type") == "error":
                parts.append("\n".join(out.get("traceback", [])))
    return "\n".join(parts)


def _batch_lines(text: str) -> int:
    return sum(1 for line in text.splitlines() if "Batch" in line)


def _assert_readable(text: str, ended: str = "status: completed") -> None:
    assert ended in text
    for row in ("operation", "epochs", "train loss / acc", "val loss / acc", "test", "model"):
        assert any(line.startswith(row) for line in text.splitlines()), (row, text[-2000:])
    assert _batch_lines(text) <= MAX_BATCH_LINES, text


def test_stored_notebooks_have_no_outputs() -> None:
    names = sorted(p.name for p in NOTEBOOKS.glob("*.ipynb"))
    assert names == ["batch_train.ipynb", "quickstart.ipynb", "remote_host.ipynb"]
    for path in NOTEBOOKS.glob("*.ipynb"):
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
        for cell in nb.cells:
            if cell.cell_type == "code":
                assert cell.outputs == [] and cell.execution_count is None, path.name
        tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
        assert len(tagged) == 1, path.name


@pytest.mark.slow
def test_quickstart_trains_reloads_and_predicts(python3_kernel: str, tmp_path: Path) -> None:
    nb = _execute("quickstart.ipynb", tmp_path, {"EPOCHS": 2})
    text = _text(nb)
    _assert_readable(text, ended="Completed: 2 epochs, test accuracy 0.")
    assert "OperationHandle(" not in text  # no stale repr of a running handle
    # the honest reading: the headline against the strongest baseline, the placebo note and
    # the economics table
    assert "(the strongest baseline, " in text and "no placebo run: pass placebo_runs=N" in text
    assert "costs: " in text  # where the round-trip cost came from
    assert "buy and hold" in text and "max_drawdown" in text
    [plot] = [cell for cell in nb.cells if "plt.subplots" in cell.source]
    assert any("image/png" in out.get("data", {}) for out in plot.outputs), plot.outputs
    assert "epoch" in text and "val_loss" in text  # the epoch history table
    assert "loaded: rsi_mean_reversion v1" in text
    assert "signal " in text and "probability" in text
    assert (Path(os.environ["KTRDR_HOME"]) / "models" / "rsi_mean_reversion" / "v1").is_dir()


@pytest.mark.slow
def test_batch_notebook_writes_the_result_json(python3_kernel: str, tmp_path: Path) -> None:
    output_json = tmp_path / "out" / "result.json"
    nb = _execute(
        "batch_train.ipynb",
        tmp_path,
        {
            "strategy": "rsi_mean_reversion",
            "symbols": "AAPL",
            "timeframes": "1d",
            "epochs": 2,
            "output_json": str(output_json),
        },
    )
    text = _text(nb)
    _assert_readable(text)
    assert f"TrainingResult written to {output_json}" in text
    result = json.loads(output_json.read_text(encoding="utf-8"))
    assert set(result) == RESULT_KEYS
    assert result["training_metrics"]["epochs_completed"] == 2
    assert result["session_info"]["mode"] == "local"
    assert result["session_info"]["symbols"] == ["AAPL"]


def test_every_parameter_is_documented_for_help_notebook() -> None:
    """``papermill --help-notebook`` lists every parameter with its comment (a line it cannot
    parse, such as one with ``=`` in its comment, would silently drop out of the list)."""
    import ast

    from papermill.translators import PythonTranslator

    for path in NOTEBOOKS.glob("*.ipynb"):
        nb = nbformat.read(path, as_version=4)
        [cell] = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
        assigned = [
            target.id
            for node in ast.parse(cell.source).body
            if isinstance(node, ast.Assign)
            for target in node.targets
            if isinstance(target, ast.Name)
        ]
        listed = PythonTranslator.inspect(cell)
        assert [p.name for p in listed] == assigned, path.name
        commented = {line.split("=")[0].strip() for line in cell.source.splitlines() if "#" in line}
        assert all(p.help for p in listed if p.name in commented), path.name


@pytest.mark.slow
@pytest.mark.ray
def test_batch_notebook_sweeps_on_ray_and_writes_the_ranking(
    python3_kernel: str, local_ray: str, tmp_path: Path
) -> None:
    output_json = tmp_path / "out" / "sweep.json"
    nb = _execute(
        "batch_train.ipynb",
        tmp_path,
        {
            "strategy": "rsi_mean_reversion",
            "symbols": "AAPL",
            "timeframes": "1d",
            "epochs": 2,
            "mode": "ray",
            "ray_address": local_ray,  # the kernel joins the test's Ray as a cluster
            "sweep": {"model.training.learning_rate": [0.01, 0.001]},
            "output_json": str(output_json),
        },
    )
    text = _text(nb)
    assert "status: completed" in text
    assert "[sweep] running · 2 trials · val_loss (min) · grid" in text
    for trial in (0, 1):
        assert f"[trial {trial}] completed · epoch 2/2 · val_loss " in text
    ranking = [line.split() for line in text.splitlines() if line.startswith("rank  trial")]
    assert ranking and ranking[0][:5] == ["rank", "trial", "status", "epochs", "val_loss"]
    assert _batch_lines(text) == 0  # a line per trial move, never per batch
    assert f"SweepResult written to {output_json}" in text
    result = json.loads(output_json.read_text(encoding="utf-8"))
    assert result["metric"] == "val_loss" and result["mode"] == "min"
    assert [t["status"] for t in result["trials"]] == ["completed", "completed"]
    assert result["best_model_name"] == "rsi_mean_reversion_sweep_best"
    assert result["best_trial"] == result["trials"][0]["trial"]  # best first


@pytest.mark.slow
def test_batch_notebook_refuses_a_sweep_outside_ray_mode(
    python3_kernel: str, tmp_path: Path
) -> None:
    with pytest.raises(papermill.PapermillExecutionError, match="ConfigError"):
        _execute(
            "batch_train.ipynb",
            tmp_path,
            {"sweep": "{model.training.learning_rate: [0.01, 0.001]}", "epochs": 1},
        )
    executed = nbformat.read(tmp_path / "executed_batch_train.ipynb", as_version=4)
    text = _text(executed)
    assert "parameter sweep: a sweep trains its trials on Ray, and mode is 'local'" in text


@pytest.mark.slow
def test_remote_notebook_without_a_host_explains_and_stops(
    python3_kernel: str, tmp_path: Path
) -> None:
    nb = _execute("remote_host.ipynb", tmp_path, {})
    text = _text(nb)
    assert "No training host is configured" in text
    assert "KTRDR_HOST_TOKEN" in text and "host_url" in text
    assert "Traceback" not in text


@pytest.mark.slow
def test_remote_notebook_trains_on_a_live_host(
    python3_kernel: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from host import create_app
    from tests.integration.conftest import start_server

    token = "notebook-test-token"
    server = start_server(
        create_app(token=token, home=tmp_path / "host_home", progress_interval=0.05)
    )
    try:
        monkeypatch.setenv("KTRDR_NOTEBOOK_HOST_TOKEN", token)
        output_json = tmp_path / "remote.json"
        nb = _execute(
            "remote_host.ipynb",
            tmp_path,
            {
                "host_url": server.url,
                "host_token_env": "KTRDR_NOTEBOOK_HOST_TOKEN",
                "epochs": 2,
                "output_json": str(output_json),
            },
        )
    finally:
        server.stop()
    text = _text(nb)
    _assert_readable(text)
    assert "session: host" in text
    result = json.loads(output_json.read_text(encoding="utf-8"))
    assert set(result) == RESULT_KEYS
    assert result["session_info"]["mode"] == "host"
    assert result["session_info"]["host_session_id"]
    assert result["training_metrics"]["epochs_completed"] == 2


# -- the buttons while a cell waits ----------------------------------------------------------

WAITING_CELL = """
import time
from ktrdr_lib import TrainingOrchestrator

orch = TrainingOrchestrator(data_dir={data_dir!r})
op = orch.train({strategy!r}, epochs={epochs}, display="widget")
record = op.wait(timeout=60)
print("ENDED", record.status, record.progress.epoch, time.time(), flush=True)
"""


class KernelSession:
    """A kernel driven as a frontend would: execute a cell, read iopub, send widget events."""

    def __init__(self, kernel_name: str, cwd: Path) -> None:
        from jupyter_client.manager import start_new_kernel

        self.manager, self.client = start_new_kernel(kernel_name=kernel_name, cwd=str(cwd))
        self.widgets: dict[str, dict[str, Any]] = {}  # comm id -> the widget's state
        self.stdout = ""

    def next_message(self, deadline: float) -> dict[str, Any]:
        """The next iopub message, keeping track of the widgets and what was printed."""
        try:
            msg: dict[str, Any] = self.client.get_iopub_msg(timeout=deadline - time.monotonic())
        except queue.Empty:
            raise AssertionError(f"the kernel went quiet; it printed: {self.stdout!r}") from None
        content = msg["content"]
        if msg["msg_type"] == "comm_open":
            self.widgets[content["comm_id"]] = dict(content["data"].get("state", {}))
        elif msg["msg_type"] == "comm_msg" and content["data"].get("method") == "update":
            self.widgets.setdefault(content["comm_id"], {}).update(content["data"]["state"])
        elif msg["msg_type"] == "stream":
            self.stdout += content["text"]
        elif msg["msg_type"] == "error":
            raise AssertionError("\n".join(content["traceback"]))
        return msg

    def button(self, description: str) -> str:
        """The comm id of the button labelled ``description``."""
        for comm_id, state in self.widgets.items():
            if state.get("_model_name") == "ButtonModel" and state["description"] == description:
                return comm_id
        raise AssertionError(f"no {description!r} button among {len(self.widgets)} widgets")

    def click(self, comm_id: str) -> None:
        """What the frontend sends when the button is clicked."""
        content = {"comm_id": comm_id, "data": {"method": "custom", "content": {"event": "click"}}}
        self.client.shell_channel.send(self.client.session.msg("comm_msg", content))

    def close(self) -> None:
        self.client.stop_channels()
        self.manager.shutdown_kernel(now=True)


@pytest.mark.slow
def test_cancel_clicked_while_a_cell_waits_ends_the_run_within_a_second(
    python3_kernel: str, tmp_path: Path, synthetic_data_dir: Path, small_strategy_file: Path
) -> None:
    """A cell blocks in ``op.wait()``; the Cancel button's click reaches the kernel anyway."""
    epochs = 3000  # minutes of training: without the click the wait would time out running
    session = KernelSession(python3_kernel, tmp_path)
    try:
        code = WAITING_CELL.format(
            data_dir=str(synthetic_data_dir), strategy=str(small_strategy_file), epochs=epochs
        )
        session.client.execute(code)
        deadline = time.monotonic() + 120
        while not any(  # training is under way, and the cell is blocked in op.wait()
            "Epoch 3/" in str(state.get("value", "")) for state in session.widgets.values()
        ):
            session.next_message(deadline)
        cancel = session.button("Cancel")
        clicked_at = time.time()
        session.click(cancel)
        while "\n" not in session.stdout.partition("ENDED")[2]:
            session.next_message(deadline)
    finally:
        session.close()
    status, epoch, ended_at = session.stdout.partition("ENDED")[2].split()[:3]
    assert status == "cancelled", session.stdout
    print(f"the wait ended {float(ended_at) - clicked_at:.3f} s after the click, in epoch {epoch}")
    assert float(ended_at) - clicked_at < 1.5  # the wait ended with the run, at once
    assert int(epoch) < 10  # long before the run would have ended
