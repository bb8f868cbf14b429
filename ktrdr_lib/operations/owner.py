"""Which process owns an operation, and whether that process still runs.

An operation belongs to the process that created it; the owner string ``host:pid:start-time``
tells a later process whether the owner died (a reused pid has another start time).
"""

from __future__ import annotations

import os
import socket

__all__ = ["owner_alive", "process_owner"]


def process_owner() -> str:
    """This process as an owner string: ``host:pid:start-time``."""
    pid = os.getpid()
    return f"{socket.gethostname()}:{pid}:{_process_start(pid)}"


def _process_start(pid: int) -> str:
    """The process's start time in clock ticks since boot (Linux), else empty."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return stat.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return ""


def owner_alive(owner: str | None) -> bool:
    """Whether the process named by an ``owner`` string may still be running.

    Unknown formats and other hosts count as alive (we cannot tell, so we do not touch them).
    """
    if not owner:
        return False
    try:
        host, pid_text, started = owner.rsplit(":", 2)
        pid = int(pid_text)
    except ValueError:
        return True
    if host != socket.gethostname():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return _process_start(pid) == started
