"""SQLite storage: WAL, synchronous=FULL, one write connection, one committed-data reader.

Threading. The driver calls a transaction's methods on the event loop thread and then
`commit()` from a worker thread (asyncio.to_thread), so both connections are opened with
`check_same_thread=False`. That is safe because exactly one thread uses the write connection at
a time: one transaction is open at a time, and its owner hands it to the worker only for the
commit. The reader connection is guarded by a lock, so any thread may use it.

Durability. `synchronous=FULL` in WAL mode fsyncs the WAL at every commit: when `commit()`
returns, the batch survives a power cut (rule 1, "commit before you tell").

Speed. Every SQL text is a module constant, so sqlite3's statement cache prepares each one
once per connection; journal appends go through `executemany`. The store keeps a copy of the
invocation rows it last committed (`ROW_CACHE` of them), so the partition's usual read of the
row it wrote one event earlier costs no SQL, and a row known to exist is written back with an
`UPDATE` of the columns that can change (status only when it did: it is in a partial index),
which dirties fewer pages, so each commit writes fewer WAL frames.
"""

from __future__ import annotations

import contextlib
import dataclasses
import operator
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Final

from perdure.server.storage import codec, migrations
from perdure.server.storage.api import (
    DeploymentRow,
    InvocationRow,
    JournalEntry,
    PromiseRow,
    ServiceRow,
    StorageError,
    TimerRow,
)
from perdure.server.storage.sqlite_errors import storage_error
from perdure.server.storage.sqlite_queries import SqliteReads

# How long a statement waits for a lock another process holds before failing. Only a second
# process on the same file (a misconfiguration) or a checkpoint can hold one; DBOS waits 30 s,
# but a server should report a stuck store sooner than its clients give up.
BUSY_TIMEOUT_S = 5.0
# sqlite3 keeps this many prepared statements per connection; Perdure uses fewer than 60.
STATEMENT_CACHE = 128
# "PRDU": marks the file as Perdure's, so a stranger's SQLite database is refused, not migrated.
APPLICATION_ID = 0x50524455

_PRAGMAS = (
    "PRAGMA synchronous = FULL",
    "PRAGMA temp_store = MEMORY",  # savepoint sub-journals stay in memory
    "PRAGMA cache_size = -16000",  # 16 MiB of page cache per connection (the default is 2 MiB)
    "PRAGMA journal_size_limit = 67108864",  # shrink the WAL back to 64 MiB after a big batch
)

_PUT_INVOCATION = (
    "INSERT INTO invocations (id, service, handler, key, status, created_at, modified_at, data,"
    " outcome_value) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET"
    " service = excluded.service, handler = excluded.handler, key = excluded.key,"
    " status = excluded.status, created_at = excluded.created_at,"
    " modified_at = excluded.modified_at, data = excluded.data,"
    " outcome_value = excluded.outcome_value"
)
# A row known to exist: its target and creation time never change, so neither do the indexes
# on them; status is written only when it changed (`invocations_active` filters on it).
_UPDATE_INVOCATION = (
    "UPDATE invocations SET modified_at = ?, data = ?, outcome_value = ? WHERE id = ?"
)
_UPDATE_INVOCATION_STATUS = (
    "UPDATE invocations SET status = ?, modified_at = ?, data = ?, outcome_value = ? WHERE id = ?"
)
_DELETE_INVOCATION = "DELETE FROM invocations WHERE id = ?"
_APPEND_JOURNAL = (
    "INSERT INTO journal (invocation_id, idx, message_type, payload, notification_key,"
    " is_failure) VALUES (?, ?, ?, ?, ?, ?)"
)
_DELETE_JOURNAL = "DELETE FROM journal WHERE invocation_id = ?"
_SET_STATE = "INSERT OR REPLACE INTO state (service, key, name, value) VALUES (?, ?, ?, ?)"
_CLEAR_STATE = "DELETE FROM state WHERE service = ? AND key = ? AND name = ?"
_CLEAR_ALL_STATE = "DELETE FROM state WHERE service = ? AND key = ?"
_SET_LOCK = "INSERT OR REPLACE INTO locks (service, key, invocation_id) VALUES (?, ?, ?)"
_RELEASE_LOCK = "DELETE FROM locks WHERE service = ? AND key = ?"
_PUSH_INBOX = (
    "INSERT INTO inbox (service, key, seq, invocation_id)"
    " SELECT ?1, ?2, COALESCE(MAX(seq), 0) + 1, ?3 FROM inbox WHERE service = ?1 AND key = ?2"
)
_POP_INBOX = (
    "DELETE FROM inbox WHERE service = ?1 AND key = ?2 AND seq ="
    " (SELECT MIN(seq) FROM inbox WHERE service = ?1 AND key = ?2) RETURNING invocation_id"
)
_REMOVE_FROM_INBOX = "DELETE FROM inbox WHERE service = ? AND key = ? AND invocation_id = ?"
_PUT_TIMER = (
    "INSERT INTO timers (id, fire_at, invocation_id, kind, completion_id) VALUES (?, ?, ?, ?, ?)"
    " ON CONFLICT (id) DO UPDATE SET fire_at = excluded.fire_at,"
    " invocation_id = excluded.invocation_id, kind = excluded.kind,"
    " completion_id = excluded.completion_id"
)
_DELETE_TIMER = "DELETE FROM timers WHERE id = ?"
_PUT_PROMISE = (
    "INSERT OR REPLACE INTO promises (service, key, name, data, value) VALUES (?, ?, ?, ?, ?)"
)
_DELETE_PROMISES = "DELETE FROM promises WHERE service = ? AND key = ?"
_PUT_IDEMPOTENCY = (
    "INSERT OR REPLACE INTO idempotency (service, key, handler, idem_key, invocation_id)"
    " VALUES (?, ?, ?, ?, ?)"
)
_DELETE_IDEMPOTENCY = (
    "DELETE FROM idempotency WHERE service = ? AND key = ? AND handler = ? AND idem_key = ?"
)
_PUT_WORKFLOW_RUN = (
    "INSERT OR REPLACE INTO workflow_runs (service, key, invocation_id) VALUES (?, ?, ?)"
)
_DELETE_WORKFLOW_RUN = "DELETE FROM workflow_runs WHERE service = ? AND key = ?"
_PUT_DEPLOYMENT = "INSERT OR REPLACE INTO deployments (id, created_at, data) VALUES (?, ?, ?)"
_DELETE_DEPLOYMENT = "DELETE FROM deployments WHERE id = ?"
_PUT_SERVICE = (
    "INSERT OR REPLACE INTO services (name, revision, deployment_id, service_type, definition,"
    " public) VALUES (?, ?, ?, ?, ?, ?)"
)
_DELETE_SERVICE = "DELETE FROM services WHERE name = ?"
# Savepoint statements by depth: constant texts, so they are prepared once like the rest.
MAX_SAVEPOINT_DEPTH = 8
_SAVEPOINT = tuple(f"SAVEPOINT sp{d}" for d in range(MAX_SAVEPOINT_DEPTH))
_RELEASE = tuple(f"RELEASE sp{d}" for d in range(MAX_SAVEPOINT_DEPTH))
_ROLLBACK_TO = tuple(f"ROLLBACK TO sp{d}" for d in range(MAX_SAVEPOINT_DEPTH))

# How many committed invocation rows the store keeps in memory (oldest written first out).
ROW_CACHE = 8192
_MISSING: Final = object()
_row_fields = operator.attrgetter(*(f.name for f in dataclasses.fields(InvocationRow)))


def _clone(row: InvocationRow) -> InvocationRow:
    """A copy the caller may change freely: the fields themselves are immutable values."""
    return InvocationRow(*_row_fields(row))


class SqliteTransaction(SqliteReads):
    """The open write transaction (`BEGIN IMMEDIATE`) on the store's write connection.

    After any StorageError the transaction is already rolled back and closed; `rollback()` is
    then a no-op, so a caller's usual `except StorageError: tx.rollback()` stays correct.
    """

    def __init__(self, store: SqliteStorage, cursor: sqlite3.Cursor) -> None:
        super().__init__(cursor)
        self._store = store
        self._savepoints = 0  # depth of the savepoint stack
        self._done = False
        # Invocation rows this transaction wrote (None: deleted), merged into the store's
        # cache on commit; the undo log (id, previous overlay value) and its savepoint marks
        # keep it in step with ROLLBACK TO.
        self._overlay: dict[str, InvocationRow | None] = {}
        self._undo: list[tuple[str, object]] = []
        self._marks: list[int] = []
        # Serialises commit() and rollback(): if a caller gives up on a commit running in a
        # worker thread (a cancelled asyncio.to_thread) and rolls back, the rollback waits and
        # then finds the transaction ended, instead of racing COMMIT on the same connection.
        self._ending = threading.Lock()

    # -- statement helpers -------------------------------------------------------------------

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        if self._done:
            raise _finished()
        try:
            return self._cursor.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise self._failed(exc) from exc

    def _run(self, sql: str, params: Sequence[Any]) -> int:
        """Runs one write; returns how many rows it changed."""
        if self._done:
            raise _finished()
        try:
            return self._cursor.execute(sql, params).rowcount
        except sqlite3.Error as exc:
            raise self._failed(exc) from exc

    def _run_many(self, sql: str, params: Iterable[Sequence[Any]]) -> None:
        if self._done:
            raise _finished()
        try:
            self._cursor.executemany(sql, params)
        except sqlite3.Error as exc:
            raise self._failed(exc) from exc

    def _failed(self, exc: sqlite3.Error) -> StorageError:
        # Some errors (SQLITE_FULL, SQLITE_IOERR) already made SQLite roll back on its own;
        # either way the transaction ends here, so no half-done batch can ever be committed.
        self._abort()
        return storage_error(exc, self._store.path, rolled_back=True)

    def _abort(self) -> None:
        conn = self._cursor.connection
        # If even ROLLBACK fails the connection is unusable, and the next BEGIN will say why.
        with contextlib.suppress(sqlite3.Error):
            if conn.in_transaction:
                conn.execute("ROLLBACK")
        self._finish()

    def _finish(self) -> None:
        self._done = True
        self._store._open_tx = None

    # -- invocations and journals ------------------------------------------------------------

    def get_invocation(self, invocation_id: str) -> InvocationRow | None:
        if self._done:
            raise _finished()
        row = self._overlay.get(invocation_id, _MISSING)
        if row is _MISSING:
            row = self._store._rows.get(invocation_id)
            if row is None:
                found = super().get_invocation(invocation_id)
                if found is not None:
                    # Not written by this transaction, so this is the committed row.
                    self._store._remember(invocation_id, _clone(found))
                return found
        assert row is None or isinstance(row, InvocationRow)
        return None if row is None else _clone(row)

    def put_invocation(self, row: InvocationRow) -> None:
        rid = row.id
        before = self._overlay.get(rid, _MISSING)
        known = self._store._rows.get(rid) if before is _MISSING else before
        data, value = codec.encode_invocation(row)
        if (
            isinstance(known, InvocationRow)
            and known.target == row.target
            and known.created_at == row.created_at
        ):
            if known.status is row.status:
                changed = self._run(_UPDATE_INVOCATION, (row.modified_at, data, value, rid))
            else:
                changed = self._run(
                    _UPDATE_INVOCATION_STATUS,
                    (row.status.value, row.modified_at, data, value, rid),
                )
            if changed != 1:  # the cache was wrong (it cannot be, but never lose a write)
                self._upsert(row, data, value)
        else:
            self._upsert(row, data, value)
        self._undo.append((rid, before))
        self._overlay[rid] = _clone(row)

    def _upsert(self, row: InvocationRow, data: str, value: bytes | None) -> None:
        t = row.target
        self._run(
            _PUT_INVOCATION,
            (row.id, t.service, t.handler, t.key, row.status.value, row.created_at,
             row.modified_at, data, value),
        )  # fmt: skip

    def delete_invocation(self, invocation_id: str) -> None:
        self._run(_DELETE_INVOCATION, (invocation_id,))
        self._undo.append((invocation_id, self._overlay.get(invocation_id, _MISSING)))
        self._overlay[invocation_id] = None

    def append_journal(self, invocation_id: str, entries: Sequence[JournalEntry]) -> None:
        self._run_many(
            _APPEND_JOURNAL,
            [
                (invocation_id, e.index, e.message_type, e.payload, e.notification_key,
                 e.is_failure)
                for e in entries
            ],
        )  # fmt: skip

    def delete_journal(self, invocation_id: str) -> None:
        self._run(_DELETE_JOURNAL, (invocation_id,))

    # -- state -------------------------------------------------------------------------------

    def set_state(self, service: str, key: str, name: bytes, value: bytes) -> None:
        self._run(_SET_STATE, (service, key, name, value))

    def clear_state(self, service: str, key: str, name: bytes) -> None:
        self._run(_CLEAR_STATE, (service, key, name))

    def clear_all_state(self, service: str, key: str) -> None:
        self._run(_CLEAR_ALL_STATE, (service, key))

    # -- locks and inboxes -------------------------------------------------------------------

    def set_lock(self, service: str, key: str, invocation_id: str) -> None:
        self._run(_SET_LOCK, (service, key, invocation_id))

    def release_lock(self, service: str, key: str) -> None:
        self._run(_RELEASE_LOCK, (service, key))

    def push_inbox(self, service: str, key: str, invocation_id: str) -> None:
        self._run(_PUSH_INBOX, (service, key, invocation_id))

    def pop_inbox(self, service: str, key: str) -> str | None:
        rows = self._rows(_POP_INBOX, (service, key))
        return rows[0][0] if rows else None

    def remove_from_inbox(self, service: str, key: str, invocation_id: str) -> bool:
        return self._run(_REMOVE_FROM_INBOX, (service, key, invocation_id)) > 0

    # -- timers ------------------------------------------------------------------------------

    def put_timer(self, timer: TimerRow) -> None:
        self._run(
            _PUT_TIMER,
            (timer.id, timer.fire_at, timer.invocation_id, timer.kind.value, timer.completion_id),
        )

    def delete_timer(self, timer_id: str) -> None:
        self._run(_DELETE_TIMER, (timer_id,))

    # -- promises, idempotency keys, workflow runs -------------------------------------------

    def put_promise(self, row: PromiseRow) -> None:
        data, value = codec.encode_promise(row)
        self._run(_PUT_PROMISE, (row.service, row.key, row.name, data, value))

    def delete_promises(self, service: str, key: str) -> None:
        self._run(_DELETE_PROMISES, (service, key))

    def put_idempotency(
        self, service: str, key: str, handler: str, idem_key: str, invocation_id: str
    ) -> None:
        self._run(_PUT_IDEMPOTENCY, (service, key, handler, idem_key, invocation_id))

    def delete_idempotency(self, service: str, key: str, handler: str, idem_key: str) -> None:
        self._run(_DELETE_IDEMPOTENCY, (service, key, handler, idem_key))

    def put_workflow_run(self, service: str, key: str, invocation_id: str) -> None:
        self._run(_PUT_WORKFLOW_RUN, (service, key, invocation_id))

    def delete_workflow_run(self, service: str, key: str) -> None:
        self._run(_DELETE_WORKFLOW_RUN, (service, key))

    # -- registry ----------------------------------------------------------------------------

    def put_deployment(self, row: DeploymentRow) -> None:
        self._run(_PUT_DEPLOYMENT, (row.id, row.created_at, codec.encode_deployment(row)))

    def delete_deployment(self, deployment_id: str) -> None:
        self._run(_DELETE_DEPLOYMENT, (deployment_id,))

    def put_services(self, rows: Iterable[ServiceRow]) -> None:
        self._run_many(
            _PUT_SERVICE,
            [
                (r.name, r.revision, r.deployment_id, r.service_type.value, r.definition,
                 r.public)
                for r in rows
            ],
        )  # fmt: skip

    def delete_service(self, name: str) -> None:
        self._run(_DELETE_SERVICE, (name,))

    # -- savepoints and the end of the transaction -------------------------------------------

    def savepoint(self) -> None:
        if self._savepoints >= MAX_SAVEPOINT_DEPTH:
            raise self._misuse(f"savepoints nest at most {MAX_SAVEPOINT_DEPTH} deep")
        self._run(_SAVEPOINT[self._savepoints], ())
        self._savepoints += 1
        self._marks.append(len(self._undo))

    def release_savepoint(self) -> None:
        if self._savepoints == 0:
            raise self._misuse("release_savepoint() without a savepoint; call savepoint() first")
        self._run(_RELEASE[self._savepoints - 1], ())
        self._savepoints -= 1
        self._marks.pop()

    def rollback_to_savepoint(self) -> None:
        """Undoes the writes since the innermost savepoint, which stays open (as in SQL)."""
        if self._savepoints == 0:
            raise self._misuse(
                "rollback_to_savepoint() without a savepoint; call savepoint() first"
            )
        self._run(_ROLLBACK_TO[self._savepoints - 1], ())
        mark, undo, overlay = self._marks[-1], self._undo, self._overlay
        while len(undo) > mark:
            rid, before = undo.pop()
            if before is _MISSING:
                overlay.pop(rid, None)
            else:
                assert before is None or isinstance(before, InvocationRow)
                overlay[rid] = before

    def _misuse(self, message: str) -> StorageError:
        if self._done:
            return _finished()
        self._abort()
        return StorageError(f"{message}. The transaction was rolled back.")

    def commit(self) -> None:
        """Makes the batch durable (fsync) and visible to readers; safe from a worker thread."""
        with self._ending:
            if self._done:
                raise _finished()
            try:
                self._cursor.execute("COMMIT")
            except sqlite3.Error as exc:
                raise self._failed(exc) from exc
            # Still under the write lock (one transaction at a time): nobody reads the cache.
            remember, forget = self._store._remember, self._store._rows.pop
            for rid, row in self._overlay.items():
                if row is None:
                    forget(rid, None)
                else:
                    remember(rid, row)
            self._finish()

    def rollback(self) -> None:
        """Undoes the whole transaction. Does nothing if it has already ended."""
        with self._ending:
            if not self._done:
                self._abort()


def _finished() -> StorageError:
    return StorageError("this transaction is already committed or rolled back; begin a new one")


class SqliteReader(SqliteReads):
    """Committed data, on the store's own read connection; each call is one implicit read."""

    def __init__(self, store: SqliteStorage, cursor: sqlite3.Cursor) -> None:
        super().__init__(cursor)
        self._store = store
        self._lock = threading.Lock()

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        with self._lock:
            if self._store._closed:
                raise StorageError(f"the store {self._store.path} is closed; open it again")
            try:
                # fetchall() runs the statement to its end, which ends the implicit read
                # transaction: a half-read cursor would pin an old snapshot and stop checkpoints.
                return self._cursor.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise storage_error(exc, self._store.path) from exc


class SqliteStorage:
    """Storage in one SQLite file, created and migrated on open.

    Example::

        store = SqliteStorage("perdure-data/perdure.db")
        tx = store.begin()
        tx.set_lock("Counter", "alice", "inv_1")
        tx.commit()  # durable (fsync) when it returns
        assert store.reader().get_lock("Counter", "alice") == "inv_1"
        store.close()
    """

    def __init__(self, path: str | Path, *, busy_timeout_s: float = BUSY_TIMEOUT_S) -> None:
        self.path = str(path)
        self._open_tx: SqliteTransaction | None = None
        self._closed = False
        # Committed invocation rows, for the write transaction only (see the module docstring).
        # An OrderedDict: evicting the oldest is O(1) (a plain dict's first key is found by
        # skipping the deleted slots before it, ~6 µs here once the cache is full).
        self._rows: OrderedDict[str, InvocationRow] = OrderedDict()
        self._writer = _connect(self.path, busy_timeout_s)
        reader_conn = None
        try:
            _check_identity(self._writer, self.path)
            self.schema_version = _migrate(self._writer, self.path)
            reader_conn = _connect(self.path, busy_timeout_s)
            reader_conn.execute("PRAGMA query_only = ON")  # a second guard: it only reads
        except BaseException as exc:
            if reader_conn is not None:
                reader_conn.close()
            self._writer.close()
            if isinstance(exc, sqlite3.Error):
                raise storage_error(exc, self.path) from exc
            raise
        self._reader_conn = reader_conn
        self._write_cursor = self._writer.cursor()
        self._reader = SqliteReader(self, self._reader_conn.cursor())

    def begin(self) -> SqliteTransaction:
        if self._closed:
            raise StorageError(f"the store {self.path} is closed; open it again")
        if self._open_tx is not None:
            raise StorageError(
                "a write transaction is already open; commit or roll it back before beginning "
                "another (Perdure writes through one transaction at a time)"
            )
        try:
            # IMMEDIATE takes the write lock now, so a busy file fails here, before any work.
            self._write_cursor.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise storage_error(exc, self.path) from exc
        self._open_tx = SqliteTransaction(self, self._write_cursor)
        return self._open_tx

    def _remember(self, invocation_id: str, row: InvocationRow) -> None:
        rows = self._rows
        rows.pop(invocation_id, None)  # to the back: the oldest-written goes first
        rows[invocation_id] = row
        if len(rows) > ROW_CACHE:
            rows.popitem(last=False)

    def reader(self) -> SqliteReader:
        if self._closed:
            raise StorageError(f"the store {self.path} is closed; open it again")
        return self._reader

    def check_integrity(self) -> list[str]:
        """SQLite's `PRAGMA integrity_check`: an empty list when the file is sound."""
        problems = [str(r[0]) for r in self._reader._rows("PRAGMA integrity_check")]
        return [] if problems == ["ok"] else problems

    def close(self) -> None:
        """Rolls back an open transaction and closes both connections. Idempotent."""
        if self._closed:
            return
        if self._open_tx is not None:
            self._open_tx.rollback()
        with self._reader._lock:
            self._closed = True
            self._reader_conn.close()
        # Refreshes the planner's statistics, cheaply; an optimisation only, so errors are moot.
        with contextlib.suppress(sqlite3.Error):
            self._writer.execute("PRAGMA optimize")
        self._writer.close()


def _connect(path: str, busy_timeout_s: float) -> sqlite3.Connection:
    try:
        conn = sqlite3.connect(
            path,
            timeout=busy_timeout_s,
            isolation_level=None,  # we issue BEGIN / COMMIT ourselves
            check_same_thread=False,  # see the module docstring: one thread at a time
            cached_statements=STATEMENT_CACHE,
        )
    except sqlite3.Error as exc:
        raise storage_error(exc, path) from exc
    try:
        # The first statement reads the file header: a stranger's file fails here.
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if mode != "wal":
            raise StorageError(
                f"{path} cannot use SQLite's WAL mode (it stays in {mode!r} mode), which "
                f"Perdure needs; keep the data directory on a local file system, not a network one."
            )
        for pragma in _PRAGMAS:
            conn.execute(pragma)
    except sqlite3.Error as exc:
        conn.close()
        raise storage_error(exc, path) from exc
    except BaseException:
        conn.close()
        raise
    return conn


def _check_identity(conn: sqlite3.Connection, path: str) -> None:
    """Refuses a SQLite database that belongs to someone else, rather than adding tables to it."""
    app_id = conn.execute("PRAGMA application_id").fetchone()[0]
    if app_id == APPLICATION_ID:
        return
    tables = conn.execute("SELECT COUNT(*) FROM sqlite_schema").fetchone()[0]
    if app_id != 0 or tables:
        raise StorageError(
            f"{path} is a SQLite database, but not Perdure's: point Perdure at another file or "
            f"an empty data directory (it never modifies a database it did not create)."
        )


def _migrate(conn: sqlite3.Connection, path: str) -> int:
    def apply(migration: migrations.Migration) -> None:
        # One script, one transaction: a crash leaves the file at the old version or the new.
        script = (
            f"BEGIN IMMEDIATE;\n{migration.sql}\n"
            f"PRAGMA application_id = {APPLICATION_ID};\n"
            f"PRAGMA user_version = {migration.version};\nCOMMIT;"
        )
        try:
            conn.executescript(script)
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise StorageError(
                f"Upgrading {path} to schema version {migration.version} "
                f"({migration.name}) failed: {exc}. The file was left at the version before."
            ) from exc

    current = conn.execute("PRAGMA user_version").fetchone()[0]
    return migrations.run("sqlite", current, path, apply)
