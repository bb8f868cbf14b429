"""``create_app()`` and ``ktrdr serve api`` train local runs the same way by default: one
default (``api.app.default_local_runner``: ``KTRDR_LOCAL_RUNNER``, else a child process per
run), checked on the orchestrator each one really builds."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

import api.server
from api import create_app
from api.app import default_local_runner
from ktrdr_lib.errors import ConfigError
from ktrdr_lib.runners.local import LocalTrainingRunner
from ktrdr_lib.runners.process import ProcessTrainingRunner


def local_runner_of(app: Any) -> Any:
    """The runner the app's orchestrator trains ``local`` runs with (built at start-up)."""
    with TestClient(app) as client:
        return client.app.state.orchestrator.runner


def served_app(monkeypatch: pytest.MonkeyPatch, **options: Any) -> Any:
    """The app ``ktrdr serve api`` would serve (uvicorn is not started)."""
    apps: list[Any] = []
    monkeypatch.setattr(api.server, "run_server", lambda app, **_: apps.append(app))
    api.server.serve(port=0, **options)
    return apps[0]


@pytest.fixture
def default_env(monkeypatch: pytest.MonkeyPatch, synthetic_data_dir: Path) -> None:
    monkeypatch.delenv("KTRDR_LOCAL_RUNNER", raising=False)
    monkeypatch.setenv("KTRDR_DATA_DIR", str(synthetic_data_dir))


@pytest.mark.usefixtures("default_env")
def test_create_app_and_serve_both_train_in_a_child_process_by_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert default_local_runner() == "process"
    assert isinstance(local_runner_of(create_app()), ProcessTrainingRunner)
    assert isinstance(local_runner_of(served_app(monkeypatch)), ProcessTrainingRunner)


@pytest.mark.usefixtures("default_env")
def test_both_follow_the_setting_and_an_explicit_choice_wins(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KTRDR_LOCAL_RUNNER", "thread")
    assert isinstance(local_runner_of(create_app()), LocalTrainingRunner)
    assert isinstance(local_runner_of(served_app(monkeypatch)), LocalTrainingRunner)
    chosen = create_app(local_runner="process")
    assert isinstance(local_runner_of(chosen), ProcessTrainingRunner)
    served = served_app(monkeypatch, local_runner="process")
    assert isinstance(local_runner_of(served), ProcessTrainingRunner)
    monkeypatch.setenv("KTRDR_LOCAL_RUNNER", "fork")
    with pytest.raises(ConfigError, match="KTRDR_LOCAL_RUNNER"):
        create_app()
