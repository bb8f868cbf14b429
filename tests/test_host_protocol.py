"""The host protocol Structs: round trips, strict inputs, bounded status."""

from __future__ import annotations

import msgspec
import pytest

from ktrdr_lib.schemas import host as host_protocol
from ktrdr_lib.schemas.errors import ErrorBody
from ktrdr_lib.schemas.host import HostSessionRequest, HostSessionStatus, HostStopRequest
from ktrdr_lib.schemas.progress import ProgressSnapshot


def test_request_round_trips_with_defaults() -> None:
    raw = b'{"strategy_yaml": "name: x", "symbols": ["SYNTH"], "timeframes": ["1h"]}'
    request = msgspec.json.decode(raw, type=HostSessionRequest)
    assert request.seed == 42
    assert request.overrides is None
    assert request.client_operation_id is None
    encoded = msgspec.json.encode(request)
    assert msgspec.json.decode(encoded, type=HostSessionRequest) == request


@pytest.mark.parametrize(
    ("struct", "raw"),
    [
        (HostSessionRequest, b'{"strategy_yaml": "x", "symbols": [], "bogus": 1}'),
        (HostStopRequest, b'{"graceful": true, "bogus": 1}'),
    ],
)
def test_inputs_forbid_unknown_fields(struct: type[msgspec.Struct], raw: bytes) -> None:
    with pytest.raises(msgspec.ValidationError, match="bogus"):
        msgspec.json.decode(raw, type=struct)


def test_stop_request_defaults_to_abort() -> None:
    assert msgspec.json.decode(b"{}", type=HostStopRequest) == HostStopRequest(graceful=False)


def test_status_carries_the_progress_snapshot_unchanged() -> None:
    snapshot = ProgressSnapshot(
        operation_id="s1", sequence=7, status="running", epoch=2, host_session_id="s1"
    )
    status = HostSessionStatus(
        session_id="s1", status="running", progress=snapshot, created_at="2025-01-01T00:00:00Z"
    )
    decoded = msgspec.json.decode(msgspec.json.encode(status), type=HostSessionStatus)
    assert decoded.progress == snapshot
    assert decoded.model_available is False
    fields = {f.name for f in msgspec.structs.fields(HostSessionStatus)}
    assert not any("history" in name for name in fields)


def test_error_body_matches_the_api_shape() -> None:
    body = msgspec.to_builtins(ErrorBody(status_code=404, detail="x", error_type="E"))
    assert set(body) == {"status_code", "detail", "error_type", "success", "problems"}
    assert body["success"] is False


def test_public_names() -> None:
    assert len(set(host_protocol.__all__)) == len(host_protocol.__all__)
    for name in host_protocol.__all__:
        assert hasattr(host_protocol, name)
