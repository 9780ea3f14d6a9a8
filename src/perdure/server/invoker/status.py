"""What the admin API shows for invocations whose attempt waits for an invoker slot.

The partition marks an invocation `running` when it hands its attempt to the invoker; with a
concurrency limit (`slots.py`) the attempt may then wait in the invoker's queue before its
stream opens. Storage cannot know that (the queue is not stored: a restart starts every
running invocation again), so the admin reads through `InvokerAwareStorage`, which shows such
an invocation as `ready` ("accepted, its attempt has not started yet"), the status Restate's
introspection uses for the same thing, and filters by that status accordingly. Only the admin's
read views go through here; the partition always sees the stored rows.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, Protocol

from perdure.server.storage.api import (
    InvocationFilter,
    InvocationRow,
    InvocationStatus,
    ReadView,
)

S = InvocationStatus

Waiting = Callable[[str], bool]


class _Readable(Protocol):
    def reader(self) -> ReadView: ...


class InvokerAwareStorage:
    """`reader()` like the storage's, with queued attempts shown as `ready`."""

    def __init__(self, storage: _Readable, waiting: Waiting) -> None:
        self._storage = storage
        self._waiting = waiting

    def reader(self) -> ReadView:
        return _View(self._storage.reader(), self._waiting)


class _View:
    def __init__(self, view: ReadView, waiting: Waiting) -> None:
        self._view = view
        self._waiting = waiting

    def __getattr__(self, name: str) -> Any:
        return getattr(self._view, name)

    def _shown(self, row: InvocationRow) -> InvocationRow:
        if row.status is S.RUNNING and self._waiting(row.id):
            return dataclasses.replace(row, status=S.READY)
        return row

    def get_invocation(self, invocation_id: str) -> InvocationRow | None:
        row = self._view.get_invocation(invocation_id)
        return self._shown(row) if row is not None else None

    def list_invocations(self, flt: InvocationFilter) -> list[InvocationRow]:
        wanted = flt.statuses
        if wanted is not None and S.READY in wanted:
            # A `ready` invocation may be stored as `running`; read those too, sort them below.
            flt = dataclasses.replace(flt, statuses=wanted | {S.RUNNING})
        rows = [self._shown(row) for row in self._view.list_invocations(flt)]
        if wanted is None:
            return rows
        return [row for row in rows if row.status in wanted]
