"""Dict-backed reference storage: the exact semantics of the contract, for unit tests.

Two copies of every table exist: `committed` (what readers see) and `working` (what the open
transaction sees). Between transactions they are equal. A write goes to `working` and records
the old value in an undo log; a savepoint is a position in that log. Rollback replays the log
backwards; commit copies each key the log touched from `working` to `committed`. So `begin()`
copies nothing and a commit costs as much as the batch wrote.

Stored values are never mutated in place, so both copies can share them: mutable rows
(InvocationRow, PromiseRow) are copied on the way in and on the way out, and per-key
collections (a journal, an inbox, an object's state) are replaced rather than edited.
"""

from __future__ import annotations

import copy
import itertools
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from perdure.server.storage.api import (
    DeploymentRow,
    InvocationFilter,
    InvocationRow,
    InvocationStatus,
    JournalEntry,
    PromiseRow,
    ServiceRow,
    StorageError,
    TimerRow,
)

_MISSING: Final = object()


@dataclass(slots=True)
class _Tables:
    invocations: dict[str, InvocationRow] = field(default_factory=dict)
    journals: dict[str, tuple[JournalEntry, ...]] = field(default_factory=dict)
    state: dict[tuple[str, str], dict[bytes, bytes]] = field(default_factory=dict)
    locks: dict[tuple[str, str], str] = field(default_factory=dict)
    inboxes: dict[tuple[str, str], tuple[str, ...]] = field(default_factory=dict)
    timers: dict[str, TimerRow] = field(default_factory=dict)
    promises: dict[tuple[str, str], dict[str, PromiseRow]] = field(default_factory=dict)
    idempotency: dict[tuple[str, str, str, str], str] = field(default_factory=dict)
    workflow_runs: dict[tuple[str, str], str] = field(default_factory=dict)
    deployments: dict[str, DeploymentRow] = field(default_factory=dict)
    services: dict[str, ServiceRow] = field(default_factory=dict)


def _by_creation(row: InvocationRow) -> tuple[int, str]:
    return (row.created_at, row.id)


class _MemoryReads:
    """The ReadView methods over one set of tables; the lock makes each call see one commit."""

    def __init__(self, tables: _Tables, lock: threading.Lock) -> None:
        self._t = tables
        self._lock = lock

    def _check_open(self) -> None:
        """Overridden: a finished transaction or a closed store refuses every call."""

    def get_invocation(self, invocation_id: str) -> InvocationRow | None:
        self._check_open()
        with self._lock:
            row = self._t.invocations.get(invocation_id)
        return None if row is None else copy.copy(row)

    def read_journal(self, invocation_id: str, start: int = 0) -> list[JournalEntry]:
        self._check_open()
        with self._lock:
            journal = self._t.journals.get(invocation_id, ())
        return [e for e in journal if e.index >= start]

    def get_state(self, service: str, key: str, name: bytes) -> bytes | None:
        self._check_open()
        with self._lock:
            return self._t.state.get((service, key), {}).get(name)

    def get_all_state(self, service: str, key: str) -> list[tuple[bytes, bytes]]:
        self._check_open()
        with self._lock:
            return sorted(self._t.state.get((service, key), {}).items())

    def get_lock(self, service: str, key: str) -> str | None:
        self._check_open()
        with self._lock:
            return self._t.locks.get((service, key))

    def peek_inbox(self, service: str, key: str) -> str | None:
        self._check_open()
        with self._lock:
            inbox = self._t.inboxes.get((service, key))
        return inbox[0] if inbox else None

    def inbox_size(self, service: str, key: str) -> int:
        self._check_open()
        with self._lock:
            return len(self._t.inboxes.get((service, key), ()))

    def get_promise(self, service: str, key: str, name: str) -> PromiseRow | None:
        self._check_open()
        with self._lock:
            row = self._t.promises.get((service, key), {}).get(name)
        return None if row is None else copy.copy(row)

    def get_idempotency(self, service: str, key: str, handler: str, idem_key: str) -> str | None:
        self._check_open()
        with self._lock:
            return self._t.idempotency.get((service, key, handler, idem_key))

    def get_workflow_run(self, service: str, key: str) -> str | None:
        self._check_open()
        with self._lock:
            return self._t.workflow_runs.get((service, key))

    def list_invocations(self, flt: InvocationFilter) -> list[InvocationRow]:
        self._check_open()
        with self._lock:
            rows = list(self._t.invocations.values())
        found = [
            row
            for row in rows
            if (flt.statuses is None or row.status in flt.statuses)
            and (flt.service is None or row.target.service == flt.service)
            and (flt.key is None or row.target.key == flt.key)
        ]
        found.sort(key=_by_creation, reverse=True)
        return [copy.copy(row) for row in found[: max(flt.limit, 0)]]

    def list_active_invocations(
        self, statuses: frozenset[InvocationStatus] | None = None
    ) -> list[InvocationRow]:
        self._check_open()
        with self._lock:
            rows = list(self._t.invocations.values())
        active = [
            row
            for row in rows
            if row.status is not InvocationStatus.COMPLETED
            and (statuses is None or row.status in statuses)
        ]
        active.sort(key=_by_creation)
        return [copy.copy(row) for row in active]

    def list_timers(
        self, after: tuple[int, str] | None = None, limit: int | None = None
    ) -> list[TimerRow]:
        self._check_open()
        with self._lock:
            timers = list(self._t.timers.values())
        ordered = sorted(timers, key=lambda t: (t.fire_at, t.id))
        if after is not None:
            ordered = [t for t in ordered if (t.fire_at, t.id) > after]
        return ordered if limit is None else ordered[: max(limit, 0)]

    def list_deployments(self) -> list[DeploymentRow]:
        self._check_open()
        with self._lock:
            rows = list(self._t.deployments.values())
        return sorted(rows, key=lambda d: (d.created_at, d.id))

    def list_services(self) -> list[ServiceRow]:
        self._check_open()
        with self._lock:
            return sorted(self._t.services.values(), key=lambda s: s.name)


class MemoryReader(_MemoryReads):
    """Committed data only: what `MemoryStorage.reader()` returns."""

    def __init__(self, store: MemoryStorage) -> None:
        super().__init__(store._committed, store._lock)
        self._store = store

    def _check_open(self) -> None:
        if self._store._closed:
            raise StorageError("the memory store is closed; open a new one")


class MemoryTransaction(_MemoryReads):
    """The open write transaction of a MemoryStorage. Use it from one thread at a time."""

    def __init__(self, store: MemoryStorage) -> None:
        super().__init__(store._working, store._lock)
        self._store = store
        self._undo: list[tuple[str, Any, Any]] = []  # (table name, key, value before)
        self._savepoints: list[int] = []  # positions in the undo log
        self._done = False

    # -- bookkeeping -------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._done:
            raise StorageError(
                "this transaction is already committed or rolled back; begin a new one"
            )

    def _fail(self, message: str) -> StorageError:
        """Like the SQL backends, an error ends the transaction: nothing half-done survives."""
        self.rollback()
        return StorageError(message)

    def _set(self, table: str, key: Any, value: Any) -> None:
        self._check_open()
        rows: dict[Any, Any] = getattr(self._t, table)
        self._undo.append((table, key, rows.get(key, _MISSING)))
        rows[key] = value

    def _delete(self, table: str, key: Any) -> None:
        self._check_open()
        rows: dict[Any, Any] = getattr(self._t, table)
        if key in rows:
            self._undo.append((table, key, rows.pop(key)))

    def _undo_to(self, position: int) -> None:
        undo = self._undo
        while len(undo) > position:
            table, key, before = undo.pop()
            rows: dict[Any, Any] = getattr(self._t, table)
            if before is _MISSING:
                rows.pop(key, None)
            else:
                rows[key] = before

    # -- invocations and journals ------------------------------------------------------------

    def put_invocation(self, row: InvocationRow) -> None:
        self._set("invocations", row.id, copy.copy(row))

    def delete_invocation(self, invocation_id: str) -> None:
        self._delete("invocations", invocation_id)

    def append_journal(self, invocation_id: str, entries: Sequence[JournalEntry]) -> None:
        self._check_open()
        if not entries:
            return
        old = self._t.journals.get(invocation_id, ())
        journal = old + tuple(entries)
        if (old and entries[0].index <= old[-1].index) or any(
            a.index >= b.index for a, b in itertools.pairwise(entries)
        ):
            # Out of order: sort, then refuse duplicates as the SQL primary key does.
            journal = tuple(sorted(journal, key=lambda e: e.index))
            indexes = [e.index for e in journal]
            if len(set(indexes)) != len(indexes):
                raise self._fail(
                    f"the journal of {invocation_id} already has an entry with one of the indexes "
                    f"{[e.index for e in entries]}; this is a bug in Perdure, please report it"
                )
        self._set("journals", invocation_id, journal)

    def delete_journal(self, invocation_id: str) -> None:
        self._delete("journals", invocation_id)

    # -- state -------------------------------------------------------------------------------

    def set_state(self, service: str, key: str, name: bytes, value: bytes) -> None:
        self._check_open()
        self._set("state", (service, key), {**self._t.state.get((service, key), {}), name: value})

    def clear_state(self, service: str, key: str, name: bytes) -> None:
        self._check_open()
        entries = self._t.state.get((service, key), {})
        if name in entries:
            remaining = {n: v for n, v in entries.items() if n != name}
            if remaining:
                self._set("state", (service, key), remaining)
            else:
                self._delete("state", (service, key))

    def clear_all_state(self, service: str, key: str) -> None:
        self._delete("state", (service, key))

    # -- locks and inboxes -------------------------------------------------------------------

    def set_lock(self, service: str, key: str, invocation_id: str) -> None:
        self._set("locks", (service, key), invocation_id)

    def release_lock(self, service: str, key: str) -> None:
        self._delete("locks", (service, key))

    def push_inbox(self, service: str, key: str, invocation_id: str) -> None:
        self._check_open()
        self._set(
            "inboxes", (service, key), (*self._t.inboxes.get((service, key), ()), invocation_id)
        )

    def pop_inbox(self, service: str, key: str) -> str | None:
        self._check_open()
        inbox = self._t.inboxes.get((service, key))
        if not inbox:
            return None
        if len(inbox) == 1:
            self._delete("inboxes", (service, key))
        else:
            self._set("inboxes", (service, key), inbox[1:])
        return inbox[0]

    def remove_from_inbox(self, service: str, key: str, invocation_id: str) -> bool:
        self._check_open()
        inbox = self._t.inboxes.get((service, key), ())
        if invocation_id not in inbox:
            return False
        remaining = tuple(i for i in inbox if i != invocation_id)
        if remaining:
            self._set("inboxes", (service, key), remaining)
        else:
            self._delete("inboxes", (service, key))
        return True

    # -- timers ------------------------------------------------------------------------------

    def put_timer(self, timer: TimerRow) -> None:
        self._set("timers", timer.id, timer)

    def delete_timer(self, timer_id: str) -> None:
        self._delete("timers", timer_id)

    # -- promises, idempotency keys, workflow runs -------------------------------------------

    def put_promise(self, row: PromiseRow) -> None:
        self._check_open()
        promises = self._t.promises.get((row.service, row.key), {})
        self._set("promises", (row.service, row.key), {**promises, row.name: copy.copy(row)})

    def delete_promises(self, service: str, key: str) -> None:
        self._delete("promises", (service, key))

    def put_idempotency(
        self, service: str, key: str, handler: str, idem_key: str, invocation_id: str
    ) -> None:
        self._set("idempotency", (service, key, handler, idem_key), invocation_id)

    def delete_idempotency(self, service: str, key: str, handler: str, idem_key: str) -> None:
        self._delete("idempotency", (service, key, handler, idem_key))

    def put_workflow_run(self, service: str, key: str, invocation_id: str) -> None:
        self._set("workflow_runs", (service, key), invocation_id)

    def delete_workflow_run(self, service: str, key: str) -> None:
        self._delete("workflow_runs", (service, key))

    # -- registry ----------------------------------------------------------------------------

    def put_deployment(self, row: DeploymentRow) -> None:
        self._set("deployments", row.id, row)

    def delete_deployment(self, deployment_id: str) -> None:
        self._delete("deployments", deployment_id)

    def put_services(self, rows: Iterable[ServiceRow]) -> None:
        for row in rows:
            self._set("services", row.name, row)

    def delete_service(self, name: str) -> None:
        self._delete("services", name)

    # -- savepoints and the end of the transaction -------------------------------------------

    def savepoint(self) -> None:
        self._check_open()
        self._savepoints.append(len(self._undo))

    def release_savepoint(self) -> None:
        self._check_open()
        if not self._savepoints:
            raise self._fail("release_savepoint() without a savepoint; call savepoint() first")
        self._savepoints.pop()

    def rollback_to_savepoint(self) -> None:
        """Undoes the writes since the innermost savepoint, which stays open (as in SQL)."""
        self._check_open()
        if not self._savepoints:
            raise self._fail("rollback_to_savepoint() without a savepoint; call savepoint() first")
        self._undo_to(self._savepoints[-1])

    def commit(self) -> None:
        store = self._store
        with store._lock:
            self._check_open()
            committed, working = store._committed, store._working
            for table, key, _ in self._undo:
                target: dict[Any, Any] = getattr(committed, table)
                value = getattr(working, table).get(key, _MISSING)
                if value is _MISSING:
                    target.pop(key, None)
                else:
                    target[key] = value
            self._finish()

    def rollback(self) -> None:
        """Undoes the whole transaction. Does nothing if it has already ended.

        Called while commit() runs in another thread, it waits for the commit, then does
        nothing: the batch is committed.
        """
        with self._store._lock:
            if self._done:
                return
            self._undo_to(0)
            self._finish()

    def _finish(self) -> None:
        self._done = True
        self._undo = []
        self._savepoints = []
        if self._store._open_tx is self:
            self._store._open_tx = None


class MemoryStorage:
    """In-memory Storage; the reference every other backend is checked against.

    >>> store = MemoryStorage()
    >>> tx = store.begin()
    >>> tx.set_lock("Counter", "alice", "inv_1")
    >>> tx.commit()
    >>> store.reader().get_lock("Counter", "alice")
    'inv_1'
    """

    def __init__(self) -> None:
        self._committed = _Tables()
        self._working = _Tables()
        # Held while a commit publishes its writes and during each read, so a reader in another
        # thread (the driver commits from a worker thread) never sees half a commit.
        self._lock = threading.Lock()
        self._open_tx: MemoryTransaction | None = None
        self._closed = False
        self._reader = MemoryReader(self)

    def begin(self) -> MemoryTransaction:
        if self._closed:
            raise StorageError("the memory store is closed; open a new one")
        if self._open_tx is not None:
            raise StorageError(
                "a write transaction is already open; commit or roll it back before beginning "
                "another (Perdure writes through one transaction at a time)"
            )
        self._open_tx = MemoryTransaction(self)
        return self._open_tx

    def reader(self) -> MemoryReader:
        if self._closed:
            raise StorageError("the memory store is closed; open a new one")
        return self._reader

    def close(self) -> None:
        if self._open_tx is not None:
            self._open_tx.rollback()
        self._closed = True
