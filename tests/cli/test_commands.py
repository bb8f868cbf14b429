"""Each command once, over both backends: the same operations print the same text.

The local backend and the API backend see one orchestrator, so every difference in what a
command prints is a difference between the two doors (the only intended one: ``--json`` keeps
each door's own documents, v1's shapes over the API).
"""

from __future__ import annotations

import argparse
import re
import time
from pathlib import Path
from typing import Any

import msgspec
import pytest

from ktrdr_lib.cli import main
from ktrdr_lib.cli.backend import Backend, api_url, open_backend
from ktrdr_lib.cli.commands import (
    EXIT_ERROR,
    EXIT_OK,
    models_list,
    operations_cancel,
    operations_follow,
    operations_list,
    operations_show,
    strategies_list,
    strategies_validate,
    train,
)
from ktrdr_lib.cli.local import LocalBackend
from ktrdr_lib.cli.parser import build_parser
from ktrdr_lib.cli.remote import ApiBackend
from ktrdr_lib.cli.render import summary_text
from ktrdr_lib.errors import ConfigError, NotFoundError, StateConflictError
from ktrdr_lib.schemas.requests import TrainingRequest
from ktrdr_lib.schemas.results import TrainingResult
from ktrdr_lib.schemas.v1 import OperationListItem, PerformanceResponse


def _args(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(list(argv))


def _same_run(text: str) -> str:
    """A summary without what differs between two runs of one request: ids, times, memory,
    version."""
    text = re.sub(r"op_training_\S+", "OP", text)
    text = re.sub(r"\d+:\d\d · [\d,]+ samples/s", "T · R samples/s", text)
    text = re.sub(r"(\w+) \d+\.\d\d s", r"\1 S s", text)  # phase times
    text = re.sub(r"peak RSS [\d,]+ MB", "peak RSS M MB", text)
    return re.sub(r"small_test/v\d+", "small_test/vN", text)


def test_train_prints_the_same_summary_here_and_on_the_api(
    local: LocalBackend,
    remote: ApiBackend,
    strategy_path: Path,
    strategies_dir: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    placebo = ("--placebo", "1")
    assert train(_args("train", str(strategy_path), "--epochs", "1", *placebo), local) == EXIT_OK
    here = capsys.readouterr()
    assert train(_args("train", "small_test", "--epochs", "1", *placebo), remote) == EXIT_OK
    there = capsys.readouterr()

    op_id = re.search(r"\[api\] (\S+) started on http://127.0.0.1:8000", there.err)
    assert op_id is not None, there.err
    # the printed summary is the result's, whichever backend read it
    assert there.out == summary_text(remote.get_operation(op_id.group(1)))
    assert there.out == summary_text(local.get_operation(op_id.group(1)))
    # and two runs of one request print the same figures
    assert _same_run(here.out) == _same_run(there.out)
    assert "majority-class baseline" in here.out and "model           small_test/v" in here.out
    # it leads with the model against its strongest baseline, and --placebo reached the
    # orchestrator through either door: one placebo trained after each run
    evaluation = local.orchestrator.result(op_id.group(1)).evaluation
    assert evaluation is not None and evaluation.placebo is not None
    assert evaluation.placebo_runs == 1 and len(evaluation.placebo.operation_ids) == 1
    child = local.get_operation(evaluation.placebo.operation_ids[0])
    assert child.metadata["placebo_of"] == op_id.group(1) and child.status == "completed"
    lines = there.out.splitlines()
    assert lines[0] == f"evaluation      {evaluation.headline}"
    assert lines[1].startswith("baselines       accuracy (f1): ")
    assert "  buy and hold  return " in there.out
    assert f"placebo         {evaluation.placebo_note}" in lines
    assert evaluation.placebo_note.startswith("1 placebo run on random walks: accuracy ")
    for err in (here.err, there.err):
        assert "[load_data]" in err and "[train] Epoch 1/1 · train_loss " in err
        assert "Batch " not in err  # the live line is for terminals only


def test_train_json_is_each_doors_own_document(
    local: LocalBackend,
    remote: ApiBackend,
    strategy_path: Path,
    strategies_dir: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert train(_args("train", str(strategy_path), "--epochs", "1", "--json"), local) == 0
    result = msgspec.json.decode(capsys.readouterr().out, type=TrainingResult)
    assert result.training_metrics.epochs_completed == 1

    assert train(_args("train", "small_test", "--epochs", "1", "--json"), remote) == 0
    performance = msgspec.json.decode(capsys.readouterr().out, type=PerformanceResponse)
    assert performance.status == "completed"
    assert set(performance.test_metrics) >= {"test_accuracy", "f1_score"}


@pytest.mark.parametrize(
    "argv",
    [
        ("operations", "show", "{op}"),
        ("operations", "follow", "{op}"),
        ("models", "list"),
    ],
)
def test_reading_commands_print_alike(
    argv: tuple[str, ...],
    finished: str,
    local: LocalBackend,
    remote: ApiBackend,
    capsys: pytest.CaptureFixture[str],
) -> None:
    args = _args(*(part.format(op=finished) for part in argv))
    command = {"show": operations_show, "follow": operations_follow, "list": models_list}
    run = command[args.action]
    printed = []
    for backend in (local, remote):
        assert run(args, backend) == EXIT_OK
        printed.append(capsys.readouterr())
    assert printed[0] == printed[1]
    assert printed[0].out or printed[0].err


def test_show_has_the_run_and_its_result(
    finished: str, remote: ApiBackend, capsys: pytest.CaptureFixture[str]
) -> None:
    assert operations_show(_args("operations", "show", finished), remote) == EXIT_OK
    out = capsys.readouterr().out
    assert f"operation   {finished}  (training, mode local)" in out
    assert "status      completed" in out and "strategy    small_test  SYNTH 1h  epochs 1" in out
    assert re.search(r"result      test accuracy 0\.\d{3}  model small_test/v\d+", out), out

    assert operations_follow(_args("operations", "follow", finished), remote) == EXIT_OK
    assert capsys.readouterr().err.endswith(f"{finished} completed\n")


def test_operation_lists_have_the_same_rows(
    finished: str,
    strategy_path: Path,
    local: LocalBackend,
    remote: ApiBackend,
    capsys: pytest.CaptureFixture[str],
) -> None:
    rows = []
    for backend in (local, remote):
        assert operations_list(_args("operations", "list", "--json"), backend) == EXIT_OK
        page = msgspec.json.decode(capsys.readouterr().out, type=list[OperationListItem])
        rows.append(next(row for row in page if row.operation_id == finished))
    assert rows[0] == rows[1]
    assert rows[0].status == "completed" and rows[0].progress_percentage == 100.0

    # A page of one with more behind it, whatever else this module ran before.
    second = local.start_training(str(strategy_path), TrainingRequest(epochs=1))
    assert local.wait(second, timeout=120).status == "completed"
    assert operations_list(_args("operations", "list", "--limit", "1"), local) == EXIT_OK
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and lines[1].endswith("; --limit shows more)")
    with pytest.raises(ConfigError, match="--limit must be >= 1"):
        operations_list(_args("operations", "list", "--limit", "0"), remote)


def _training_started(backend: Backend, strategy: str) -> str:
    op_id = backend.start_training(strategy, TrainingRequest(epochs=500))
    deadline = time.monotonic() + 60
    while backend.get_operation(op_id).progress.phase != "train":
        assert time.monotonic() < deadline, "the run never reached training"
        time.sleep(0.05)
    return op_id


@pytest.mark.parametrize("door", ["local", "remote"])
def test_cancel_wait_then_follow_and_show(
    door: str,
    local: LocalBackend,
    remote: ApiBackend,
    strategy_path: Path,
    strategies_dir: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    backend: Backend = local if door == "local" else remote
    op_id = _training_started(backend, str(strategy_path) if door == "local" else "small_test")
    cancel = _args("operations", "cancel", op_id, "--reason", "test stop", "--wait")
    assert operations_cancel(cancel, backend) == EXIT_OK
    assert capsys.readouterr().out == f"{op_id}: cancelled (test stop)\n"
    with pytest.raises(StateConflictError, match="cannot be cancelled"):
        operations_cancel(_args("operations", "cancel", op_id), backend)

    assert operations_follow(_args("operations", "follow", op_id), backend) == EXIT_ERROR
    assert capsys.readouterr().err.endswith("cancelled: test stop\n")

    shown = []
    for either in (local, remote):
        operations_show(_args("operations", "show", op_id), either)
        shown.append(capsys.readouterr().out)
    assert shown[0] == shown[1]
    assert "status      cancelled" in shown[0] and "cancelled   test stop" in shown[0]


def test_strategy_commands_print_alike(
    local: LocalBackend,
    remote: ApiBackend,
    strategies_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\nindicators: [{name: rsi, period: 0}]\n", encoding="utf-8")
    good = strategies_dir / "small_test.yaml"
    validate = _args("strategies", "validate", str(good), str(bad), str(tmp_path / "none.yaml"))
    listing = _args("strategies", "list")
    printed = []
    for backend in (local, remote):
        assert strategies_validate(validate, backend) == EXIT_ERROR
        assert strategies_list(listing, backend) == EXIT_OK
        printed.append(capsys.readouterr().out)
    assert printed[0] == printed[1]
    assert f"{good}: OK" in printed[0] and "indicators[0].period" in printed[0]
    assert "none.yaml: cannot read: " in printed[0]
    assert re.search(r"^small_test +SYNTH 1h +ok ", printed[0], re.MULTILINE)


def test_remote_training_needs_a_name_the_server_knows(
    remote: ApiBackend, strategy_path: Path, strategies_dir: Path
) -> None:
    with pytest.raises(ConfigError, match="must be a strategy name the server knows"):
        remote.start_training(str(strategy_path), TrainingRequest())
    with pytest.raises(ConfigError, match=r"Strategy file not found: 'nope' .* small_test"):
        remote.start_training("nope", TrainingRequest())
    with pytest.raises(NotFoundError, match="op_nope"):
        remote.get_operation("op_nope")


def test_the_backend_comes_from_the_command_line(monkeypatch: pytest.MonkeyPatch) -> None:
    assert api_url(_args("models", "list")) is None
    assert api_url(_args("strategies", "list")) is None
    monkeypatch.setenv("KTRDR_API_URL", "http://env:1")
    assert api_url(_args("models", "list")) == "http://env:1"
    assert api_url(_args("models", "list", "--api", "flag:2")) == "flag:2"
    assert api_url(_args("models", "list", "--local")) is None
    assert api_url(_args("strategies", "list")) is None  # never remote

    backend = open_backend(_args("operations", "list", "--api", "host:9/api/v1/"))
    assert isinstance(backend, ApiBackend) and backend.location == "http://host:9"
    backend.close()
    assert isinstance(open_backend(_args("train", "x", "--local")), LocalBackend)
    with pytest.raises(ConfigError, match="--data-dir applies to local runs only"):
        open_backend(_args("train", "x", "--data-dir", "/tmp"))
    with pytest.raises(ConfigError, match="--no-save applies to local runs only"):
        open_backend(_args("train", "x", "--no-save"))


def test_main_prints_errors_as_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["operations", "show", "op_nope"]) == EXIT_ERROR
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "op_nope" in err and err.count("\n") == 1

    assert main(["train", "small_test", "--api", "http://127.0.0.1:9", "--no-save"]) == 1
    assert capsys.readouterr().err == (
        "error: --no-save applies to local runs only; the server uses its own data and saves "
        "every model (leave it out, or add --local)\n"
    )
    assert main(["models", "list"]) == EXIT_OK
    assert capsys.readouterr().out == "no saved models (train one with `ktrdr train STRATEGY`)\n"


def _stopped_in_epoch(orchestrator: Any, strategy_path: Path, epoch: int) -> str:
    """A run of 40 epochs (far from done at ``epoch``) aborted a few batches into ``epoch``;
    its id."""
    handle = orchestrator.start_training(strategy_path, epochs=40, seed=3)
    for snap in handle.follow(timeout=120):
        if snap.phase == "train" and snap.epoch >= epoch:  # throttled: epochs may go by
            break
    handle.cancel(reason="stopped for the test")
    assert handle.wait(timeout=60).status == "cancelled"
    return str(handle.operation_id)


def test_resume_continues_a_stopped_run_over_both_backends(
    local: LocalBackend,
    remote: ApiBackend,
    strategy_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    orchestrator = local.orchestrator
    for backend, command in ((local, "operations"), (remote, "train")):
        stopped = _stopped_in_epoch(orchestrator, strategy_path, epoch=3)
        argv = (
            ("operations", "resume", stopped)
            if command == "operations"
            else ("train", "--resume", stopped)
        )
        assert train_or_resume(_args(*argv), backend) == EXIT_OK
        out = capsys.readouterr()
        resumed = [
            record
            for record in orchestrator.list_operations(limit=50).items
            if record.metadata.get("resumed_from") == stopped
        ]
        assert len(resumed) == 1 and resumed[0].status == "completed"
        epochs = orchestrator.metrics(resumed[0].operation_id).epochs
        assert [row.epoch for row in epochs] == list(range(1, 41))
        assert "epochs          40" in out.out
    with pytest.raises(StateConflictError, match="completed: only a cancelled"):
        train_or_resume(_args("operations", "resume", resumed[0].operation_id), remote)
    with pytest.raises(ConfigError, match="either a STRATEGY"):
        train(_args("train", str(strategy_path), "--resume", "op_x"), local)


def train_or_resume(args: argparse.Namespace, backend: Backend) -> int:
    """``train`` or ``operations resume``, as main() would dispatch them."""
    from ktrdr_lib.cli.commands import operations_resume

    return train(args, backend) if args.command == "train" else operations_resume(args, backend)
