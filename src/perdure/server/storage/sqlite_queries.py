"""The ReadView queries of the SQLite backend, shared by its transaction and its reader."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from typing import Any

from perdure.server.storage import codec
from perdure.server.storage.api import (
    DeploymentRow,
    InvocationFilter,
    InvocationRow,
    InvocationStatus,
    JournalEntry,
    PromiseRow,
    ServiceRow,
    TimerKind,
    TimerRow,
)

_INVOCATION_COLUMNS = (
    "id, service, handler, key, status, created_at, modified_at, data, outcome_value"
)
_GET_INVOCATION = f"SELECT {_INVOCATION_COLUMNS} FROM invocations WHERE id = ?"
_READ_JOURNAL = (
    "SELECT idx, message_type, payload, notification_key, is_failure FROM journal"
    " WHERE invocation_id = ? AND idx >= ? ORDER BY idx"
)
_GET_STATE = "SELECT value FROM state WHERE service = ? AND key = ? AND name = ?"
_GET_ALL_STATE = "SELECT name, value FROM state WHERE service = ? AND key = ? ORDER BY name"
_GET_LOCK = "SELECT invocation_id FROM locks WHERE service = ? AND key = ?"
_PEEK_INBOX = "SELECT invocation_id FROM inbox WHERE service = ? AND key = ? ORDER BY seq LIMIT 1"
_INBOX_SIZE = "SELECT COUNT(*) FROM inbox WHERE service = ? AND key = ?"
_GET_PROMISE = (
    "SELECT service, key, name, data, value FROM promises"
    " WHERE service = ? AND key = ? AND name = ?"
)
_GET_IDEMPOTENCY = (
    "SELECT invocation_id FROM idempotency"
    " WHERE service = ? AND key = ? AND handler = ? AND idem_key = ?"
)
_GET_WORKFLOW_RUN = "SELECT invocation_id FROM workflow_runs WHERE service = ? AND key = ?"
# Same WHERE clause as the partial index `invocations_active`, so the planner can use it.
_LIST_ACTIVE = (
    f"SELECT {_INVOCATION_COLUMNS} FROM invocations WHERE status <> 'completed'"
    " ORDER BY created_at, id"
)
# Some active statuses only (the restart's running ones): rows of the other statuses are
# skipped in SQL, not read and decoded (10^5 suspended invocations cost ~3 s to decode).
_LIST_ACTIVE_IN = (
    f"SELECT {_INVOCATION_COLUMNS} FROM invocations WHERE status <> 'completed'"
    " AND status IN (SELECT value FROM json_each(?)) ORDER BY created_at, id"
)
_LIST_TIMERS = (
    "SELECT id, fire_at, invocation_id, kind, completion_id FROM timers ORDER BY fire_at, id"
)
# A page of timers after a key (the timer service reads the store a window at a time); the
# index on fire_at carries the primary key, so this is one range scan of timers_by_fire_at.
_LIST_TIMERS_AFTER = (
    "SELECT id, fire_at, invocation_id, kind, completion_id FROM timers"
    " WHERE (fire_at, id) > (?, ?) ORDER BY fire_at, id LIMIT ?"
)
_LIST_TIMERS_FIRST = (
    "SELECT id, fire_at, invocation_id, kind, completion_id FROM timers"
    " ORDER BY fire_at, id LIMIT ?"
)
_LIST_DEPLOYMENTS = "SELECT id, created_at, data FROM deployments ORDER BY created_at, id"
_LIST_SERVICES = (
    "SELECT name, revision, deployment_id, service_type, definition, public FROM services"
    " ORDER BY name"
)
_TIMER_KIND = {k.value: k for k in TimerKind}


def _list_invocations_sql(statuses: bool, service: bool, key: bool) -> str:
    # Statuses travel as one JSON array parameter, so each filter shape has one constant text
    # (eight in all), and the statement cache keeps them prepared.
    where = []
    if statuses:
        where.append("status IN (SELECT value FROM json_each(?))")
    if service:
        where.append("service = ?")
    if key:
        where.append("key = ?")
    clause = f" WHERE {' AND '.join(where)}" if where else ""
    return (
        f"SELECT {_INVOCATION_COLUMNS} FROM invocations{clause}"
        " ORDER BY created_at DESC, id DESC LIMIT ?"
    )


_LIST_INVOCATIONS = {
    (s, v, k): _list_invocations_sql(s, v, k)
    for s in (False, True)
    for v in (False, True)
    for k in (False, True)
}


class SqliteReads:
    """ReadView over one cursor; subclasses say how a statement runs and how errors end."""

    def __init__(self, cursor: sqlite3.Cursor) -> None:
        self._cursor = cursor

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        raise NotImplementedError

    def _value(self, sql: str, params: Sequence[Any]) -> Any:
        rows = self._rows(sql, params)
        return rows[0][0] if rows else None

    def get_invocation(self, invocation_id: str) -> InvocationRow | None:
        rows = self._rows(_GET_INVOCATION, (invocation_id,))
        return codec.decode_invocation(*rows[0]) if rows else None

    def read_journal(self, invocation_id: str, start: int = 0) -> list[JournalEntry]:
        return [
            JournalEntry(index, message_type, payload, notification_key, bool(is_failure))
            for index, message_type, payload, notification_key, is_failure in self._rows(
                _READ_JOURNAL, (invocation_id, start)
            )
        ]

    def get_state(self, service: str, key: str, name: bytes) -> bytes | None:
        value: bytes | None = self._value(_GET_STATE, (service, key, name))
        return value

    def get_all_state(self, service: str, key: str) -> list[tuple[bytes, bytes]]:
        return [(name, value) for name, value in self._rows(_GET_ALL_STATE, (service, key))]

    def get_lock(self, service: str, key: str) -> str | None:
        holder: str | None = self._value(_GET_LOCK, (service, key))
        return holder

    def peek_inbox(self, service: str, key: str) -> str | None:
        head: str | None = self._value(_PEEK_INBOX, (service, key))
        return head

    def inbox_size(self, service: str, key: str) -> int:
        size: int = self._value(_INBOX_SIZE, (service, key))
        return size

    def get_promise(self, service: str, key: str, name: str) -> PromiseRow | None:
        rows = self._rows(_GET_PROMISE, (service, key, name))
        return codec.decode_promise(*rows[0]) if rows else None

    def get_idempotency(self, service: str, key: str, handler: str, idem_key: str) -> str | None:
        found: str | None = self._value(_GET_IDEMPOTENCY, (service, key, handler, idem_key))
        return found

    def get_workflow_run(self, service: str, key: str) -> str | None:
        found: str | None = self._value(_GET_WORKFLOW_RUN, (service, key))
        return found

    def list_invocations(self, flt: InvocationFilter) -> list[InvocationRow]:
        params: list[Any] = []
        if flt.statuses is not None:
            params.append(json.dumps(sorted(s.value for s in flt.statuses)))
        if flt.service is not None:
            params.append(flt.service)
        if flt.key is not None:
            params.append(flt.key)
        # SQLite reads a negative LIMIT as "no limit"; the contract reads it as "none".
        params.append(max(flt.limit, 0))
        shape = (flt.statuses is not None, flt.service is not None, flt.key is not None)
        return [codec.decode_invocation(*r) for r in self._rows(_LIST_INVOCATIONS[shape], params)]

    def list_active_invocations(
        self, statuses: frozenset[InvocationStatus] | None = None
    ) -> list[InvocationRow]:
        if statuses is None:
            rows = self._rows(_LIST_ACTIVE)
        else:
            rows = self._rows(_LIST_ACTIVE_IN, [json.dumps(sorted(s.value for s in statuses))])
        return [codec.decode_invocation(*r) for r in rows]

    def list_timers(
        self, after: tuple[int, str] | None = None, limit: int | None = None
    ) -> list[TimerRow]:
        # SQLite reads a negative LIMIT as "no limit"; the contract reads it as "none".
        if after is not None:
            bound = -1 if limit is None else max(limit, 0)
            sql, params = _LIST_TIMERS_AFTER, [after[0], after[1], bound]
        elif limit is not None:
            sql, params = _LIST_TIMERS_FIRST, [max(limit, 0)]
        else:
            sql, params = _LIST_TIMERS, []
        return [
            TimerRow(timer_id, fire_at, invocation_id, _TIMER_KIND[kind], completion_id)
            for timer_id, fire_at, invocation_id, kind, completion_id in self._rows(sql, params)
        ]

    def list_deployments(self) -> list[DeploymentRow]:
        return [codec.decode_deployment(*r) for r in self._rows(_LIST_DEPLOYMENTS)]

    def list_services(self) -> list[ServiceRow]:
        return [
            ServiceRow(name, revision, deployment_id, codec.service_type(kind), definition,
                       bool(public))
            for name, revision, deployment_id, kind, definition, public in self._rows(
                _LIST_SERVICES
            )
        ]  # fmt: skip
