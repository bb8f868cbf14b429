"""The caps both servers put on a request's form, checked at the door.

A request is refused with a 400 (a :class:`~ktrdr_lib.errors.ConfigError` naming the cap and
its setting) before it is decoded or its strategy parsed. Each cap has a safe default and a
setting:

* ``max_json_depth`` (``KTRDR_MAX_JSON_DEPTH``, 32): how deep a JSON body nests (decoding a
  body nested thousands deep exhausts the stack);
* ``max_strategy_bytes`` (``KTRDR_MAX_STRATEGY_BYTES``, 256 KiB): a strategy's text sent in a
  body (the host's ``strategy_yaml``, the ``content`` of ``/strategies/validate``).

The body size itself is the app's (``KTRDR_API_MAX_BODY`` / ``KTRDR_HOST_MAX_BODY``, 1 MB).
What a run may ask for (symbols, timeframes, override keys, epochs, parameters...) is the
core's to cap (:mod:`ktrdr_lib.pipeline.limits`, ``KTRDR_MAX_*``), whichever door the run
comes through. This module is framework free: the services check texts with it, and the
body-depth guard (:mod:`web.guards`) measures bodies with :func:`nests_deeper_than`.

Example:
    >>> RequestLimits(max_strategy_bytes=4).check_strategy_text("name: x", field="content")
    Traceback (most recent call last):
    ktrdr_lib.errors.ConfigError: content: the strategy text is 7 bytes; at most 4 bytes ...
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, fields

from ktrdr_lib.errors import ConfigError
from ktrdr_lib.settings import read_int

__all__ = ["LIMIT_SETTINGS", "RequestLimits", "nests_deeper_than"]

# The setting each cap is read from by RequestLimits.from_env().
LIMIT_SETTINGS: dict[str, str] = {
    "max_json_depth": "KTRDR_MAX_JSON_DEPTH",
    "max_strategy_bytes": "KTRDR_MAX_STRATEGY_BYTES",
}

# A JSON string (escapes included) or one bracket: strings are skipped whole, so brackets in
# text (a strategy's YAML flow lists) do not count as nesting.
_JSON_TOKEN = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]')
_OPENERS = frozenset(b"[{")


def nests_deeper_than(body: bytes, limit: int) -> bool:
    """Whether the JSON text ``body`` nests objects and arrays more than ``limit`` levels deep
    (``{}`` is one level, ``{"a": [1]}`` two).

    Brackets inside strings do not count; the scan stops at the first level past ``limit`` and
    costs nothing when the body has too few brackets to get there. Malformed text is measured
    as far as it goes (the decoder then says what is wrong with it).

    Example:
        >>> nests_deeper_than(b'{"overrides": {"model": {"layers": [8]}}}', limit=3)
        True
    """
    if body.count(b"[") + body.count(b"{") <= limit:
        return False
    depth = 0
    for match in _JSON_TOKEN.finditer(body):
        first = match.group()[0]
        if first in _OPENERS:
            depth += 1
            if depth > limit:
                return True
        elif first != 0x22:  # a closing bracket (0x22 opens a string)
            depth -= 1
    return False


@dataclass(frozen=True, kw_only=True)
class RequestLimits:
    """The caps on one request (see the module for each one's setting).

    Raises:
        ConfigError: a cap below 1.
    """

    max_json_depth: int = 32
    max_strategy_bytes: int = 256 * 1024

    def __post_init__(self) -> None:
        for field in fields(self):
            value = getattr(self, field.name)
            if not isinstance(value, int) or value < 1:
                raise ConfigError(
                    f"{field.name} ({LIMIT_SETTINGS[field.name]}) must be a whole number >= 1, "
                    f"got {value!r}"
                )

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> RequestLimits:
        """The caps from the settings (``env``, default ``os.environ``); unset ones keep
        their defaults (:mod:`ktrdr_lib.settings` declares them).

        Raises:
            ConfigError: a setting that is not a whole number >= 1 (named).
        """
        return cls(**{name: read_int(setting, env) for name, setting in LIMIT_SETTINGS.items()})

    def check_strategy_text(self, text: str, *, field: str) -> None:
        """Check the length of a strategy's text sent in ``field``.

        Raises:
            ConfigError: the text is over ``max_strategy_bytes`` (UTF-8).
        """
        size = len(text.encode("utf-8", "surrogatepass"))
        if size > self.max_strategy_bytes:
            raise ConfigError(
                f"{field}: the strategy text is {size:,} bytes; at most "
                f"{self.max_strategy_bytes:,} bytes ({LIMIT_SETTINGS['max_strategy_bytes']} on "
                "the server). A strategy needs a few KiB: look for pasted data or repeats."
            )
