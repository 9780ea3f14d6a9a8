"""Fixtures of the storage conformance suite: rows with every field set, a world, expectations."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from perdure.server.storage.api import (
    DeploymentRow,
    Failure,
    HandlerType,
    InvocationFilter,
    InvocationRow,
    InvocationStatus,
    JournalEntry,
    Outcome,
    PromiseRow,
    ReadView,
    ServiceRow,
    ServiceType,
    Storage,
    StorageError,
    Target,
    TimerKind,
    TimerRow,
    Transaction,
    Waiter,
    WaiterKind,
)

BIG = 2**63 - 1  # the largest value a 64-bit signed integer column holds

FAILURE = Failure(409, "conflict: the key is taken ✗", (("retryable", "no"), ("trace", "a\nb")))

# Outcomes that must survive storage exactly: None, an empty value, a missing value, binary
# bytes, a failure with metadata, and both at once (the type allows it, so storage keeps it).
OUTCOMES: tuple[Outcome | None, ...] = (
    None,
    Outcome(value=b""),
    Outcome(value=None),
    Outcome(value=bytes(range(256)) * 8),
    Outcome(failure=Failure(500, "")),
    Outcome(failure=FAILURE),
    Outcome(value=b"partial", failure=FAILURE),
)


def full_invocation(invocation_id: str, created_at: int = 1_700_000_000_000) -> InvocationRow:
    """An invocation whose every field differs from its default (check_every_field_is_set)."""
    return InvocationRow(
        id=invocation_id,
        target=Target(
            "Cart ✓", "checkout", "user/42 ü", ServiceType.VIRTUAL_OBJECT, HandlerType.EXCLUSIVE
        ),
        status=InvocationStatus.BACKING_OFF,
        created_at=created_at,
        modified_at=created_at + 5,
        headers=(("x-trace", "abc"), ("x-trace", "dup"), ("content-type", "application/json")),
        idempotency_key="idem-1",
        deployment_id="dp_1",
        protocol_version=5,
        execution_time=created_at + 60_000,
        journal_length=7,
        command_count=4,
        attempt=3,
        retry_count=2,
        next_retry_at=created_at + 1_000,
        last_failure=FAILURE,
        last_failure_related="command 3 (run 'charge')",
        waiters=(
            Waiter(WaiterKind.CALL, "inv_caller", 2),
            Waiter(WaiterKind.ATTACH, "inv_attacher", 0),
            Waiter(WaiterKind.PROMISE, "inv_promise", BIG),
        ),
        awaiting='{"all":[{"c":1},{"s":"name"}]}',
        random_seed=BIG,
        completion_retention_ms=86_400_000,
        journal_retention_ms=3_600_000,
        outcome=Outcome(b"\x00result\xff", FAILURE),
        completed_at=created_at + 9,
        running_since=created_at + 2,
        caller_id="inv_parent",
    )


def fields_left_at_default(row: Any) -> list[str]:
    """The fields of a dataclass row still equal to their default (or default factory)."""
    left = []
    for f in dataclasses.fields(row):
        if f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        else:
            continue
        if getattr(row, f.name) == default:
            left.append(f.name)
    return left


def minimal_invocation(invocation_id: str, created_at: int = 1, **changes: Any) -> InvocationRow:
    row = InvocationRow(
        id=invocation_id,
        target=Target("Greeter", "greet"),
        status=InvocationStatus.READY,
        created_at=created_at,
        modified_at=created_at,
    )
    return dataclasses.replace(row, **changes)


def journal(count: int, start: int = 0) -> list[JournalEntry]:
    """Entries with every field exercised: empty and binary payloads, keys, failures."""
    entries = []
    for index in range(start, start + count):
        if index % 3 == 0:
            entries.append(JournalEntry(index, 0x0400 + index, bytes([index % 256]) * index))
        elif index % 3 == 1:
            entries.append(JournalEntry(index, 0x8000, b"", f"c:{index}", True))
        else:
            entries.append(JournalEntry(index, 0xFC01, b"\x00\xff", f"n:signal {index}", False))
    return entries


def full_deployment(deployment_id: str, created_at: int = 1_700_000_000_000) -> DeploymentRow:
    return DeploymentRow(
        id=deployment_id,
        uri=f"http://localhost:9080/{deployment_id}",
        protocol_mode="REQUEST_RESPONSE",
        min_protocol_version=1,
        max_protocol_version=5,
        created_at=created_at,
        additional_headers=(("authorization", "Bearer x"), ("x-env", "prod")),
        use_http_11=True,
        manifest='{"services":[{"name":"Cart ✓"}]}',
    )


def full_service(name: str, revision: int = 2, deployment_id: str = "dp_1") -> ServiceRow:
    return ServiceRow(
        name=name,
        revision=revision,
        deployment_id=deployment_id,
        service_type=ServiceType.WORKFLOW,
        definition='{"name":"' + name + '","handlers":[]}',
        public=False,
    )


# -- a "world": one row of every kind per tag, to write, change, and compare wholesale ------


def populate(tx: Transaction, tag: str) -> None:
    """Writes one row of every kind, all named after `tag`."""
    inv = f"inv-{tag}"
    tx.put_invocation(full_invocation(inv))
    tx.append_journal(inv, journal(4))
    tx.set_state("Obj", tag, b"count", tag.encode())
    tx.set_state("Obj", tag, b"\x00name", b"")
    tx.set_lock("Obj", tag, inv)
    tx.push_inbox("Obj", tag, f"{inv}-next-1")
    tx.push_inbox("Obj", tag, f"{inv}-next-2")
    tx.put_timer(TimerRow(f"sleep:{inv}:1", 5_000, inv, TimerKind.SLEEP, 1))
    tx.put_promise(
        PromiseRow("Wf", tag, "approved", Outcome(b"yes"), (Waiter(WaiterKind.PROMISE, inv, 3),))
    )
    tx.put_idempotency("Obj", tag, "add", "idem", inv)
    tx.put_workflow_run("Wf", tag, inv)
    tx.put_deployment(full_deployment(f"dp-{tag}"))
    tx.put_services([full_service(f"Svc-{tag}", deployment_id=f"dp-{tag}")])


def alter(tx: Transaction, tag: str) -> None:
    """Changes or deletes every row `populate(tx, tag)` wrote."""
    inv = f"inv-{tag}"
    tx.put_invocation(dataclasses.replace(full_invocation(inv), status=InvocationStatus.COMPLETED))
    tx.append_journal(inv, journal(2, start=4))
    tx.set_state("Obj", tag, b"count", b"changed")
    tx.clear_state("Obj", tag, b"\x00name")
    tx.release_lock("Obj", tag)
    tx.pop_inbox("Obj", tag)
    tx.delete_timer(f"sleep:{inv}:1")
    tx.put_promise(PromiseRow("Wf", tag, "approved", Outcome(failure=FAILURE)))
    tx.delete_idempotency("Obj", tag, "add", "idem")
    tx.delete_workflow_run("Wf", tag)
    tx.delete_deployment(f"dp-{tag}")
    tx.delete_service(f"Svc-{tag}")


def remove(tx: Transaction, tag: str) -> None:
    """Deletes everything `populate(tx, tag)` wrote."""
    inv = f"inv-{tag}"
    tx.delete_invocation(inv)
    tx.delete_journal(inv)
    tx.clear_all_state("Obj", tag)
    tx.release_lock("Obj", tag)
    while tx.pop_inbox("Obj", tag) is not None:
        pass
    tx.delete_timer(f"sleep:{inv}:1")
    tx.delete_promises("Wf", tag)
    tx.delete_idempotency("Obj", tag, "add", "idem")
    tx.delete_workflow_run("Wf", tag)
    tx.delete_deployment(f"dp-{tag}")
    tx.delete_service(f"Svc-{tag}")


def dump(view: ReadView, tags: Iterable[str]) -> dict[str, Any]:
    """Everything a view shows about the rows of `tags`, plus every list, for comparing."""
    seen: dict[str, Any] = {}
    for tag in tags:
        inv = f"inv-{tag}"
        seen[tag] = (
            view.get_invocation(inv),
            view.read_journal(inv),
            view.get_state("Obj", tag, b"count"),
            view.get_state("Obj", tag, b"\x00name"),
            view.get_all_state("Obj", tag),
            view.get_lock("Obj", tag),
            view.peek_inbox("Obj", tag),
            view.inbox_size("Obj", tag),
            view.get_promise("Wf", tag, "approved"),
            view.get_idempotency("Obj", tag, "add", "idem"),
            view.get_workflow_run("Wf", tag),
        )
    seen["lists"] = (
        view.list_invocations(InvocationFilter(limit=10_000)),
        view.list_active_invocations(),
        view.list_timers(),
        view.list_deployments(),
        view.list_services(),
    )
    return seen


# -- expectations: explicit AssertionErrors, since pytest rewrites asserts only in test files -


def expect_equal(actual: Any, expected: Any, what: str) -> None:
    if actual != expected:
        raise AssertionError(f"{what}:\n  expected {expected!r}\n  got      {actual!r}")


def expect_storage_error(call: Callable[[], object], what: str) -> StorageError:
    try:
        call()
    except StorageError as exc:
        if not str(exc):
            raise AssertionError(f"{what}: the StorageError has no message") from exc
        return exc
    raise AssertionError(f"{what}: expected StorageError, nothing was raised")


@contextmanager
def opened(make_storage: Callable[[], Storage]) -> Iterator[Storage]:
    store = make_storage()
    try:
        yield store
    finally:
        store.close()


def write(store: Storage, *steps: Callable[[Transaction], object]) -> None:
    """Runs `steps` in one transaction and commits it."""
    tx = store.begin()
    try:
        for step in steps:
            step(tx)
        tx.commit()
    except BaseException:
        tx.rollback()
        raise
