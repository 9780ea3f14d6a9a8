"""The storage contract: row types and the Storage / Transaction protocols every backend meets.

The partition reads and writes only through `Transaction`. A transaction sees its own writes
(read-your-writes), groups many events (group commit), and supports savepoints so that one bad
event can be rolled back without losing the rest of its batch. Nothing is visible to readers,
and nothing may be told to the outside world, before `commit()` returns.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol


class StorageError(Exception):
    """The store could not do what was asked (disk full, corrupt file, schema too new)."""


class InvocationStatus(enum.Enum):
    """Invocation statuses, named as Restate's introspection names them."""

    SCHEDULED = "scheduled"  # waiting for its execution time (delayed send)
    PENDING = "pending"  # waiting in a virtual object's / workflow's inbox
    READY = "ready"  # accepted, an attempt is about to start
    RUNNING = "running"  # an attempt is open against a deployment
    SUSPENDED = "suspended"  # waiting for notifications, no attempt open
    BACKING_OFF = "backing-off"  # the last attempt failed, a retry timer is set
    PAUSED = "paused"  # retries exhausted (or the SDK asked): waits for an operator
    COMPLETED = "completed"  # has an output or a terminal failure

    @property
    def is_active(self) -> bool:
        return self is not InvocationStatus.COMPLETED


class ServiceType(enum.Enum):
    SERVICE = "SERVICE"
    VIRTUAL_OBJECT = "VIRTUAL_OBJECT"
    WORKFLOW = "WORKFLOW"


class HandlerType(enum.Enum):
    EXCLUSIVE = "EXCLUSIVE"
    SHARED = "SHARED"
    WORKFLOW = "WORKFLOW"


@dataclass(frozen=True, slots=True)
class Failure:
    """A terminal failure as the protocol carries it: an HTTP-like code and a message."""

    code: int
    message: str
    metadata: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class Outcome:
    """The result of a completed invocation (or of a promise): a value or a failure."""

    value: bytes | None = None
    failure: Failure | None = None

    @property
    def is_success(self) -> bool:
        return self.failure is None


class WaiterKind(enum.Enum):
    CALL = "call"  # a CallCommand: deliver CallCompletionNotification
    ATTACH = "attach"  # an AttachInvocationCommand: AttachInvocationCompletionNotification
    OUTPUT = "output"  # a GetInvocationOutputCommand (answered at once, never stored)
    PROMISE = "promise"  # a GetPromiseCommand: GetPromiseCompletionNotification


@dataclass(frozen=True, slots=True)
class Waiter:
    """An invocation waiting for another invocation (or a promise) to complete."""

    kind: WaiterKind
    invocation_id: str
    completion_id: int


@dataclass(frozen=True, slots=True)
class Target:
    service: str
    handler: str
    key: str = ""
    service_type: ServiceType = ServiceType.SERVICE
    handler_type: HandlerType | None = None

    @property
    def is_keyed(self) -> bool:
        return self.service_type is not ServiceType.SERVICE

    @property
    def takes_lock(self) -> bool:
        """Exclusive object handlers and the workflow `run` handler hold the per-key lock."""
        return self.is_keyed and self.handler_type in (HandlerType.EXCLUSIVE, HandlerType.WORKFLOW)

    def __str__(self) -> str:
        if self.is_keyed:
            return f"{self.service}/{self.key}/{self.handler}"
        return f"{self.service}/{self.handler}"


@dataclass(slots=True)
class InvocationRow:
    """Everything the engine keeps about one invocation. Mutable: rules copy-and-write it."""

    id: str
    target: Target
    status: InvocationStatus
    created_at: int  # ms since the epoch
    modified_at: int
    headers: tuple[tuple[str, str], ...] = ()
    idempotency_key: str | None = None
    deployment_id: str | None = None  # pinned when the first attempt starts
    protocol_version: int | None = None
    execution_time: int | None = None  # for SCHEDULED
    journal_length: int = 0  # commands + notifications
    command_count: int = 0
    attempt: int = 0  # number of attempts started so far
    retry_count: int = 0  # failed attempts since the last progress (reset on new entries)
    next_retry_at: int | None = None
    last_failure: Failure | None = None
    last_failure_related: str | None = None  # which command the last failure points at
    waiters: tuple[Waiter, ...] = ()
    awaiting: str | None = None  # JSON of the suspension future tree
    random_seed: int = 0
    completion_retention_ms: int = 0
    journal_retention_ms: int = 0
    outcome: Outcome | None = None
    completed_at: int | None = None
    running_since: int | None = None
    caller_id: str | None = None  # the invocation that called/sent this one, for display


@dataclass(frozen=True, slots=True)
class JournalEntry:
    """One journal message, kept exactly as the wire carried it."""

    index: int
    message_type: int
    payload: bytes
    # For notifications: "c:<completion id>", "s:<signal index>" or "n:<signal name>",
    # and whether it carries a failure; lets suspension trees be evaluated without parsing.
    notification_key: str | None = None
    is_failure: bool = False


class TimerKind(enum.Enum):
    SLEEP = "sleep"  # fire a SleepCompletionNotification
    INVOKE = "invoke"  # start a scheduled (delayed) invocation
    RETRY = "retry"  # start the next attempt after a backoff
    CLEANUP = "cleanup"  # purge a completed invocation when its retention ends


@dataclass(frozen=True, slots=True)
class TimerRow:
    id: str  # unique: "<kind>:<invocation id>[:<completion id>]"
    fire_at: int  # ms since the epoch
    invocation_id: str
    kind: TimerKind
    completion_id: int | None = None


@dataclass(slots=True)
class PromiseRow:
    """A workflow's durable promise."""

    service: str
    key: str
    name: str
    outcome: Outcome | None = None
    waiters: tuple[Waiter, ...] = ()


@dataclass(frozen=True, slots=True)
class DeploymentRow:
    id: str
    uri: str
    protocol_mode: str  # "BIDI_STREAM" | "REQUEST_RESPONSE"
    min_protocol_version: int
    max_protocol_version: int
    created_at: int
    additional_headers: tuple[tuple[str, str], ...] = ()
    use_http_11: bool = False
    manifest: str = "{}"  # the discovered manifest, JSON, as the deployment sent it


@dataclass(frozen=True, slots=True)
class ServiceRow:
    name: str
    revision: int
    deployment_id: str
    service_type: ServiceType
    definition: str  # the manifest's service object, JSON
    public: bool = True


@dataclass(frozen=True, slots=True)
class InvocationFilter:
    """What the admin API asks when listing invocations."""

    statuses: frozenset[InvocationStatus] | None = None
    service: str | None = None
    key: str | None = None
    limit: int = 100


class ReadView(Protocol):
    """Reads; a Transaction is one, and so is a committed-data reader for the admin API.

    Every backend returns the same order (the conformance suite checks it):
    - read_journal: the entries with index >= start, by index;
    - get_all_state: by name, bytewise;
    - list_invocations: newest first (created_at, then id, descending), at most `limit`
      (none if limit <= 0); statuses=None means any status, an empty set means none;
    - list_active_invocations: every status but COMPLETED (only `statuses`, if given), oldest
      first (created_at, then id);
    - list_timers: by (fire_at, id), only those after the key `after` (fire_at, id) if given,
      at most `limit` if given; list_deployments: by (created_at, id); list_services: by name.
    Rows are values: changing a row that was read (or put) changes nothing stored.
    """

    def get_invocation(self, invocation_id: str) -> InvocationRow | None: ...
    def read_journal(self, invocation_id: str, start: int = 0) -> list[JournalEntry]: ...
    def get_state(self, service: str, key: str, name: bytes) -> bytes | None: ...
    def get_all_state(self, service: str, key: str) -> list[tuple[bytes, bytes]]: ...
    def get_lock(self, service: str, key: str) -> str | None: ...
    def peek_inbox(self, service: str, key: str) -> str | None: ...
    def inbox_size(self, service: str, key: str) -> int: ...
    def get_promise(self, service: str, key: str, name: str) -> PromiseRow | None: ...
    def get_idempotency(
        self, service: str, key: str, handler: str, idem_key: str
    ) -> str | None: ...
    def get_workflow_run(self, service: str, key: str) -> str | None: ...
    def list_invocations(self, flt: InvocationFilter) -> list[InvocationRow]: ...
    def list_active_invocations(
        self, statuses: frozenset[InvocationStatus] | None = None
    ) -> list[InvocationRow]: ...
    def list_timers(
        self, after: tuple[int, str] | None = None, limit: int | None = None
    ) -> list[TimerRow]: ...
    def list_deployments(self) -> list[DeploymentRow]: ...
    def list_services(self) -> list[ServiceRow]: ...


class Transaction(ReadView, Protocol):
    """One open write transaction. Writes are visible to its own reads at once.

    - put_* replace the row with the same key; deleting or clearing what is absent does nothing.
    - set_lock records the holder, replacing any; the partition keeps one holder per key.
    - Inboxes are FIFO per (service, key): pop_inbox returns the oldest (None when empty);
      remove_from_inbox says whether the id was there.
    - append_journal refuses an index the journal already has (StorageError).
    - Savepoints nest. rollback_to_savepoint undoes the writes since the innermost savepoint
      and keeps it open (as SQL does); release_savepoint closes it, keeping its writes.
    - commit() may run on another thread than the writes (the driver uses asyncio.to_thread);
      when it returns, the batch is durable and visible to readers.
    - Any StorageError ends the transaction: it is already rolled back, and rollback() is then
      a no-op, as it is after commit(). Any other call on an ended transaction raises.
    """

    # invocations and journals
    def put_invocation(self, row: InvocationRow) -> None: ...
    def delete_invocation(self, invocation_id: str) -> None: ...
    def append_journal(self, invocation_id: str, entries: Sequence[JournalEntry]) -> None: ...
    def delete_journal(self, invocation_id: str) -> None: ...
    # state
    def set_state(self, service: str, key: str, name: bytes, value: bytes) -> None: ...
    def clear_state(self, service: str, key: str, name: bytes) -> None: ...
    def clear_all_state(self, service: str, key: str) -> None: ...
    # locks and inboxes
    def set_lock(self, service: str, key: str, invocation_id: str) -> None: ...
    def release_lock(self, service: str, key: str) -> None: ...
    def push_inbox(self, service: str, key: str, invocation_id: str) -> None: ...
    def pop_inbox(self, service: str, key: str) -> str | None: ...
    def remove_from_inbox(self, service: str, key: str, invocation_id: str) -> bool: ...
    # timers
    def put_timer(self, timer: TimerRow) -> None: ...
    def delete_timer(self, timer_id: str) -> None: ...
    # promises, idempotency keys, workflow runs
    def put_promise(self, row: PromiseRow) -> None: ...
    def delete_promises(self, service: str, key: str) -> None: ...
    def put_idempotency(
        self, service: str, key: str, handler: str, idem_key: str, invocation_id: str
    ) -> None: ...
    def delete_idempotency(self, service: str, key: str, handler: str, idem_key: str) -> None: ...
    def put_workflow_run(self, service: str, key: str, invocation_id: str) -> None: ...
    def delete_workflow_run(self, service: str, key: str) -> None: ...
    # registry
    def put_deployment(self, row: DeploymentRow) -> None: ...
    def delete_deployment(self, deployment_id: str) -> None: ...
    def put_services(self, rows: Iterable[ServiceRow]) -> None: ...
    def delete_service(self, name: str) -> None: ...
    # savepoints isolate one event inside a batch
    def savepoint(self) -> None: ...
    def release_savepoint(self) -> None: ...
    def rollback_to_savepoint(self) -> None: ...
    # ending the transaction
    def commit(self) -> None: ...
    def rollback(self) -> None: ...


class Storage(Protocol):
    """A backend: opens write transactions (one at a time) and committed-data readers.

    begin() while a transaction is open raises StorageError. reader() is cheap: call it per
    query; each of its calls sees the latest commit. close() rolls back an open transaction.
    """

    def begin(self) -> Transaction: ...
    def reader(self) -> ReadView: ...
    def close(self) -> None: ...


@dataclass(slots=True)
class Snapshot:
    """What the server loads at start to carry on: every active invocation and timer."""

    invocations: list[InvocationRow] = field(default_factory=list)
    timers: list[TimerRow] = field(default_factory=list)
