"""The working set of one `apply`: the transaction, the clock reading, rows and effects.

Rows are loaded once per event and written back once at the end (`flush`), so several rules
touching the same invocation in one event (a call that completes its caller, say) all see and
update the same object.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from perdure.server.partition.effects import Effect
from perdure.server.partition.waiters import IngressWaiters
from perdure.server.registry import Registry
from perdure.server.storage.api import InvocationRow, JournalEntry, Target, Transaction


class IdSource(Protocol):
    """Where new identifiers and seeds come from (random in production, seeded in tests)."""

    def invocation_id(self, target: Target, idempotency_key: str | None) -> str: ...
    def invocation_id_bytes(self, invocation_id: str) -> bytes: ...
    def random_seed(self) -> int: ...
    def parse_awakeable(self, awakeable_id: str) -> tuple[str, int] | None: ...


@dataclass(slots=True)
class Ctx:
    tx: Transaction
    now: int  # ms since the epoch
    registry: Registry
    ids: IdSource
    ingress_waiters: IngressWaiters
    effects: list[Effect] = field(default_factory=list)
    rows: dict[str, InvocationRow] = field(default_factory=dict)
    dirty: set[str] = field(default_factory=set)
    deleted: set[str] = field(default_factory=set)
    # The whole journal of each invocation created in this event (it is all in memory), so
    # that its first attempt needs no read of what was just written.
    new_journals: dict[str, list[JournalEntry]] = field(default_factory=dict)
    # Set by the Partition: how to start an attempt for an invocation (lifecycle.start_attempt).
    resume: Callable[[Ctx, InvocationRow], None] | None = None

    def emit(self, effect: Effect) -> None:
        self.effects.append(effect)

    def load(self, invocation_id: str) -> InvocationRow | None:
        if invocation_id in self.deleted:
            return None
        row = self.rows.get(invocation_id)
        if row is None:
            row = self.tx.get_invocation(invocation_id)
            if row is not None:
                self.rows[invocation_id] = row
        return row

    def add(self, row: InvocationRow) -> None:
        self.rows[row.id] = row
        self.deleted.discard(row.id)
        self.new_journals[row.id] = []
        self.touch(row)

    def touch(self, row: InvocationRow) -> None:
        row.modified_at = self.now
        self.dirty.add(row.id)

    def forget(self, invocation_id: str) -> None:
        """The invocation was purged: drop it from the working set and the store."""
        self.rows.pop(invocation_id, None)
        self.dirty.discard(invocation_id)
        self.new_journals.pop(invocation_id, None)
        self.deleted.add(invocation_id)
        self.tx.delete_invocation(invocation_id)

    def append(self, row: InvocationRow, entries: list[JournalEntry]) -> None:
        self.tx.append_journal(row.id, entries)
        known = self.new_journals.get(row.id)
        if known is not None:
            known.extend(entries)
        self.touch(row)

    def journal(self, row: InvocationRow) -> list[JournalEntry]:
        """`row`'s whole journal: from memory if `row` was created in this event."""
        known = self.new_journals.get(row.id)
        if known is not None and len(known) == row.journal_length:
            return list(known)
        return self.tx.read_journal(row.id)

    def flush(self) -> None:
        for invocation_id in self.dirty:
            row = self.rows.get(invocation_id)
            if row is not None:
                self.tx.put_invocation(row)
        self.dirty.clear()
