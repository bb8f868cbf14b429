"""Which bind addresses are private to this machine."""

from __future__ import annotations

from ktrdr_lib.http.addresses import is_loopback


def test_loopback_addresses() -> None:
    assert is_loopback("127.0.0.1")
    assert is_loopback("::1")
    assert is_loopback("localhost")


def test_other_addresses() -> None:
    assert not is_loopback("0.0.0.0")
    assert not is_loopback("10.1.2.3")
    assert not is_loopback("example.invalid")
