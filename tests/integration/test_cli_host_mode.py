"""``ktrdr train --mode host`` against a real training host on loopback: the run trains there
(the host at KTRDR_HOST_URL, its token in KTRDR_HOST_TOKEN) and its model comes back here."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from ktrdr_lib.cli import main
from ktrdr_lib.cli.commands import EXIT_OK
from ktrdr_lib.schemas.results import TrainingResult

from .conftest import start_server

pytestmark = pytest.mark.slow


def test_train_mode_host_trains_on_the_host_and_brings_the_model_back(
    small_strategy_file: Path,
    synthetic_data_dir: Path,
    isolated_home: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from host import create_app

    token = "cli-host-token-0123456789"
    server = start_server(
        create_app(
            token=token,
            home=tmp_path / "host_home",
            data_dir=synthetic_data_dir,
            progress_interval=0.05,
        )
    )
    try:
        monkeypatch.setenv("KTRDR_HOST_URL", server.url)
        monkeypatch.setenv("KTRDR_HOST_TOKEN", token)
        argv = ["train", str(small_strategy_file), "--mode", "host", "--epochs", "1", "--json"]
        status = main(argv)
    finally:
        server.stop()
    out = capsys.readouterr()
    assert status == EXIT_OK, out.err
    assert "[train] Epoch 1/1 · train_loss " in out.err
    result = msgspec.json.decode(out.out, type=TrainingResult)
    assert result.session_info.mode == "host"
    assert result.session_info.host_session_id
    assert result.artifacts.model_path is not None
    assert Path(result.artifacts.model_path).is_relative_to(isolated_home / "models")
