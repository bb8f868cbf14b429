"""The sample summary in docs/getting-started.md is the one `ktrdr train` prints: the same rows
in the same order (its figures come from a 30-epoch run and vary; the rows do not)."""

from __future__ import annotations

import re
from pathlib import Path

from .sandbox import REPO

GUIDE = REPO / "docs" / "getting-started.md"


def _labels(text: str) -> list[str]:
    """The row labels: each line's text before the two-space gap that starts its value."""
    labels = []
    for line in text.splitlines():
        match = re.match(r"^(\s*\S.*?)\s{2,}\S", line)
        if match and not line.startswith("…"):
            labels.append(match.group(1).rstrip())
    return labels


def _sample() -> str:
    text = GUIDE.read_text()
    after = text.split("the result goes to stdout (long\nlines cut here):", 1)[1]
    return after.split("```\n", 2)[1]


def test_the_sample_summary_has_the_rows_ktrdr_train_prints(tmp_path: Path) -> None:
    from ktrdr_lib import TrainingOrchestrator
    from ktrdr_lib.cli.render import summary_text
    from ktrdr_lib.operations.store import OperationStore

    orch = TrainingOrchestrator(store=OperationStore(tmp_path / "operations.db"))
    try:
        op = orch.start_training(
            "rsi_mean_reversion", symbols=["AAPL"], timeframes=["1d"], epochs=1
        )
        printed = _labels(summary_text(op.wait()))
    finally:
        orch.shutdown()
    sample = _labels(_sample())
    assert sample[0] == "evaluation"
    assert "model" in sample
    missing = [label for label in sample if label not in printed]
    assert not missing, f"rows the sample shows that ktrdr train no longer prints: {missing}"
    in_order = [label for label in printed if label in sample]
    assert in_order == sample, "the sample's rows are out of the order ktrdr train prints them"
