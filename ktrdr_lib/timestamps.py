"""Timestamps as every record and snapshot writes them: ISO-8601 UTC ending in ``Z``."""

from __future__ import annotations

from datetime import UTC, datetime

__all__ = ["iso_utc", "utc_now"]


def utc_now() -> str:
    """Now as an ISO-8601 UTC string ending in ``Z``, always with microseconds.

    The fixed width keeps text order equal to time order (the store sorts on it).
    """
    return iso_utc(datetime.now(UTC))


def iso_utc(moment: datetime | float) -> str:
    """``moment`` (an aware datetime, or seconds since the epoch) in the same format."""
    if not isinstance(moment, datetime):
        moment = datetime.fromtimestamp(moment, UTC)
    return moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
