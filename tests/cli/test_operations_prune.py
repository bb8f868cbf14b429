"""``ktrdr operations prune`` forgets finished operations past the retention policy (the one
the API applies), on this machine's store only."""

from __future__ import annotations

from pathlib import Path

import pytest

from ktrdr_lib.cli.commands import operations_prune
from ktrdr_lib.cli.local import LocalBackend
from ktrdr_lib.cli.parser import build_parser
from ktrdr_lib.cli.remote import ApiBackend
from ktrdr_lib.errors import ConfigError
from ktrdr_lib.operations.orchestrator import TrainingOrchestrator
from ktrdr_lib.operations.store import OperationStore


def _ended(store: OperationStore, *ids: str) -> None:
    for op_id in ids:
        store.create(op_id)
        store.transition(op_id, "cancelled", cancellation_reason="test")


def test_prune_forgets_finished_operations_beyond_the_policy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    store = OperationStore(":memory:")
    orch = TrainingOrchestrator(home=tmp_path, store=store)
    try:
        _ended(store, "op_a", "op_b", "op_c")
        monkeypatch.setenv("KTRDR_KEEP_OPERATIONS", "2")
        args = build_parser().parse_args(["operations", "prune"])
        assert operations_prune(args, LocalBackend(orch)) == 0
        assert "forgot op_a" in capsys.readouterr().out
        assert sorted(r.operation_id for r in orch.list_operations().items) == ["op_b", "op_c"]

        args = build_parser().parse_args(["operations", "prune", "--operations-days", "0"])
        assert operations_prune(args, LocalBackend(orch)) == 0
        assert "2 finished operation(s) forgotten" in capsys.readouterr().out
        assert orch.list_operations().total_count == 0
    finally:
        orch.shutdown()


def test_prune_refuses_negative_settings_and_the_api(remote: ApiBackend) -> None:
    args = build_parser().parse_args(["operations", "prune", "--keep-operations", "-1"])
    with pytest.raises(ConfigError, match="--keep-operations must be >= 0"):
        operations_prune(args, remote)
    args = build_parser().parse_args(["operations", "prune"])
    with pytest.raises(ConfigError, match="this machine's store"):
        operations_prune(args, remote)
