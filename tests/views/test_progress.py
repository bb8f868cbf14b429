"""TrainingProgress as the orchestrator opens it: ``train()`` returns at once, ``off`` draws
nothing."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from ktrdr_lib import ConfigError, TrainingOrchestrator
from ktrdr_lib.operations.handle import OperationHandle

pytest.importorskip("ipywidgets")


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
