"""Conformance checks for each kind of row: exact round trips, ordering, filters, deletes."""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable

from perdure.server.storage.api import (
    HandlerType,
    InvocationFilter,
    InvocationStatus,
    PromiseRow,
    ServiceType,
    Storage,
    Target,
    TimerKind,
    TimerRow,
    Waiter,
    WaiterKind,
)
from perdure.testing._storage_fixtures import (
    OUTCOMES,
    expect_equal,
    fields_left_at_default,
    full_deployment,
    full_invocation,
    full_service,
    journal,
    minimal_invocation,
    opened,
    write,
)

MakeStorage = Callable[[], Storage]
S = InvocationStatus


def check_invocation_round_trips_every_field(make_storage: MakeStorage) -> None:
    row = full_invocation("inv_full")
    expect_equal(fields_left_at_default(row), [], "fields the sample leaves at their default")
    expect_equal(fields_left_at_default(row.target), [], "Target fields left at default")
    variants = [row, minimal_invocation("inv_min")]
    for n, outcome in enumerate(OUTCOMES):
        variants.append(dataclasses.replace(row, id=f"inv_outcome{n}", outcome=outcome))
    for n, status in enumerate(S):
        variants.append(dataclasses.replace(row, id=f"inv_status{n}", status=status))
    kinds = itertools.product(ServiceType, [None, *HandlerType])
    for n, (service_type, handler_type) in enumerate(kinds):
        target = Target("Svc", "run", "" if n % 2 else "k", service_type, handler_type)
        variants.append(dataclasses.replace(row, id=f"inv_kind{n}", target=target))
    with opened(make_storage) as store:
        tx = store.begin()
        for variant in variants:
            tx.put_invocation(variant)
        for variant in variants:
            expect_equal(tx.get_invocation(variant.id), variant, "the row read back in its tx")
        tx.commit()
        for variant in variants:
            got = store.reader().get_invocation(variant.id)
            expect_equal(got, variant, "the row read back after commit")


def check_invocation_rows_are_values(make_storage: MakeStorage) -> None:
    """Changing a row object after put, or after get, changes nothing stored."""
    with opened(make_storage) as store:
        row = full_invocation("inv")
        original = dataclasses.replace(row)
        tx = store.begin()
        tx.put_invocation(row)
        row.status = S.COMPLETED
        row.attempt = 99
        got = tx.get_invocation("inv")
        expect_equal(got, original, "the stored row after changing the object put")
        if got is None:
            raise AssertionError("get_invocation() lost the row it was given")
        got.journal_length = 1234
        expect_equal(tx.get_invocation("inv"), original, "the stored row after changing a read")
        tx.commit()
        got = store.reader().get_invocation("inv")
        if got is None:
            raise AssertionError("the committed row is missing")
        got.retry_count = 77
        expect_equal(store.reader().get_invocation("inv"), original, "committed row, read twice")


def check_put_invocation_replaces_every_field(make_storage: MakeStorage) -> None:
    with opened(make_storage) as store:
        write(store, lambda tx: tx.put_invocation(full_invocation("inv", created_at=10)))
        replacement = minimal_invocation(
            "inv", created_at=20, status=S.COMPLETED, target=Target("Other", "h")
        )
        write(store, lambda tx: tx.put_invocation(replacement))
        reader = store.reader()
        expect_equal(reader.get_invocation("inv"), replacement, "the replaced row")
        expect_equal(reader.list_active_invocations(), [], "active after completing")
        found = reader.list_invocations(InvocationFilter(service="Other"))
        expect_equal(found, [replacement], "listed under its new service")
        expect_equal(reader.list_invocations(InvocationFilter(service="Cart ✓")), [], "old one")


def check_delete_invocation(make_storage: MakeStorage) -> None:
    with opened(make_storage) as store:
        write(
            store,
            lambda tx: tx.put_invocation(minimal_invocation("a")),
            lambda tx: tx.put_invocation(minimal_invocation("b")),
            lambda tx: tx.append_journal("a", journal(2)),
        )
        tx = store.begin()
        tx.delete_invocation("a")
        tx.delete_invocation("missing")  # deleting what is absent is not an error
        expect_equal(tx.get_invocation("a"), None, "a deleted invocation in its tx")
        expect_equal([r.id for r in tx.list_active_invocations()], ["b"], "active in the tx")
        tx.commit()
        reader = store.reader()
        expect_equal(reader.get_invocation("a"), None, "a deleted invocation")
        expect_equal(reader.get_invocation("b"), minimal_invocation("b"), "its neighbour")
        # Journals are deleted on their own (purge deletes both; retention may keep one).
        expect_equal(reader.read_journal("a"), journal(2), "the journal of a deleted row")


def check_journal(make_storage: MakeStorage) -> None:
    with opened(make_storage) as store:
        tx = store.begin()
        tx.append_journal("a", journal(3))
        tx.append_journal("a", [])
        tx.append_journal("a", journal(2, start=3))
        tx.append_journal("b", journal(1))
        expect_equal(tx.read_journal("a"), journal(5), "journal read in its transaction")
        tx.commit()
        reader = store.reader()
        expect_equal(reader.read_journal("a"), journal(5), "the journal, committed")
        expect_equal(reader.read_journal("a", 3), journal(2, start=3), "read_journal(start=3)")
        expect_equal(reader.read_journal("a", 5), [], "read_journal past the end")
        expect_equal(reader.read_journal("b"), journal(1), "another invocation's journal")
        expect_equal(reader.read_journal("c"), [], "a journal never written")
        write(store, lambda tx: tx.delete_journal("a"), lambda tx: tx.delete_journal("none"))
        expect_equal(reader.read_journal("a"), [], "a deleted journal")
        expect_equal(reader.read_journal("b"), journal(1), "the journal left alone")
        write(store, lambda tx: tx.append_journal("a", journal(2)))
        expect_equal(reader.read_journal("a"), journal(2), "a journal written again")
        later, earlier = journal(2, start=4), journal(2, start=2)
        write(store, lambda tx: tx.append_journal("a", later[::-1] + earlier))
        expect_equal(reader.read_journal("a"), journal(6), "entries appended out of order")


def check_state(make_storage: MakeStorage) -> None:
    with opened(make_storage) as store:
        tx = store.begin()
        tx.set_state("Obj", "k", b"b", b"2")
        tx.set_state("Obj", "k", b"a", b"1")
        tx.set_state("Obj", "k", b"\xff\x00", b"\x00")
        tx.set_state("Obj", "k", b"", b"")  # an empty name and an empty value are fine
        tx.set_state("Obj", "k", b"a", b"one")  # overwrite
        # Keys must not collide however a backend joins them: ("Ob", "jk") is not ("Obj", "k").
        tx.set_state("Ob", "jk", b"a", b"other")
        tx.set_state("Obj", "k2", b"a", b"other")
        tx.commit()
        reader = store.reader()
        expected = [(b"", b""), (b"a", b"one"), (b"b", b"2"), (b"\xff\x00", b"\x00")]
        expect_equal(reader.get_all_state("Obj", "k"), expected, "all state, sorted by name")
        expect_equal(reader.get_state("Obj", "k", b"a"), b"one", "an overwritten value")
        expect_equal(reader.get_state("Obj", "k", b""), b"", "an empty value (not None)")
        expect_equal(reader.get_state("Obj", "k", b"zz"), None, "a name never set")
        write(
            store,
            lambda tx: tx.clear_state("Obj", "k", b"b"),
            lambda tx: tx.clear_state("Obj", "k", b"never"),
        )
        expect_equal(reader.get_state("Obj", "k", b"b"), None, "a cleared value")
        expect_equal(len(reader.get_all_state("Obj", "k")), 3, "values left after one clear")
        write(store, lambda tx: tx.clear_all_state("Obj", "k"))
        expect_equal(reader.get_all_state("Obj", "k"), [], "state after clear_all_state")
        expect_equal(reader.get_state("Ob", "jk", b"a"), b"other", "state of ('Ob', 'jk')")
        expect_equal(reader.get_state("Obj", "k2", b"a"), b"other", "state of another key")


def check_locks(make_storage: MakeStorage) -> None:
    with opened(make_storage) as store:
        write(
            store,
            lambda tx: tx.set_lock("Obj", "a", "inv1"),
            lambda tx: tx.set_lock("Obj", "", "inv2"),
            lambda tx: tx.set_lock("Ob", "ja", "inv3"),
        )
        reader = store.reader()
        expect_equal(reader.get_lock("Obj", "a"), "inv1", "a lock holder")
        expect_equal(reader.get_lock("Obj", ""), "inv2", "the holder for the empty key")
        expect_equal(reader.get_lock("Ob", "ja"), "inv3", "the holder for ('Ob', 'ja')")
        # One holder per key: setting the lock again records the new holder.
        write(store, lambda tx: tx.set_lock("Obj", "a", "inv4"))
        expect_equal(reader.get_lock("Obj", "a"), "inv4", "the holder after set_lock again")
        write(store, lambda tx: tx.release_lock("Obj", "a"), lambda tx: tx.release_lock("X", "y"))
        expect_equal(reader.get_lock("Obj", "a"), None, "a released lock")
        expect_equal(reader.get_lock("Obj", ""), "inv2", "another key's lock")


def check_inbox_is_fifo_per_key(make_storage: MakeStorage) -> None:
    with opened(make_storage) as store:
        tx = store.begin()
        for n in range(5):
            tx.push_inbox("Obj", "k", f"inv{n}")
            tx.push_inbox("Obj", "other", f"x{n}")
        expect_equal(tx.peek_inbox("Obj", "k"), "inv0", "the oldest entry")
        expect_equal(tx.inbox_size("Obj", "k"), 5, "inbox size")
        expect_equal(tx.pop_inbox("Obj", "k"), "inv0", "first pop")
        expect_equal(tx.remove_from_inbox("Obj", "k", "inv2"), True, "removing an entry")
        expect_equal(tx.remove_from_inbox("Obj", "k", "inv2"), False, "removing it again")
        tx.commit()
        reader = store.reader()
        expect_equal(reader.peek_inbox("Obj", "k"), "inv1", "the head, committed")
        expect_equal(reader.inbox_size("Obj", "k"), 3, "committed size")
        tx = store.begin()
        popped = [tx.pop_inbox("Obj", "k"), tx.pop_inbox("Obj", "k")]
        tx.push_inbox("Obj", "k", "inv5")
        popped += [tx.pop_inbox("Obj", "k"), tx.pop_inbox("Obj", "k"), tx.pop_inbox("Obj", "k")]
        expect_equal(popped, ["inv1", "inv3", "inv4", "inv5", None], "pops in arrival order")
        tx.push_inbox("Obj", "k", "inv6")  # an emptied inbox starts again
        tx.push_inbox("Obj", "k", "inv7")
        tx.commit()
        expect_equal(reader.peek_inbox("Obj", "k"), "inv6", "head of a refilled inbox")
        expect_equal(reader.inbox_size("Obj", "other"), 5, "the other key's inbox")
        expect_equal(reader.peek_inbox("Obj", "other"), "x0", "the other key's head")


def check_timers_sorted_by_fire_time(make_storage: MakeStorage) -> None:
    timers = [
        TimerRow("sleep:inv1:3", 3_000, "inv1", TimerKind.SLEEP, 3),
        TimerRow("invoke:inv2", 1_000, "inv2", TimerKind.INVOKE),
        TimerRow("retry:inv3", 2_000, "inv3", TimerKind.RETRY),
        TimerRow("cleanup:inv4", 2_000, "inv4", TimerKind.CLEANUP),
        TimerRow("sleep:inv5:0", 2**62, "inv5", TimerKind.SLEEP, 0),
    ]
    with opened(make_storage) as store:
        write(store, *[lambda tx, t=t: tx.put_timer(t) for t in timers])
        in_order = sorted(timers, key=lambda t: (t.fire_at, t.id))
        expect_equal(store.reader().list_timers(), in_order, "timers by (fire_at, id)")
        moved = dataclasses.replace(timers[0], fire_at=500)
        tx = store.begin()
        tx.put_timer(moved)  # same id: replaces the timer
        tx.delete_timer("retry:inv3")
        tx.delete_timer("missing")
        expected = [moved, timers[3], timers[1], timers[4]]
        expected.sort(key=lambda t: (t.fire_at, t.id))
        expect_equal(tx.list_timers(), expected, "timers in the transaction")
        tx.commit()
        expect_equal(store.reader().list_timers(), expected, "timers after replace and delete")


def check_promises(make_storage: MakeStorage) -> None:
    waiters = (Waiter(WaiterKind.PROMISE, "inv1", 4), Waiter(WaiterKind.PROMISE, "inv2", 0))
    rows = [PromiseRow("Wf", "k", "empty"), PromiseRow("Wf", "k", "waited", None, waiters)]
    rows += [PromiseRow("Wf", "k", f"p{n}", o, waiters) for n, o in enumerate(OUTCOMES)]
    with opened(make_storage) as store:
        write(store, *[lambda tx, r=r: tx.put_promise(r) for r in rows])
        write(store, lambda tx: tx.put_promise(PromiseRow("Wf", "k2", "empty")))
        write(store, lambda tx: tx.put_promise(PromiseRow("Wf2", "k", "empty")))
        reader = store.reader()
        for row in rows:
            expect_equal(reader.get_promise("Wf", "k", row.name), row, "a promise read back")
        expect_equal(reader.get_promise("Wf", "k", "never"), None, "a promise never made")
        resolved = PromiseRow("Wf", "k", "waited", rows[2].outcome)
        write(store, lambda tx: tx.put_promise(resolved))
        expect_equal(reader.get_promise("Wf", "k", "waited"), resolved, "a replaced promise")
        write(store, lambda tx: tx.delete_promises("Wf", "k"))
        expect_equal(reader.get_promise("Wf", "k", "waited"), None, "after delete_promises")
        for service, key in (("Wf", "k2"), ("Wf2", "k")):
            kept = PromiseRow(service, key, "empty")
            expect_equal(reader.get_promise(service, key, "empty"), kept, "a promise elsewhere")


def check_idempotency_keys_and_workflow_runs(make_storage: MakeStorage) -> None:
    with opened(make_storage) as store:
        parts = ("Svc", "k", "h", "idem")
        write(store, lambda tx: tx.put_idempotency(*parts, "inv1"))
        for n in range(4):  # change any one part and it is another key
            service, key, handler, idem = (p + "x" if i == n else p for i, p in enumerate(parts))
            tx = store.begin()
            tx.put_idempotency(service, key, handler, idem, f"other{n}")
            tx.commit()
        write(store, lambda tx: tx.put_workflow_run("Wf", "k", "inv1"))
        write(store, lambda tx: tx.put_workflow_run("Wf", "k2", "inv2"))
        reader = store.reader()
        expect_equal(reader.get_idempotency(*parts), "inv1", "an idempotency key")
        expect_equal(reader.get_idempotency("Svc", "kx", "h", "idem"), "other1", "its neighbour")
        expect_equal(reader.get_workflow_run("Wf", "k"), "inv1", "a workflow run")
        write(store, lambda tx: tx.put_idempotency(*parts, "inv9"))
        expect_equal(reader.get_idempotency(*parts), "inv9", "a replaced idempotency key")
        write(
            store,
            lambda tx: tx.delete_idempotency(*parts),
            lambda tx: tx.delete_workflow_run("Wf", "k"),
            lambda tx: tx.delete_idempotency("no", "such", "key", "here"),
            lambda tx: tx.delete_workflow_run("no", "such"),
        )
        expect_equal(reader.get_idempotency(*parts), None, "a deleted idempotency key")
        expect_equal(reader.get_idempotency("Svcx", "k", "h", "idem"), "other0", "kept key")
        expect_equal(reader.get_workflow_run("Wf", "k"), None, "a deleted workflow run")
        expect_equal(reader.get_workflow_run("Wf", "k2"), "inv2", "the run kept")


def check_deployments_and_services(make_storage: MakeStorage) -> None:
    deployment = full_deployment("dp_b", created_at=5)
    expect_equal(fields_left_at_default(deployment), [], "DeploymentRow fields left at default")
    service = full_service("Cart")
    expect_equal(fields_left_at_default(service), [], "ServiceRow fields left at default")
    deployments = [deployment, full_deployment("dp_a", created_at=5), full_deployment("dp_c", 1)]
    services = [
        dataclasses.replace(service, name=f"S{t.value}", service_type=t) for t in ServiceType
    ]
    services += [service, dataclasses.replace(service, name="Aardvark", public=True)]
    with opened(make_storage) as store:
        write(
            store,
            *[lambda tx, d=d: tx.put_deployment(d) for d in deployments],
            lambda tx: tx.put_services(services),
        )
        reader = store.reader()
        by_time = sorted(deployments, key=lambda d: (d.created_at, d.id))
        expect_equal(reader.list_deployments(), by_time, "deployments by (created_at, id)")
        by_name = sorted(services, key=lambda s: s.name)
        expect_equal(reader.list_services(), by_name, "services by name")
        newer = dataclasses.replace(service, revision=3, deployment_id="dp_c")
        changed = dataclasses.replace(deployment, uri="http://elsewhere:9080")
        write(
            store,
            lambda tx: tx.put_services([newer]),
            lambda tx: tx.put_services([]),
            lambda tx: tx.put_deployment(changed),
            lambda tx: tx.delete_deployment("dp_a"),
            lambda tx: tx.delete_service("Aardvark"),
            lambda tx: tx.delete_deployment("missing"),
            lambda tx: tx.delete_service("missing"),
        )
        expect_equal(reader.list_deployments(), [deployments[2], changed], "after the changes")
        expected = sorted([*services[:3], newer], key=lambda s: s.name)
        expect_equal(reader.list_services(), expected, "services after the changes")


CHECKS: tuple[Callable[[MakeStorage], None], ...] = (
    check_invocation_round_trips_every_field,
    check_invocation_rows_are_values,
    check_put_invocation_replaces_every_field,
    check_delete_invocation,
    check_journal,
    check_state,
    check_locks,
    check_inbox_is_fifo_per_key,
    check_timers_sorted_by_fire_time,
    check_promises,
    check_idempotency_keys_and_workflow_runs,
    check_deployments_and_services,
)
