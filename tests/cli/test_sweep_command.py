"""``ktrdr train --mode`` and ``ktrdr sweep``: the grammar, the flags each mode refuses, the
``--space`` values, what a sweep prints (live table, lines, ranking), and the mode reaching the
orchestrator through both backends. Nothing trains here; tests/integration/test_cli_sweep.py
runs sweeps on a local Ray."""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest

from ktrdr_lib.cli import main
from ktrdr_lib.cli.backend import open_backend
from ktrdr_lib.cli.commands import EXIT_ERROR
from ktrdr_lib.cli.local import LocalBackend
from ktrdr_lib.cli.parser import build_parser, parse_space
from ktrdr_lib.cli.remote import ApiBackend
from ktrdr_lib.cli.render import SweepTable, sweep_ranking_text
from ktrdr_lib.errors import ConfigError, HostUnavailableError
from ktrdr_lib.http.client import ApiClient
from ktrdr_lib.schemas.requests import TrainingRequest
from ktrdr_lib.schemas.sweeps import SweepRequest, SweepResult
from tests.builders import make_sweep, make_trial


class Terminal(io.StringIO):
    """A stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


def _error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """The one-line error ``main(argv)`` prints (it must fail with status 1 and nothing on
    stdout)."""
    assert main(argv) == EXIT_ERROR
    out = capsys.readouterr()
    assert out.out == "" and out.err.count("\n") == 1, out
    assert out.err.startswith("error: ")
    return out.err


# -- the --space grammar -------------------------------------------------------------------


def test_space_values_are_yaml_scalars() -> None:
    space = parse_space(
        [
            "model.training.learning_rate=0.01, 1e-3,2E-4",
            "model.architecture.dropout=0,0.5",
            "model.features.scale_features=true,false",
            "model.training.optimizer=adam,sgd",
        ]
    )
    assert space == {
        "model.training.learning_rate": [0.01, 0.001, 0.0002],
        "model.architecture.dropout": [0, 0.5],
        "model.features.scale_features": [True, False],
        "model.training.optimizer": ["adam", "sgd"],
    }
    assert [type(v) for v in space["model.architecture.dropout"]] == [int, float]


@pytest.mark.parametrize(
    ("entry", "says"),
    [
        ("learning_rate", "--space 'learning_rate': write PATH=V1,V2"),
        ("=0.1", "--space '=0.1': write PATH=V1,V2"),
        ("lr=", "--space 'lr=': a value is empty; write lr=V1,V2"),
        ("lr=0.1,,0.2", "a value is empty"),
        ("lr=[0.1", "'[0.1' is not a single value"),
        ("lr=~", "'~' is not a single value"),
    ],
)
def test_a_bad_space_entry_is_named(entry: str, says: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(says)):
        parse_space([entry])


def test_a_path_given_twice_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"--space lr is given twice; give all its values once"):
        parse_space(["lr=0.1", "lr=0.2"])


# -- train --mode --------------------------------------------------------------------------


def test_train_mode_flags() -> None:
    args = build_parser().parse_args(
        ["train", "s", "--mode", "ray", "--num-cpus", "2", "--num-gpus", "0.5"]
    )
    assert (args.mode, args.num_cpus, args.num_gpus, args.ray_address) == ("ray", 2.0, 0.5, None)
    assert build_parser().parse_args(["train", "s"]).mode is None  # local unless asked
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "s", "--mode", "cloud"])
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "s", "--mode", "ray", "--num-cpus", "-1"])


def test_train_refuses_what_its_mode_would_not_use(capsys: pytest.CaptureFixture[str]) -> None:
    err = _error(["train", "s", "--num-cpus", "2"], capsys)
    assert "--num-cpus: for --mode ray only (this run trains local)" in err
    err = _error(["train", "s", "--mode", "host", "--num-gpus", "1", "--ray-address", "x"], capsys)
    assert "--num-gpus and --ray-address: for --mode ray only (this run trains host)" in err
    err = _error(["train", "s", "--mode", "host", "--no-save"], capsys)
    assert "--no-save applies to local and ray runs; a training host saves every model" in err
    err = _error(["train", "--resume", "op_1", "--mode", "ray", "--num-cpus", "1"], capsys)
    assert "--mode and --num-cpus: a resumed run trains where it started" in err
    err = _error(["train", "s", "--mode", "host", "--placebo", "3"], capsys)
    assert "--placebo applies to local and ray runs: placebos train where the orchestrator" in err
    err = _error(["train", "--resume", "op_1", "--placebo", "2"], capsys)
    assert "--placebo: a resumed run trains the placebos its start asked for" in err


def test_train_resume_refuses_the_flags_that_would_shape_a_new_run(
    capsys: pytest.CaptureFixture[str],
) -> None:
    err = _error(["train", "--resume", "op_1", "--epochs", "50", "--seed", "7"], capsys)
    assert "--epochs and --seed: a resumed run continues with the symbols, dates, epochs" in err
    assert "leave --epochs and --seed out with --resume, or start a new run with them" in err
    for flags in (
        ["--symbols", "AAPL"],
        ["--timeframes", "1d"],
        ["--start-date", "2020-01-01"],
        ["--end-date", "2020-02-01"],
        ["--seed", "42"],  # even the default, when it is given
        ["--data-dir", "elsewhere"],
        ["--analytics"],
        ["--logger", "csv"],
    ):
        err = _error(["train", "--resume", "op_1", *flags], capsys)
        assert f"{flags[0]}: a resumed run continues with" in err, flags


def test_ray_mode_without_a_cluster_says_how_to_give_one(
    capsys: pytest.CaptureFixture[str],
) -> None:
    err = _error(["train", "s", "--mode", "ray"], capsys)
    assert "--mode ray trains on Ray and no cluster is given: add --ray-address ADDRESS" in err
    assert "KTRDR_RAY_ADDRESS" in err
    err = _error(["sweep", "s", "--space", "epochs=1,2"], capsys)
    assert "ktrdr sweep trains on Ray and no cluster is given" in err


def test_ray_address_is_for_this_process_only() -> None:
    args = build_parser().parse_args(
        ["train", "s", "--mode", "ray", "--api", "http://x:1", "--ray-address", "local"]
    )
    with pytest.raises(ConfigError, match="--ray-address applies to runs in this process"):
        open_backend(args)


# -- sweep ---------------------------------------------------------------------------------


def test_sweep_flags_and_defaults() -> None:
    args = build_parser().parse_args(["sweep", "s", "--space", "epochs=1,2"])
    assert (args.metric, args.direction, args.search, args.early_stop) == (
        "val_loss",
        None,
        "grid",
        None,
    )
    assert (args.samples, args.max_concurrent, args.grace_period, args.seed) == (
        None,
        None,
        None,
        42,
    )
    with pytest.raises(SystemExit):  # --space is required
        build_parser().parse_args(["sweep", "s"])
    with pytest.raises(SystemExit):
        build_parser().parse_args(["sweep", "s", "--space", "a=1", "--metric", "profit"])
    with pytest.raises(SystemExit):
        build_parser().parse_args(["sweep", "s", "--space", "a=1", "--samples", "0"])


def test_sweep_refuses_early_stop_settings_without_early_stop(
    capsys: pytest.CaptureFixture[str],
) -> None:
    err = _error(
        ["sweep", "s", "--space", "a=1", "--grace-period", "2", "--reduction-factor", "3"], capsys
    )
    assert "--grace-period and --reduction-factor: these tune early stopping, which is off" in err
    assert "add --early-stop asha" in err


def test_sweep_space_errors_come_before_ray(capsys: pytest.CaptureFixture[str]) -> None:
    err = _error(["sweep", "s", "--space", "lr", "--ray-address", "local"], capsys)
    assert "--space 'lr': write PATH=V1,V2" in err


# -- what a sweep prints -------------------------------------------------------------------

RUNNING = [
    make_sweep([make_trial(0, "pending"), make_trial(1, "pending")], "pending"),
    make_sweep([make_trial(0), make_trial(1, "pending")]),
    make_sweep([make_trial(0), make_trial(1, "pending")]),  # nothing moved: no output
    make_sweep([make_trial(0, epoch=1, metric=0.9123), make_trial(1)]),
]


def _ended(**result: Any) -> Any:
    trials = [
        make_trial(1, "completed", epoch=2, metric=0.8012, best_epoch=2, test_accuracy=0.61),
        make_trial(0, "completed", epoch=1, metric=0.9123, best_epoch=1, stopped_early=True),
        make_trial(2, "failed", error_message="boom\nTraceback ..."),
    ]
    return make_sweep(
        sorted(trials, key=lambda t: t.trial),
        "completed",
        result=SweepResult(
            metric="val_loss",
            mode="min",
            trials=trials,
            best_trial=1,
            best_operation_id="op_trial_1",
            best_model_name="small_test_sweep_best",
            best_model_version=1,
            early_stopped=1,
            **result,
        ),
    )


def test_a_pipe_gets_a_line_each_time_a_trial_moves() -> None:
    stream = io.StringIO()
    table = SweepTable(stream)
    for snapshot in RUNNING:
        table.show(snapshot)
    table.show(_ended())
    assert stream.getvalue().splitlines() == [
        "[sweep] pending · 2 trials · val_loss (min) · grid",
        "[trial 0] pending · epoch 0/2 · learning_rate=0.01",
        "[trial 1] pending · epoch 0/2 · learning_rate=0.001",
        "[sweep] running · 2 trials · val_loss (min) · grid",
        "[trial 0] running · epoch 0/2 · learning_rate=0.01",
        "[trial 0] running · epoch 1/2 · val_loss 0.9123 · learning_rate=0.01",
        "[trial 1] running · epoch 0/2 · learning_rate=0.001",
        "[trial 0] stopped early · epoch 1/2 · val_loss 0.9123 (best epoch 1) · learning_rate=0.01",
        (
            "[trial 1] completed · epoch 2/2 · val_loss 0.8012 (best epoch 2) · test accuracy "
            "0.610 · learning_rate=0.001"
        ),
        "[trial 2] failed · epoch 0/2 · boom · learning_rate=0.1",
    ]


def test_a_terminal_gets_the_table_redrawn_in_place() -> None:
    screen = Terminal()
    table = SweepTable(screen, width=60)
    table.show(RUNNING[0])
    first = screen.getvalue()
    assert first.splitlines() == [
        "[sweep] pending · 0 of 2 trials done · 0 running",
        "trial  status   epoch  val_loss  config",
        "─────  ───────  ─────  ────────  ───────────────────",
        "0      pending  0/2    –         learning_rate=0.01",
        "1      pending  0/2    –         learning_rate=0.001",
    ]
    table.note("[cancel] Ctrl-C")  # above the table, which is drawn again below it
    table.show(RUNNING[2])
    redraws = screen.getvalue()[len(first) :]
    assert redraws.startswith("\x1b[5F\x1b[J[cancel] Ctrl-C\n[sweep] pending")
    assert redraws.count("\x1b[5F\x1b[J") == 2  # one per redraw, each erasing 5 lines
    assert redraws.rstrip("\n").endswith("1      pending  0/2    –         learning_rate=0.001")
    table.show(RUNNING[3])
    last = screen.getvalue().rsplit("\x1b[J", 1)[1]
    assert last.splitlines()[0] == "[sweep] running · 0 of 2 trials done · 2 running · best va…"
    assert "0      running  1/2    0.9123    learning_rate=0.01" in last
    assert all(len(line) <= 59 for line in last.splitlines())  # cut to the terminal's width


def test_the_ranking_names_the_best_model() -> None:
    text = sweep_ranking_text(_ended())
    lines = text.splitlines()
    assert lines[0] == (
        "Completed: 3 trials (1 stopped early), best val_loss 0.8012 (trial 1), model "
        "small_test_sweep_best v1"
    )
    assert lines[1].split() == [
        "rank",
        "trial",
        "status",
        "epochs",
        "val_loss",
        "best",
        "epoch",
        "test",
        "acc",
        "config",
    ]
    assert lines[3].split()[:5] == ["1", "1", "completed", "2/2", "0.8012"]
    assert lines[4].split()[:6] == ["2", "0", "stopped", "early", "1/2", "0.9123"]
    assert lines[5].split()[:4] == ["–", "2", "failed", "0/2"]  # no figure: unranked, last
    assert lines[-1] == ("best model      small_test_sweep_best v1 (trial 1, op_trial_1)")


def test_a_cancelled_sweep_says_why() -> None:
    snapshot = make_sweep(
        [make_trial(0, "completed", epoch=2, metric=0.8), make_trial(1, "cancelled")],
        "cancelled",
        cancellation_reason="interrupted by Ctrl-C",
    )
    assert sweep_ranking_text(snapshot).splitlines()[0] == (
        "Cancelled: 1 of 2 trials completed; interrupted by Ctrl-C"
    )


# -- the mode reaches the orchestrator, here and on the API ----------------------------------


def test_the_mode_reaches_the_orchestrator_on_both_doors(
    local: LocalBackend, remote: ApiBackend, strategies_dir: Path
) -> None:
    for backend in (local, remote):
        with pytest.raises(ConfigError, match="no Ray cluster is configured"):
            backend.start_training("small_test", TrainingRequest(num_cpus=2), mode="ray")
        with pytest.raises(HostUnavailableError, match="no training host is configured"):
            backend.start_training("small_test", TrainingRequest(), mode="host")
        with pytest.raises(ConfigError, match="no Ray cluster is configured"):
            backend.start_sweep(SweepRequest(strategy="small_test", space={"epochs": [1, 2]}))
    with pytest.raises(ConfigError, match="must be a strategy name the server knows"):
        remote.start_sweep(SweepRequest(strategy="x/small_test.yaml", space={"epochs": [1]}))


def test_following_a_sweep_on_the_api_reads_until_its_ranking() -> None:
    """GET /sweeps/{id} until the sweep ended with its ranking: each change once; a sweep
    that ended without one is given ``result_grace_s`` to show it, then following stops."""
    plays = {
        "op_ranked": [RUNNING[1], RUNNING[1], RUNNING[3], _ended(), _ended()],
        "op_unranked": [RUNNING[1], make_sweep([make_trial(0, "failed")], "failed")],
    }
    reads: list[str] = []

    def server(request: httpx.Request) -> httpx.Response:
        sweep_id = request.url.path.rsplit("/", 1)[-1]
        assert request.url.path == f"/api/v1/sweeps/{sweep_id}"
        reads.append(sweep_id)
        answers = plays[sweep_id]
        body = answers.pop(0) if len(answers) > 1 else answers[0]
        return httpx.Response(200, content=msgspec.json.encode(body))

    client = ApiClient("http://api.test", transport=httpx.MockTransport(server))
    backend = ApiBackend(client, poll_s=0.001, result_grace_s=0.05)
    seen = list(backend.sweep_snapshots("op_ranked"))
    assert [s.operation.status for s in seen] == ["running", "running", "completed"]
    assert seen[-1].result is not None and reads.count("op_ranked") == 4
    unranked = list(backend.sweep_snapshots("op_unranked"))
    assert [s.operation.status for s in unranked] == ["running", "failed"]
    assert reads.count("op_unranked") > 2  # it waited for a ranking before it stopped


def test_a_terminal_too_short_for_every_trial_shows_the_training_ones_first() -> None:
    statuses = ["completed", "pending", "running", "pending", "completed", "running", "failed"]
    snapshot = make_sweep([make_trial(n, status) for n, status in enumerate(statuses)])
    screen = Terminal()
    SweepTable(screen, width=80, height=8).show(snapshot)  # room for 3 trial rows
    lines = screen.getvalue().splitlines()
    assert [line.split()[:2] for line in lines[3:6]] == [
        ["1", "pending"],
        ["2", "running"],
        ["5", "running"],
    ]
    assert lines[6] == "… 4 more trials (2 completed, 1 failed, 1 pending)"
    assert len(lines) == 7
