"""The request caps both servers check at the door (:mod:`web.limits`), without a server."""

from __future__ import annotations

import json

import pytest

from ktrdr_lib.errors import ConfigError
from web.auth import MIN_TOKEN_LENGTH, check_token
from web.limits import RequestLimits, nests_deeper_than


def _nested(levels: int) -> bytes:
    """A body ``levels + 1`` deep, objects and arrays alternating."""
    value: object = 1
    for level in range(levels):
        value = {"a": value} if level % 2 else [value]
    return json.dumps({"overrides": value}).encode()


@pytest.mark.parametrize("levels", [0, 5, 31])
def test_nesting_within_the_limit_passes(levels: int) -> None:
    body = _nested(levels)
    depth = body.count(b"[") + body.count(b"{")  # no strings with brackets in these bodies
    assert nests_deeper_than(body, depth) is False
    assert nests_deeper_than(body, depth - 1) is True


def test_brackets_inside_strings_are_not_nesting() -> None:
    text = {"content": "a: " + "[" * 500 + '"\\"{' + "]" * 500, "x": [[1]]}
    body = json.dumps(text).encode()
    assert nests_deeper_than(body, 3) is False
    assert nests_deeper_than(body, 2) is True
    assert nests_deeper_than(b"[" * 100_000, 32) is True  # malformed: measured as far as it goes


def test_strategy_text_cap_counts_bytes() -> None:
    limits = RequestLimits(max_strategy_bytes=10)
    limits.check_strategy_text("x" * 10, field="strategy_yaml")
    with pytest.raises(ConfigError, match=r"strategy_yaml: .* is 12 bytes; at most 10 bytes"):
        limits.check_strategy_text("é" * 6, field="strategy_yaml")  # 6 characters, 12 bytes


def test_limits_come_from_the_settings_and_bad_ones_are_named() -> None:
    limits = RequestLimits.from_env({"KTRDR_MAX_JSON_DEPTH": "5", "KTRDR_MAX_STRATEGY_BYTES": ""})
    assert limits.max_json_depth == 5
    assert limits.max_strategy_bytes == RequestLimits().max_strategy_bytes
    for raw in ("0", "-3", "lots"):
        with pytest.raises(ConfigError, match=f"KTRDR_MAX_STRATEGY_BYTES='{raw}' is not a whole"):
            RequestLimits.from_env({"KTRDR_MAX_STRATEGY_BYTES": raw})
    with pytest.raises(ConfigError, match=r"max_json_depth \(KTRDR_MAX_JSON_DEPTH\) must be"):
        RequestLimits(max_json_depth=0)
    assert RequestLimits.from_env({"KTRDR_MAX_JSON_DEPTH": "1_000"}).max_json_depth == 1000


@pytest.mark.parametrize("token", ["", "   ", "short-token", " padded-token-0123456789 "])
def test_empty_short_or_padded_tokens_are_refused(token: str) -> None:
    with pytest.raises(ConfigError, match="KTRDR_API_TOKEN") as caught:
        check_token(token, setting="KTRDR_API_TOKEN")
    message = str(caught.value)
    if not token.strip():  # an empty one read as "no authentication" before
        assert "is set but empty: unset it to run without authentication" in message
    else:
        assert str(MIN_TOKEN_LENGTH) in message or "white space" in message


def test_a_long_token_or_none_is_kept() -> None:
    assert check_token(None, setting="T") is None
    assert check_token("x" * MIN_TOKEN_LENGTH, setting="T") == "x" * MIN_TOKEN_LENGTH
