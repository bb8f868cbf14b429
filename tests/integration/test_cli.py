"""The ``ktrdr`` command line, run as a real subprocess."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import SMALL_STRATEGY

pytestmark = pytest.mark.slow  # every test here trains a real model in a child process or server

CLI = [sys.executable, "-m", "ktrdr_lib.cli"]


def _run(*args: str, env_home: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KTRDR_HOME": str(env_home)}
    return subprocess.run([*CLI, *args], capture_output=True, text=True, env=env, timeout=timeout)


def test_train_json_result_and_progress(
    small_strategy_file: Path, synthetic_data_dir: Path, isolated_home: Path
) -> None:
    out = _run(
        "train",
        str(small_strategy_file),
        "--data-dir",
        str(synthetic_data_dir),
        "--epochs",
        "2",
        "--json",
        env_home=isolated_home,
    )
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert set(result) >= {"training_metrics", "test_metrics", "session_info", "data_summary"}
    assert result["training_metrics"]["epochs_completed"] == 2
    assert result["evaluation"]["headline"].startswith("test accuracy ")
    assert result["evaluation"]["economics"]["buy_and_hold"]["bars"] > 0
    assert "[load_data]" in out.stderr and "[train] Epoch 2/2" in out.stderr
    # batch-level lines are only drawn on a terminal; a pipe gets one line per epoch
    assert out.stderr.count("Batch ") == 0
    # Lightning's own announcements stay out of the terminal
    for noise in ("GPU available", "TPU available", "Tip:", "LeafSpec", "Trainer.fit` stopped"):
        assert noise not in out.stderr, out.stderr

    listed = _run("models", "list", "--json", env_home=isolated_home)
    assert [m["model_id"] for m in json.loads(listed.stdout)] == ["small_test/v1"]


def test_train_human_summary(
    small_strategy_file: Path, synthetic_data_dir: Path, isolated_home: Path
) -> None:
    out = _run(
        "train",
        str(small_strategy_file),
        "--data-dir",
        str(synthetic_data_dir),
        "--epochs",
        "1",
        "--no-save",
        env_home=isolated_home,
    )
    assert out.returncode == 0, out.stderr
    # led by the model against its strongest baseline; no placebo ran, and it says how to
    assert out.stdout.startswith("evaluation      test accuracy ")
    assert "(the strongest baseline, " in out.stdout.splitlines()[0]
    assert "\nplacebo         no placebo run: pass placebo_runs=N (ktrdr train --placebo N)" in (
        out.stdout
    )
    assert "majority-class baseline" in out.stdout
    models = [line for line in out.stdout.splitlines() if line.startswith("model ")]
    why = "no model was saved: saving was turned off for this run (save_model=False, --no-save)"
    assert models == [f"model           {why}"]  # none saved, and it says why
    assert "dead" not in out.stdout  # every input of the small strategy fires


def test_train_summary_names_dead_inputs(
    tmp_path: Path, synthetic_data_dir: Path, isolated_home: Path
) -> None:
    strategy = tmp_path / "dead_input.yaml"
    strategy.write_text(
        SMALL_STRATEGY.replace(
            "    overbought: {type: triangular, parameters: [60, 80, 100]}",
            "    overbought: {type: triangular, parameters: [60, 80, 100]}\n"
            "    impossible: {type: triangular, parameters: [150, 160, 170]}",
        ),
        encoding="utf-8",
    )
    out = _run(
        "train",
        str(strategy),
        "--data-dir",
        str(synthetic_data_dir),
        "--epochs",
        "1",
        "--no-save",
        env_home=isolated_home,
    )
    assert out.returncode == 0, out.stderr
    line = next(line for line in out.stdout.splitlines() if line.strip().startswith("inputs"))
    assert "dead (active on < 1 % of training rows): 1h_rsi_impossible" in line
    assert "notices" in out.stdout  # a legacy-layout file: where it trains unlike KTRDR


def test_errors_are_one_line_and_nonzero(isolated_home: Path, tmp_path: Path) -> None:
    out = _run("train", "no_such_strategy", env_home=isolated_home)
    assert out.returncode == 1
    assert out.stderr.count("\n") == 1
    assert out.stderr.startswith("error: Strategy file not found")
    assert "Traceback" not in out.stderr

    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\nindicators: [{name: nope}]\n", encoding="utf-8")
    out = _run("train", str(bad), env_home=isolated_home)
    assert out.returncode == 1 and out.stderr.count("\n") == 1
    assert "nope" in out.stderr


def test_strategies_validate_and_list(
    isolated_home: Path, tmp_path: Path, small_strategy_file: Path
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\nindicators: [{name: rsi, period: 0}]\n", encoding="utf-8")
    out = _run("strategies", "validate", str(small_strategy_file), str(bad), env_home=isolated_home)
    assert out.returncode == 1
    assert f"{small_strategy_file}: OK" in out.stdout
    assert "indicators[0].period" in out.stdout

    listed = _run("strategies", "list", env_home=isolated_home)
    assert listed.returncode == 0
    for name in ("rsi_mean_reversion", "macd_trend", "multi_timeframe_momentum"):
        assert name in listed.stdout


def test_ctrl_c_stops_training_cleanly(
    small_strategy_file: Path, synthetic_data_dir: Path, isolated_home: Path
) -> None:
    env = {**os.environ, "KTRDR_HOME": str(isolated_home)}
    proc = subprocess.Popen(
        [
            *CLI,
            "train",
            str(small_strategy_file),
            "--data-dir",
            str(synthetic_data_dir),
            "--epochs",
            "500",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert proc.stderr is not None
    seen = ""
    deadline = time.monotonic() + 120
    while "[train] Epoch 1/" not in seen and time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        seen += line
    assert "[train] Epoch 1/" in seen, seen
    proc.send_signal(signal.SIGINT)
    _stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert "cancelled" in stderr
    assert "Traceback" not in stderr
