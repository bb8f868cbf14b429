"""Names that arrive in URLs and bodies are identifiers, never paths."""

from __future__ import annotations

import re

from ktrdr_lib.errors import ConfigError

__all__ = ["check_name"]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


def check_name(kind: str, value: str) -> str:
    """Return ``value`` if it is an identifier; ConfigError (400) naming ``kind`` otherwise."""
    if not _NAME.match(value) or ".." in value:
        raise ConfigError(
            f"{kind} {value!r} is not a valid name: use letters, digits, '_', '-' or '.', "
            "starting with a letter or digit (no path separators)"
        )
    return value
