"""SqliteDatabase: the stdlib ``sqlite3`` plumbing under the operation store.

WAL mode, one connection per thread (one shared, lock-guarded connection for ``":memory:"``),
``BEGIN IMMEDIATE`` for every write transaction so two writers never race a read-check-write,
and a generous busy timeout so concurrent writers wait instead of failing with "database is
locked".
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

__all__ = ["SqliteDatabase"]


class SqliteDatabase:
    """One SQLite database file (or a private in-memory one), safe to use from any thread.

    Args:
        path: database file, or ``":memory:"``. Parent directories are created.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self.memory = self.path == ":memory:"
        if not self.memory:
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._lock = threading.RLock()
        self._shared: sqlite3.Connection | None = None

    def _open(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self.path, timeout=30.0, isolation_level=None, check_same_thread=False
        )
        conn.execute("PRAGMA busy_timeout = 30000")
        conn.execute("PRAGMA foreign_keys = ON")
        if not self.memory:
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
        return conn

    def _connection(self) -> sqlite3.Connection:
        if self.memory:
            if self._shared is None:
                self._shared = self._open()
            return self._shared
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._open()
            self._local.conn = conn
        return conn

    def _guard(self) -> contextlib.AbstractContextManager[Any]:
        return self._lock if self.memory else contextlib.nullcontext()

    def executescript(self, script: str) -> None:
        """Run a schema script."""
        with self._guard():
            self._connection().executescript(script)

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A ``BEGIN IMMEDIATE`` transaction: committed on success, rolled back on error."""
        with self._guard():
            conn = self._connection()
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def read(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """All rows of a query, outside any write transaction."""
        with self._guard():
            return list(self._connection().execute(sql, params).fetchall())

    def size_bytes(self) -> int:
        """Bytes on disk (database plus WAL); 0 for ``:memory:``."""
        if self.memory:
            return 0
        total = 0
        for suffix in ("", "-wal", "-shm"):
            file = Path(self.path + suffix)
            if file.exists():
                total += file.stat().st_size
        return total

    def close(self) -> None:
        """Close this thread's connection (others close when their threads end)."""
        conn = self._shared if self.memory else getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            if self.memory:
                self._shared = None
            else:
                self._local.conn = None
