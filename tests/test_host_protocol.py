"""The host protocol Structs: round trips, strict inputs, bounded status."""

from __future__ import annotations

import re

import msgspec
import pytest

from ktrdr_lib.schemas import host as host_protocol
from ktrdr_lib.schemas.errors import ErrorBody
from ktrdr_lib.schemas.host import (
    MAX_ERROR_CHARS,
    MAX_REASON_CHARS,
    MAX_STRATEGY_YAML_CHARS,
    HostHealth,
    HostSessionCreated,
    HostSessionRequest,
    HostSessionStatus,
    HostStopRequest,
)
from ktrdr_lib.schemas.progress import ProgressSnapshot
from ktrdr_lib.schemas.requests import TrainingRequest


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


def _uncapped(info: msgspec.inspect.Type, where: str) -> list[str]:
    """Paths of strings (and lists, dicts) in ``info`` with no length cap; a nested Struct from
    another module is that module's to bound (the client's answer caps bound it here)."""
    if isinstance(info, msgspec.inspect.StrType):
        return [] if info.max_length is not None or info.pattern is not None else [where]
    if isinstance(info, msgspec.inspect.UnionType):
        return [path for option in info.types for path in _uncapped(option, where)]
    if isinstance(info, msgspec.inspect.ListType):
        own = [] if info.max_length is not None else [f"{where} (length)"]
        return own + _uncapped(info.item_type, f"{where}[]")
    if isinstance(info, msgspec.inspect.DictType):
        own = [] if info.max_length is not None else [f"{where} (size)"]
        keys = _uncapped(info.key_type, f"{where} key")
        return own + keys + _uncapped(info.value_type, f"{where} value")
    return []


def test_every_string_field_of_the_protocol_has_a_cap() -> None:
    structs = [
        getattr(host_protocol, name)
        for name in host_protocol.__all__
        if isinstance(getattr(host_protocol, name), type)
        and issubclass(getattr(host_protocol, name), msgspec.Struct)
    ]
    assert len(structs) == 7
    # TrainingRequest's own fields are bounded there (and by the run caps), not here
    inherited = {f.name for f in msgspec.structs.fields(TrainingRequest)} - {
        "symbols",
        "timeframes",
    }
    uncapped = []
    for struct in structs:
        info = msgspec.inspect.type_info(struct)
        assert isinstance(info, msgspec.inspect.StructType)
        for field in info.fields:
            if field.name in inherited or field.name == "devices":  # devices: see below
                continue
            uncapped += _uncapped(field.type, f"{struct.__name__}.{field.name}")
    assert uncapped == []
    devices = {f.name: f.type for f in msgspec.inspect.type_info(HostHealth).fields}["devices"]
    assert isinstance(devices, msgspec.inspect.ListType) and devices.max_length == 64
    assert _uncapped(devices.item_type, "devices[]") == ["devices[] (size)"]  # bounded by caps


def _request(**fields: object) -> bytes:
    body = {"strategy_yaml": "name: x", "symbols": ["SYNTH"], "timeframes": ["1h"], **fields}
    return msgspec.json.encode(body)


@pytest.mark.parametrize(
    ("struct", "raw", "field"),
    [
        (
            HostSessionRequest,
            _request(strategy_yaml="x" * (MAX_STRATEGY_YAML_CHARS + 1)),
            "strategy_yaml",
        ),
        (HostSessionRequest, _request(symbols=["S" * 65]), "symbols[0]"),
        (HostSessionRequest, _request(timeframes=["1h"] * 65), "timeframes"),
        (HostSessionRequest, _request(client_operation_id="o" * 129), "client_operation_id"),
        (
            HostStopRequest,
            msgspec.json.encode({"reason": "r" * (MAX_REASON_CHARS + 1)}),
            "reason",
        ),
        (
            HostSessionCreated,
            msgspec.json.encode({"session_id": "s" * 129, "status": "pending"}),
            "session_id",
        ),
        (
            HostSessionStatus,
            msgspec.json.encode(
                {
                    "session_id": "s1",
                    "status": "failed",
                    "progress": {"operation_id": "s1"},
                    "error_message": "e" * (MAX_ERROR_CHARS + 1),
                    "created_at": "2025-01-01T00:00:00Z",
                }
            ),
            "error_message",
        ),
    ],
)
def test_a_string_over_its_cap_is_refused_naming_the_field(
    struct: type[msgspec.Struct], raw: bytes, field: str
) -> None:
    with pytest.raises(msgspec.ValidationError, match=re.escape(f"at `$.{field}`")):
        msgspec.json.decode(raw, type=struct)
