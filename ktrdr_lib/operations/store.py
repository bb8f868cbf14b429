"""The SQLite operation store: records, latest progress snapshots and epoch histories.

Status machine (final states are never overwritten)::

    pending ──▶ running ──▶ completed
       │          │  └────▶ failed
       │          ▼
       │      cancelling ──▶ cancelled | completed (graceful) | failed
       └──────────────────▶ cancelled | failed
    running/cancelling found at start-up (local mode, or a host run
    that cannot be re-attached)  ──▶ interrupted

An operation belongs to the process that created it (``owner``). A host-mode operation whose
owner died while its host session ran can be taken over by a new process
(:meth:`OperationStore.claim_orphans`), which rebuilds the run from the stored context (the
``context`` column, the msgspec JSON of the TrainingOperationContext) and re-attaches to the
session.

The store is stdlib ``sqlite3`` in WAL mode under ``KTRDR_HOME``
(:class:`~ktrdr_lib.operations.sqlite.SqliteDatabase`); every state transition runs in
``BEGIN IMMEDIATE``. ``":memory:"`` gives a private in-memory store for tests.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import msgspec

from ktrdr_lib.errors import ConfigError, NotFoundError, StateConflictError
from ktrdr_lib.operations.owner import owner_alive, process_owner
from ktrdr_lib.operations.sqlite import SqliteDatabase
from ktrdr_lib.schemas.operations import OperationSnapshot
from ktrdr_lib.schemas.progress import EpochHistoryRow, ProgressSnapshot
from ktrdr_lib.schemas.results import TrainingResult
from ktrdr_lib.schemas.status import FINAL_STATUSES, CancelKind, OperationStatus
from ktrdr_lib.timestamps import utc_now

__all__ = ["OperationStore"]

_ALLOWED: dict[str, frozenset[str]] = {
    "pending": frozenset({"running", "cancelling", "cancelled", "failed", "interrupted"}),
    "running": frozenset({"cancelling", "completed", "failed", "cancelled", "interrupted"}),
    "cancelling": frozenset({"completed", "failed", "cancelled", "interrupted"}),
}


_SCHEMA = """
CREATE TABLE IF NOT EXISTS operations (
    operation_id TEXT PRIMARY KEY,
    operation_type TEXT NOT NULL,
    status TEXT NOT NULL,
    mode TEXT NOT NULL,
    created_at TEXT NOT NULL,
    started_at TEXT,
    finished_at TEXT,
    metadata BLOB NOT NULL,
    progress BLOB NOT NULL,
    error_message TEXT,
    cancellation_reason TEXT,
    host_session_id TEXT,
    result BLOB,
    owner TEXT,
    context BLOB,
    cancel_kind TEXT
);
CREATE INDEX IF NOT EXISTS operations_status ON operations(status);
CREATE INDEX IF NOT EXISTS operations_created ON operations(created_at);
CREATE TABLE IF NOT EXISTS epoch_history (
    operation_id TEXT NOT NULL REFERENCES operations(operation_id) ON DELETE CASCADE,
    epoch INTEGER NOT NULL,
    row BLOB NOT NULL,
    PRIMARY KEY (operation_id, epoch)
);
CREATE TABLE IF NOT EXISTS sweep_results (
    operation_id TEXT PRIMARY KEY REFERENCES operations(operation_id) ON DELETE CASCADE,
    body BLOB NOT NULL
);
"""

# Nullable columns added after the first release: ALTER TABLE adds them to older databases.
_ADDED_COLUMNS: tuple[tuple[str, str], ...] = (("context", "BLOB"), ("cancel_kind", "TEXT"))

_COLUMNS = (
    "operation_id, operation_type, status, mode, created_at, started_at, finished_at, "
    "metadata, progress, error_message, cancellation_reason, host_session_id, result, "
    "cancel_kind"
)
_encode = msgspec.json.Encoder().encode
_decode_snapshot = msgspec.json.Decoder(ProgressSnapshot).decode
_decode_dict = msgspec.json.Decoder(dict[str, Any]).decode
_decode_result = msgspec.json.Decoder(TrainingResult).decode
_decode_epoch = msgspec.json.Decoder(EpochHistoryRow).decode


class OperationStore:
    """SQLite-backed operation records and epoch histories.

    Args:
        path: database file, or ``":memory:"`` for a private in-memory store. Parent
            directories are created.

    Thread-safe: one connection per thread (one shared connection for ``:memory:``, guarded
    by a lock).
    """

    def __init__(self, path: str | Path) -> None:
        self._db = SqliteDatabase(path)
        self.path = self._db.path
        self._db.executescript(_SCHEMA)
        self._add_missing_columns()

    def _add_missing_columns(self) -> None:
        """Bring a database made by an older version up to this schema (idempotent)."""
        with self._transaction() as conn:
            present = {row[1] for row in conn.execute("PRAGMA table_info(operations)")}
            for name, kind in _ADDED_COLUMNS:
                if name not in present:
                    conn.execute(f"ALTER TABLE operations ADD COLUMN {name} {kind}")

    def _transaction(self) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        return self._db.transaction()

    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self._db.read(sql, params)

    # -- records -----------------------------------------------------------------------------

    def create(
        self,
        operation_id: str,
        *,
        operation_type: str = "training",
        mode: str = "local",
        metadata: dict[str, Any] | None = None,
        progress: ProgressSnapshot | None = None,
        owner: str | None = None,
        context: Any = None,
    ) -> OperationSnapshot:
        """Insert a new ``pending`` operation owned by this process (or ``owner``).

        Args:
            operation_id: the new operation's id.
            operation_type: what kind of operation (``training``).
            mode: where it runs (``local`` or ``host``).
            metadata: the request as views show it.
            progress: the first snapshot (default: an empty ``pending`` one).
            owner: the owning process (default: this one, see :func:`process_owner`).
            context: what a process needs to take the run over (the msgspec-encodable
                TrainingOperationContext); read back with :meth:`stored_context`.

        Raises:
            StateConflictError: an operation with that id exists already.
        """
        now = utc_now()
        snapshot = progress or ProgressSnapshot(operation_id=operation_id, updated_at=now)
        try:
            with self._transaction() as conn:
                conn.execute(
                    f"INSERT INTO operations ({_COLUMNS}, owner, context) VALUES "
                    "(?, ?, 'pending', ?, ?, NULL, NULL, ?, ?, NULL, NULL, NULL, NULL, NULL, ?, ?)",
                    (
                        operation_id,
                        operation_type,
                        mode,
                        now,
                        _encode(metadata or {}),
                        _encode(snapshot),
                        owner or process_owner(),
                        None if context is None else _encode(context),
                    ),
                )
        except sqlite3.IntegrityError as exc:
            raise StateConflictError(
                f"operation {operation_id} exists already; use a new id"
            ) from exc
        return self.get(operation_id)

    def get(self, operation_id: str) -> OperationSnapshot:
        """The record; NotFoundError when there is none."""
        rows = self._read(
            f"SELECT {_COLUMNS} FROM operations WHERE operation_id = ?", (operation_id,)
        )
        if not rows:
            raise NotFoundError(f"Operation not found: {operation_id}")
        return _record(rows[0])

    def stored_context(self, operation_id: str) -> bytes | None:
        """The JSON of the context stored with the operation (``None`` when none was).

        Raises:
            NotFoundError: unknown id.
        """
        rows = self._read("SELECT context FROM operations WHERE operation_id = ?", (operation_id,))
        if not rows:
            raise NotFoundError(f"Operation not found: {operation_id}")
        raw = rows[0][0]
        return None if raw is None else bytes(raw)

    def owner(self, operation_id: str) -> str | None:
        """The process that owns the operation (``host:pid:start-time``).

        Raises:
            NotFoundError: unknown id.
        """
        rows = self._read("SELECT owner FROM operations WHERE operation_id = ?", (operation_id,))
        if not rows:
            raise NotFoundError(f"Operation not found: {operation_id}")
        owner: str | None = rows[0][0]
        return owner

    def exists(self, operation_id: str) -> bool:
        """Whether an operation with this id is stored."""
        return bool(self._read("SELECT 1 FROM operations WHERE operation_id = ?", (operation_id,)))

    def list_records(
        self,
        *,
        status: str | Sequence[str] | None = None,
        operation_type: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> tuple[list[OperationSnapshot], int]:
        """Records newest first, and the total that matched before paging."""
        if limit < 0 or offset < 0:
            raise ConfigError(f"limit and offset must be >= 0, got limit={limit} offset={offset}")
        where, params = [], []
        if status is not None:
            statuses = [status] if isinstance(status, str) else list(status)
            where.append(f"status IN ({', '.join('?' for _ in statuses)})")
            params.extend(statuses)
        if operation_type is not None:
            where.append("operation_type = ?")
            params.append(operation_type)
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        total = int(self._read(f"SELECT COUNT(*) FROM operations{clause}", params)[0][0])
        rows = self._read(
            f"SELECT {_COLUMNS} FROM operations{clause} "
            "ORDER BY created_at DESC, operation_id DESC LIMIT ? OFFSET ?",
            [*params, limit, offset],
        )
        return [_record(r) for r in rows], total

    def count(self, statuses: Sequence[str]) -> int:
        """How many operations are in any of ``statuses``."""
        marks = ", ".join("?" for _ in statuses)
        return int(
            self._read(f"SELECT COUNT(*) FROM operations WHERE status IN ({marks})", statuses)[0][0]
        )

    def transition(
        self,
        operation_id: str,
        status: OperationStatus,
        *,
        error_message: str | None = None,
        cancellation_reason: str | None = None,
        cancel_kind: CancelKind | None = None,
        result: TrainingResult | None = None,
    ) -> OperationSnapshot:
        """Move to ``status`` if the state machine allows it.

        A final state is never overwritten: transitions out of one raise StateConflictError,
        and re-asserting it returns the record unchanged. Timestamps (started/finished) are
        set here. The first cancellation reason stays, except that an ``abort`` escalating a
        stored ``graceful`` cancel replaces it (and the kind) with its own; a graceful request
        never downgrades an abort. Re-asserting a non-final status (``cancelling`` again) is
        how an escalation is stored.
        """
        now = utc_now()
        with self._transaction() as conn:
            row = conn.execute(
                "SELECT status, cancel_kind FROM operations WHERE operation_id = ?",
                (operation_id,),
            ).fetchone()
            if row is None:
                raise NotFoundError(f"Operation not found: {operation_id}")
            current = row[0]
            if status == current and current in FINAL_STATUSES:
                # Idempotent, and a final state is never overwritten, not even by itself
                # (its finished_at, error and result stay as they were).
                return _record(
                    conn.execute(
                        f"SELECT {_COLUMNS} FROM operations WHERE operation_id = ?",
                        (operation_id,),
                    ).fetchone()
                )
            if status != current and status not in _ALLOWED.get(current, frozenset()):
                raise StateConflictError(
                    f"operation {operation_id} is {current}; it cannot become {status}"
                )
            sets = ["status = ?"]
            params: list[Any] = [status]
            if status == "running":
                sets.append("started_at = COALESCE(started_at, ?)")
                params.append(now)
            if status in FINAL_STATUSES:
                sets.append("finished_at = ?")
                params.append(now)
            if error_message is not None:
                sets.append("error_message = ?")
                params.append(error_message)
            escalating = cancel_kind == "abort" and row[1] == "graceful"
            if cancellation_reason is not None:
                if escalating:
                    sets.append("cancellation_reason = ?")
                else:
                    sets.append("cancellation_reason = COALESCE(cancellation_reason, ?)")
                params.append(cancellation_reason)
            if cancel_kind is not None and (row[1] is None or escalating):
                sets.append("cancel_kind = ?")
                params.append(cancel_kind)
            if result is not None:
                sets.append("result = ?")
                params.append(_encode(result))
            conn.execute(
                f"UPDATE operations SET {', '.join(sets)} WHERE operation_id = ?",
                [*params, operation_id],
            )
        return self.get(operation_id)

    def save_progress(self, snapshot: ProgressSnapshot) -> bool:
        """Store the snapshot if it is newer than the stored one; True when written."""
        with self._transaction() as conn:
            cur = conn.execute(
                "UPDATE operations SET progress = ? WHERE operation_id = ? "
                "AND json_extract(progress, '$.sequence') < ?",
                (_encode(snapshot), snapshot.operation_id, snapshot.sequence),
            )
            return cur.rowcount > 0

    def set_host_session(self, operation_id: str, session_id: str) -> None:
        """Remember the remote session that runs this operation."""
        with self._transaction() as conn:
            conn.execute(
                "UPDATE operations SET host_session_id = ? WHERE operation_id = ?",
                (session_id, operation_id),
            )

    def set_sweep_result(self, operation_id: str, body: bytes) -> None:
        """Keep a finished sweep's result (its encoded
        :class:`~ktrdr_lib.schemas.sweeps.SweepResult`)."""
        with self._transaction() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO sweep_results (operation_id, body) VALUES (?, ?)",
                (operation_id, body),
            )

    def sweep_result(self, operation_id: str) -> bytes | None:
        """A sweep's stored result, or ``None`` while it runs."""
        rows = self._read("SELECT body FROM sweep_results WHERE operation_id = ?", (operation_id,))
        return bytes(rows[0][0]) if rows else None

    def append_epoch(self, operation_id: str, row: EpochHistoryRow) -> None:
        """Add (or replace) one epoch's history row."""
        with self._transaction() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO epoch_history (operation_id, epoch, row) VALUES (?, ?, ?)",
                (operation_id, row.epoch, _encode(row)),
            )

    def epoch_history(self, operation_id: str) -> list[EpochHistoryRow]:
        """Epoch rows in order; NotFoundError for an unknown operation."""
        self.get(operation_id)
        rows = self._read(
            "SELECT row FROM epoch_history WHERE operation_id = ? ORDER BY epoch", (operation_id,)
        )
        return [_decode_epoch(r[0]) for r in rows]

    def mark_interrupted(self, *, mode: str = "local", reason: str) -> list[str]:
        """Mark active operations of ``mode`` whose owning process is gone ``interrupted``.

        Called at start-up. An operation belongs to the process that created it (host name,
        pid and that process's start time); one whose owner still runs on this host, or
        whose owner is on another host, is left alone, so two processes can share a store.
        """
        now = utc_now()
        with self._transaction() as conn:
            rows = conn.execute(
                "SELECT operation_id, owner FROM operations WHERE mode = ? AND status IN "
                "('pending', 'running', 'cancelling')",
                (mode,),
            ).fetchall()
            ids = [op_id for op_id, owner in rows if not owner_alive(owner)]
            for op_id in ids:
                conn.execute(
                    "UPDATE operations SET status = 'interrupted', finished_at = ?, "
                    "error_message = ? WHERE operation_id = ?",
                    (now, reason, op_id),
                )
        return ids

    def claim_orphans(self, *, mode: str = "host", owner: str | None = None) -> list[str]:
        """Take over running host sessions whose owning process is gone; returns their ids.

        Called at start-up by a process that can follow them. An operation qualifies when it
        is ``running`` or ``cancelling`` in ``mode``, has a host session id and a stored
        context, and its owner is gone (see :func:`owner_alive`); its owner becomes this
        process (or ``owner``). One transaction decides, so two processes starting at once
        never claim the same operation. Operations left out (no session yet, no context) are
        for :meth:`mark_interrupted`.
        """
        me = owner or process_owner()
        with self._transaction() as conn:
            rows = conn.execute(
                "SELECT operation_id, owner FROM operations WHERE mode = ? AND status IN "
                "('running', 'cancelling') AND host_session_id IS NOT NULL "
                "AND context IS NOT NULL ORDER BY created_at, operation_id",
                (mode,),
            ).fetchall()
            ids = [op_id for op_id, current in rows if not owner_alive(current)]
            for op_id in ids:
                conn.execute("UPDATE operations SET owner = ? WHERE operation_id = ?", (me, op_id))
        return ids

    def delete(self, operation_ids: Sequence[str]) -> int:
        """Forget final operations (and their epoch history); returns how many were deleted.

        Active operations are never deleted.
        """
        if not operation_ids:
            return 0
        marks = ", ".join("?" for _ in operation_ids)
        with self._transaction() as conn:
            for table in ("epoch_history", "sweep_results"):
                conn.execute(
                    f"DELETE FROM {table} WHERE operation_id IN ({marks}) AND operation_id IN "
                    "(SELECT operation_id FROM operations WHERE status NOT IN "
                    "('pending', 'running', 'cancelling'))",
                    list(operation_ids),
                )
            cur = conn.execute(
                f"DELETE FROM operations WHERE operation_id IN ({marks}) AND status NOT IN "
                "('pending', 'running', 'cancelling')",
                list(operation_ids),
            )
            return int(cur.rowcount)

    def size_bytes(self) -> int:
        """Bytes on disk (database plus WAL); 0 for ``:memory:``."""
        return self._db.size_bytes()

    def close(self) -> None:
        """Close this thread's connection (others close when their threads end)."""
        self._db.close()


def _record(row: tuple[Any, ...]) -> OperationSnapshot:
    return OperationSnapshot(
        operation_id=row[0],
        operation_type=row[1],
        status=row[2],
        mode=row[3],
        created_at=row[4],
        started_at=row[5],
        finished_at=row[6],
        metadata=_decode_dict(row[7]),
        progress=msgspec.structs.replace(_decode_snapshot(row[8]), status=row[2]),
        error_message=row[9],
        cancellation_reason=row[10],
        host_session_id=row[11],
        result=_decode_result(row[12]) if row[12] is not None else None,
        cancel_kind=row[13],
    )
