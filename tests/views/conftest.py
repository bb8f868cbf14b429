"""Fixtures for the progress views: no display-mode settings from the caller's shell, and an
orchestrator that trains the small synthetic strategy with unthrottled progress."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from ktrdr_lib import TrainingOrchestrator
from ktrdr_lib.views.display import PROGRESS_ENV_VAR


@pytest.fixture(autouse=True)
def _no_progress_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(PROGRESS_ENV_VAR, raising=False)
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    for name in [n for n in os.environ if n.startswith("PAPERMILL_")]:
        monkeypatch.delenv(name)


@pytest.fixture
def orch(synthetic_data_dir: Path) -> Iterator[TrainingOrchestrator]:
    orchestrator = TrainingOrchestrator(data_dir=synthetic_data_dir, progress_interval=0.0)
    yield orchestrator
    orchestrator.shutdown(cancel_running=True, timeout=60)
