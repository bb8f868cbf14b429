"""Resuming stopped runs through the orchestrator: a run cancelled mid-epoch and resumed ends
exactly where the uninterrupted run ends, in this process and in a child process; a resume
against a changed strategy or changed data is refused naming what changed."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import msgspec
import pytest

from ktrdr_lib import OperationStore, TrainingOrchestrator
from ktrdr_lib.errors import ConfigError, DataError, StateConflictError
from ktrdr_lib.progress.cancel_callback import CancelCallback
from ktrdr_lib.runners.local import LocalTrainingRunner
from ktrdr_lib.runners.process import ProcessTrainingRunner
from ktrdr_lib.schemas.progress import ProgressSnapshot
from ktrdr_lib.schemas.results import TrainingResult
from ktrdr_lib.training.checkpoints import read_meta
from tests.integration.conftest import LiveServer, start_server

pytestmark = pytest.mark.slow  # real trainings

HOST_TOKEN = "resume-s3cret-0123456789"
# A host run is followed by polling, so it cannot be held at a batch: long enough that the
# cancel at epoch 3 lands well before it ends.
HOST_EPOCHS = 60

EPOCHS = 6
SEED = 3


class HoldOnce(pl.Callback):
    """Holds one run at batch 4 of the epoch its flag file names until the run's cancel token
    is set; the flag is consumed, so every other run trains straight through (a file, so it
    works in child processes too)."""

    def __init__(self, flag: Path) -> None:
        self.flag = flag

    def on_train_batch_end(self, trainer: pl.Trainer, *args: Any) -> None:
        batch_idx = args[-1]
        if batch_idx != 3:
            return
        try:
            epoch = int(self.flag.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return
        if trainer.current_epoch + 1 != epoch:
            return
        self.flag.unlink(missing_ok=True)
        token = next(cb.token for cb in trainer.callbacks if isinstance(cb, CancelCallback))
        token.wait(60)


@pytest.fixture
def orch_factory(isolated_home: Path) -> Any:
    made: list[TrainingOrchestrator] = []

    def make(data_dir: Path, **kwargs: Any) -> TrainingOrchestrator:
        kwargs.setdefault(
            "runner", LocalTrainingRunner(callbacks=[HoldOnce(isolated_home / "hold")])
        )
        orch = TrainingOrchestrator(
            home=isolated_home,
            store=OperationStore(isolated_home / "operations.db"),
            data_dir=data_dir,
            progress_interval=0.0,
            **kwargs,
        )
        made.append(orch)
        return orch

    yield make
    for orch in made:
        orch.shutdown(cancel_running=True, timeout=60)


def _cancel_in_epoch(orch: TrainingOrchestrator, strategy: Path, epoch: int) -> Any:
    """Start the run and abort it 4 batches into ``epoch`` (1-based), where HoldOnce holds it."""
    (orch.home / "hold").write_text(str(epoch), encoding="utf-8")
    op = orch.start_training(strategy, epochs=EPOCHS, seed=SEED)
    for snap in op.follow(timeout=120):
        if snap.phase == "train" and snap.epoch == epoch and snap.batch >= 4:
            break
    op.cancel(reason="interrupted on purpose")
    assert op.wait(timeout=60).status == "cancelled"
    return op


def _figures(result: TrainingResult) -> dict[str, Any]:
    tm = msgspec.to_builtins(result.training_metrics)
    for volatile in ("training_time_s", "samples_per_second"):
        tm.pop(volatile)
    return {"training": tm, "test": msgspec.to_builtins(result.test_metrics)}


def _history(orch: TrainingOrchestrator, op_id: str) -> list[tuple[int, float | None]]:
    return [(row.epoch, row.val_loss) for row in orch.metrics(op_id).epochs]


def test_a_cancelled_run_resumes_to_exactly_the_uninterrupted_result(
    orch_factory: Any, small_strategy_file: Path, synthetic_data_dir: Path, isolated_home: Path
) -> None:
    orch = orch_factory(synthetic_data_dir)
    whole = orch.start_training(small_strategy_file, epochs=EPOCHS, seed=SEED)
    assert whole.wait(timeout=120).status == "completed"
    # a completed run's checkpoints are removed (keep_checkpoints_days=0) and it cannot resume
    assert not (isolated_home / "checkpoints" / whole.operation_id).exists()
    with pytest.raises(StateConflictError, match="completed: only a cancelled"):
        whole.resume()

    stopped = _cancel_in_epoch(orch, small_strategy_file, epoch=4)
    partial = orch.partial_result(stopped.operation_id)
    assert partial is not None and partial.training_metrics.epochs_completed == 3
    assert orch.health().checkpoints_bytes > 0
    last = stopped.snapshot()

    resumed = stopped.resume()
    seen: list[ProgressSnapshot] = list(resumed.follow(timeout=120))
    final = resumed.wait(timeout=120)
    assert final.status == "completed", final.error_message
    assert final.operation_id != stopped.operation_id
    # one continuous run: the history carries on, the percentage never goes back
    assert _history(orch, resumed.operation_id) == _history(orch, whole.operation_id)
    percentages = [s.percentage for s in seen]
    assert percentages == sorted(percentages)
    # it starts where 3 of 6 epochs put it (the train phase spans 10-95 %), not at 0
    assert percentages[0] >= 10 + 85 * 3 / 6 - 0.01
    assert last.percentage >= percentages[0] - 85 / 6  # the stopped run was inside epoch 4
    # bit for bit what the uninterrupted run reached
    assert _figures(orch.result(resumed.operation_id)) == _figures(orch.result(whole.operation_id))
    assert orch.store.stored_context(resumed.operation_id) is not None
    with pytest.raises(StateConflictError, match="cancelled"):
        orch.cancel(stopped.operation_id)  # the stopped run stays as it ended


def test_a_child_process_run_resumes_like_an_in_process_one(
    orch_factory: Any, small_strategy_file: Path, synthetic_data_dir: Path
) -> None:
    local = orch_factory(synthetic_data_dir)
    whole = local.start_training(small_strategy_file, epochs=EPOCHS, seed=SEED)
    assert whole.wait(timeout=120).status == "completed"
    child = orch_factory(
        synthetic_data_dir,
        runner=ProcessTrainingRunner(torch_threads=1, callbacks=[HoldOnce(local.home / "hold")]),
    )
    stopped = _cancel_in_epoch(child, small_strategy_file, epoch=3)
    resumed = child.resume(stopped.operation_id)
    assert resumed.wait(timeout=180).status == "completed"
    assert _figures(child.result(resumed.operation_id)) == _figures(
        local.result(whole.operation_id)
    )


def test_a_resume_against_a_changed_strategy_or_changed_data_is_refused(
    orch_factory: Any, small_strategy_file: Path, synthetic_data_dir: Path, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    shutil.copytree(synthetic_data_dir, data)
    orch = orch_factory(data)
    stopped = _cancel_in_epoch(orch, small_strategy_file, epoch=2)

    original = small_strategy_file.read_text(encoding="utf-8")
    small_strategy_file.write_text(
        original.replace("hidden_layers: [16, 8]", "hidden_layers: [32, 8]"), encoding="utf-8"
    )
    with pytest.raises(ConfigError, match=r"strategy changed.*model\.architecture"):
        stopped.resume()
    small_strategy_file.write_text(original, encoding="utf-8")

    bars = data / "SYNTH_1h.csv"
    bars.write_text(bars.read_text(encoding="utf-8") + "\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"data changed.*SYNTH 1h"):
        stopped.resume()
    bars.write_text(bars.read_text(encoding="utf-8")[:-1], encoding="utf-8")
    assert stopped.resume().wait(timeout=120).status == "completed"


def test_a_run_stopped_before_its_first_epoch_has_nothing_to_resume(
    orch_factory: Any, small_strategy_file: Path, synthetic_data_dir: Path
) -> None:
    orch = orch_factory(synthetic_data_dir)
    op = _cancel_in_epoch(orch, small_strategy_file, epoch=1)  # held inside epoch 1
    with pytest.raises(StateConflictError, match="left no checkpoint"):
        op.resume()


def test_resume_over_http(live_api: Any, strategies_dir: Path) -> None:
    import httpx

    from tests.integration.test_api_live import START, http

    server = live_api(sse_poll_s=0.02)
    with http(server) as client:
        task = client.post("/trainings/start", json={**START, "overrides": {"epochs": 40}})
        op_id = task.json()["task_id"]
        orch = server.app.state.orchestrator
        for snap in orch.follow(op_id, timeout=120):
            if snap.phase == "train" and snap.epoch >= 3:  # throttled: epochs may go by
                break
        assert client.delete(f"/operations/{op_id}").status_code == 200
        orch.wait(op_id, timeout=60)
        answer = client.post(f"/operations/{op_id}/resume")
        assert answer.status_code == 200, answer.text
        body = answer.json()
        completed = len(orch.metrics(op_id).epochs)
        assert 2 <= completed < 40
        assert body["resumed_from"] == op_id and body["from_epoch"] == completed
        record = orch.wait(body["task_id"], timeout=120)
        assert record.status == "completed"
        epochs = client.get(f"/operations/{body['task_id']}/metrics").json()["epochs"]
        assert [row["epoch"] for row in epochs] == list(range(1, 41))
        again = client.post(f"/operations/{body['task_id']}/resume")
        assert again.status_code == 409 and "only a cancelled" in again.json()["detail"]
        missing = httpx.post(f"{server.url}/api/v1/operations/op_nope/resume", timeout=10)
        assert missing.status_code == 404


def test_prune_keeps_what_can_resume_and_removes_the_rest(
    orch_factory: Any,
    small_strategy_file: Path,
    synthetic_data_dir: Path,
    isolated_home: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from ktrdr_lib.cli.commands import operations_prune
    from ktrdr_lib.cli.local import LocalBackend
    from ktrdr_lib.cli.parser import build_parser

    orch = orch_factory(synthetic_data_dir, keep_checkpoints_days=30)
    done = orch.start_training(small_strategy_file, epochs=2, seed=SEED)
    assert done.wait(timeout=120).status == "completed"
    checkpoints = isolated_home / "checkpoints"
    assert (checkpoints / done.operation_id / "latest.ckpt").is_file()  # kept 30 days
    stopped = _cancel_in_epoch(orch, small_strategy_file, epoch=2)
    (checkpoints / "op_training_20200101_000000_deadbeef").mkdir()  # of a forgotten run

    args = build_parser().parse_args(["operations", "prune"])
    assert operations_prune(args, LocalBackend(orch)) == 0  # within the 30 days: only the orphan
    assert sorted(p.name for p in checkpoints.iterdir()) == sorted(
        [done.operation_id, stopped.operation_id]
    )
    args = build_parser().parse_args(["operations", "prune", "--keep-days", "0"])
    assert operations_prune(args, LocalBackend(orch)) == 0
    assert [p.name for p in checkpoints.iterdir()] == [stopped.operation_id]  # it can resume
    out = capsys.readouterr().out
    assert f"removed checkpoints of {done.operation_id}" in out
    assert "checkpoints now use" in out and orch.health().checkpoints_bytes > 0


@pytest.fixture
def training_host(synthetic_data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A training host on loopback with its own home (its sessions checkpoint there)."""
    from host import create_app

    monkeypatch.delenv("KTRDR_HOST_TOKEN", raising=False)
    live: LiveServer = start_server(
        create_app(
            token=HOST_TOKEN,
            home=tmp_path / "host_home",
            data_dir=synthetic_data_dir,
            progress_interval=0.05,
        )
    )
    yield live
    live.stop()


def test_a_host_run_resumes_on_the_host_even_after_the_orchestrator_restarted(
    training_host: Any, small_strategy_file: Path, synthetic_data_dir: Path, tmp_path: Path
) -> None:
    from ktrdr_lib.runners.host import HostTrainingRunner

    home = tmp_path / "local_home"

    def orchestrator() -> TrainingOrchestrator:
        runner = HostTrainingRunner(training_host.url, HOST_TOKEN, poll_interval=0.1)
        return TrainingOrchestrator(
            home=home, host_runner=runner, data_dir=synthetic_data_dir, progress_interval=0.05
        )

    first = orchestrator()
    try:
        whole = first.start_training(
            small_strategy_file, mode="host", epochs=HOST_EPOCHS, seed=SEED
        )
        assert whole.wait(timeout=180).status == "completed"
        stopped = first.start_training(
            small_strategy_file, mode="host", epochs=HOST_EPOCHS, seed=SEED
        )
        for snap in stopped.follow(timeout=180):
            if snap.phase == "train" and snap.epoch >= 3:  # polled: epochs go by in between
                break
        stopped.cancel(reason="stop the host run")
        assert stopped.wait(timeout=60).status == "cancelled"
    finally:
        first.shutdown(timeout=30)

    second = orchestrator()  # a new process's orchestrator on the same store
    try:
        resumed = second.resume(stopped.operation_id)
        record = resumed.wait(timeout=180)
        assert record.status == "completed", record.error_message
        assert record.host_session_id not in (
            None,
            second.get_operation(stopped.operation_id).host_session_id,
        )
        assert [row.epoch for row in second.metrics(resumed.operation_id).epochs] == list(
            range(1, HOST_EPOCHS + 1)
        )
        assert _figures(second.result(resumed.operation_id)) == _figures(
            second.result(whole.operation_id)
        )
        assert second.result(resumed.operation_id).artifacts.model_id is not None
    finally:
        second.shutdown(cancel_running=True, timeout=30)


def test_checkpoint_settings_come_from_the_orchestrator_or_the_environment(
    orch_factory: Any,
    small_strategy_file: Path,
    synthetic_data_dir: Path,
    isolated_home: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    off = orch_factory(synthetic_data_dir, checkpoint_every=0)
    stopped = _cancel_in_epoch(off, small_strategy_file, epoch=3)
    assert not (isolated_home / "checkpoints" / stopped.operation_id).exists()
    with pytest.raises(StateConflictError, match="left no checkpoint"):
        stopped.resume()

    monkeypatch.setenv("KTRDR_CHECKPOINT_EVERY", "2")
    every_two = orch_factory(synthetic_data_dir)
    assert every_two.checkpoint_every == 2
    stopped = _cancel_in_epoch(every_two, small_strategy_file, epoch=4)  # 3 epochs completed
    meta = read_meta(isolated_home / "checkpoints" / stopped.operation_id)
    assert meta is not None and meta.epoch == 3 and meta.reason == "cancelled"

    monkeypatch.setenv("KTRDR_CHECKPOINT_EVERY", "often")
    with pytest.raises(ConfigError, match="KTRDR_CHECKPOINT_EVERY='often' is not a number"):
        orch_factory(synthetic_data_dir)
    with pytest.raises(ConfigError, match="must be >= 0"):
        orch_factory(synthetic_data_dir, checkpoint_every=-1)
