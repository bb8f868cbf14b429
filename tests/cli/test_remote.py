"""The API backend reads an OperationInfo back into the record it was made from."""

from __future__ import annotations

import msgspec
import pytest

from api.v1 import operation_info
from ktrdr_lib.cli.remote import operation_snapshot
from ktrdr_lib.errors import KtrdrError
from ktrdr_lib.schemas.operations import OperationSnapshot
from ktrdr_lib.schemas.progress import DeviceResources, ProgressSnapshot
from tests.builders import make_result


def _record(status: str, **fields: object) -> OperationSnapshot:
    progress = ProgressSnapshot(
        operation_id="op_1",
        sequence=12,
        status="running",
        phase="train",
        percentage=41.5,
        message="Epoch 2/3 · Batch 4/9",
        epoch=2,
        total_epochs=3,
        batch=4,
        total_batches=9,
        eta_s=12.5,
        metrics={"train_loss": 0.5, "val_loss": None, "train_loss_batch": 0.45},
        metrics_epoch=1,
        resources=DeviceResources(device="cuda:0", gpu_used=True, gpu_name="H200"),
        host_session_id="hs_1",
        updated_at="2026-01-01T00:00:05Z",
    )
    defaults: dict[str, object] = {
        "operation_id": "op_1",
        "operation_type": "training",
        "status": status,
        "mode": "host",
        "created_at": "2026-01-01T00:00:00Z",
        "started_at": "2026-01-01T00:00:01Z",
        "finished_at": None,
        "metadata": {"mode": "host", "parameters": {"strategy_name": "demo", "session_id": "hs_1"}},
        "progress": progress,
        "error_message": None,
        "cancellation_reason": "stop",
        "host_session_id": "hs_1",
        "result": None,
    }
    return OperationSnapshot(**{**defaults, **fields})  # type: ignore[arg-type]


@pytest.mark.parametrize("status", ["pending", "cancelling", "completed", "interrupted"])
def test_operation_info_reads_back_into_its_record(status: str) -> None:
    result = make_result("op_1") if status == "completed" else None
    error = "the host died" if status == "interrupted" else None
    record = _record(status, result=result, error_message=error)
    info = operation_info(record)
    assert info.status_detail == status
    assert operation_snapshot(info, result) == record
    # and so does its JSON, as the client receives it
    wire = msgspec.json.decode(msgspec.json.encode(info), type=type(info))
    assert operation_snapshot(wire, result) == record


def test_an_operation_info_without_a_snapshot_is_an_error() -> None:
    info = msgspec.structs.replace(
        operation_info(_record("running")),
        progress=msgspec.structs.replace(
            operation_info(_record("running")).progress, context={"phase": "sleeping"}
        ),
    )
    with pytest.raises(KtrdrError, match="unexpected shape"):
        operation_snapshot(info, None)
