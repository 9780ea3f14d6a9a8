"""The storage conformance suite: the behaviour every Storage backend must show, as checks.

Shaped like trio's `check_one_way_stream`: give it a way to make a fresh, empty store and it
runs every check, raising AssertionError (or the backend's own error) at the first failure::

    from perdure.server.storage.memory import MemoryStorage
    from perdure.testing.storage_conformance import check_storage

    check_storage(MemoryStorage)

A backend that keeps data across a close also passes `reopen(store) -> store`, which closes
`store` and opens the same data again; the persistence checks then run too. To see each check
as its own test, parametrise over `CHECKS` (each takes `make_storage`) and `REOPEN_CHECKS`
(each takes `make_storage, reopen`), as Perdure's own tests/storage/ does.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable

from perdure.server.storage.api import InvocationFilter, InvocationRow, InvocationStatus, Storage
from perdure.testing import _storage_checks_rows, _storage_checks_tx
from perdure.testing._storage_fixtures import (
    alter,
    dump,
    expect_equal,
    journal,
    minimal_invocation,
    opened,
    populate,
    write,
)

MakeStorage = Callable[[], Storage]
Reopen = Callable[[Storage], Storage]
S = InvocationStatus


def _reference_list(rows: list[InvocationRow], flt: InvocationFilter) -> list[InvocationRow]:
    """What list_invocations must return, computed the slow, obvious way."""
    found = [
        r
        for r in rows
        if (flt.statuses is None or r.status in flt.statuses)
        and (flt.service is None or r.target.service == flt.service)
        and (flt.key is None or r.target.key == flt.key)
    ]
    found.sort(key=lambda r: (r.created_at, r.id), reverse=True)
    return found[: max(flt.limit, 0)]


def check_list_invocations_filters_newest_first(make_storage: MakeStorage) -> None:
    """Statuses, service, key and limit combine; newest first; ties by id, descending."""
    rows = []
    for n, status in enumerate(itertools.islice(itertools.cycle(S), 24)):
        target = dataclasses.replace(
            minimal_invocation("x").target, service="AB"[n % 2], key=["k1", "k2", ""][n % 3]
        )
        created_at = 1_000 + (n // 3) * 10  # three rows share each creation time
        rows.append(minimal_invocation(f"inv{n:02}", created_at, status=status, target=target))
    with opened(make_storage) as store:
        write(store, *[lambda tx, r=r: tx.put_invocation(r) for r in rows])
        reader = store.reader()
        some = frozenset({S.COMPLETED, S.PENDING})
        status_sets = [None, frozenset(), frozenset({S.RUNNING}), some, frozenset(S)]
        for statuses, service, key, limit in itertools.product(
            status_sets, [None, "A", "Z"], [None, "k1", ""], [0, 1, 5, 100]
        ):
            flt = InvocationFilter(statuses, service, key, limit)
            expected = _reference_list(rows, flt)
            expect_equal(reader.list_invocations(flt), expected, f"list_invocations({flt})")
        expect_equal(reader.list_invocations(InvocationFilter(limit=-1)), [], "a negative limit")


def check_list_active_invocations(make_storage: MakeStorage) -> None:
    """Every invocation not COMPLETED, oldest first (by created_at, then id)."""
    rows = [
        minimal_invocation(f"inv{n}", created_at=100 - n % 3, status=status)
        for n, status in enumerate([*S, *S])
    ]
    with opened(make_storage) as store:
        write(store, *[lambda tx, r=r: tx.put_invocation(r) for r in rows])
        active = sorted(
            (r for r in rows if r.status is not S.COMPLETED), key=lambda r: (r.created_at, r.id)
        )
        expect_equal(store.reader().list_active_invocations(), active, "active invocations")
        tx = store.begin()
        done = dataclasses.replace(active[0], status=S.COMPLETED)
        tx.put_invocation(done)
        tx.put_invocation(minimal_invocation("new", created_at=0, status=S.SCHEDULED))
        expected = [minimal_invocation("new", created_at=0, status=S.SCHEDULED), *active[1:]]
        expect_equal(tx.list_active_invocations(), expected, "active, in the transaction")
        tx.commit()
        expect_equal(store.reader().list_active_invocations(), expected, "active, committed")


def check_a_few_thousand_rows(make_storage: MakeStorage) -> None:
    """Enough rows to catch a backend that is only right (or only fast enough) when tiny."""
    count = 2_000
    with opened(make_storage) as store:
        tx = store.begin()
        for n in range(count):
            inv = f"inv{n:05}"
            tx.put_invocation(minimal_invocation(inv, n, status=S.RUNNING))
            tx.append_journal(inv, journal(3))
            tx.set_state("Obj", str(n % 50), inv.encode(), b"v")
            tx.push_inbox("Obj", str(n % 50), inv)
        tx.commit()
        for batch in range(0, count, 500):  # complete every other one, in several commits
            tx = store.begin()
            for n in range(batch, batch + 500, 2):
                tx.put_invocation(minimal_invocation(f"inv{n:05}", n, status=S.COMPLETED))
            tx.commit()
        reader = store.reader()
        active = reader.list_active_invocations()
        expect_equal(len(active), count // 2, "active invocations")
        expect_equal(active[0].id, "inv00001", "the oldest active invocation")
        expect_equal(reader.read_journal(f"inv{count - 1:05}"), journal(3), "the last journal")
        expect_equal(len(reader.get_all_state("Obj", "7")), count // 50, "state of one key")
        expect_equal(reader.inbox_size("Obj", "7"), count // 50, "inbox of one key")
        expect_equal(reader.peek_inbox("Obj", "7"), "inv00007", "head of that inbox")
        newest = reader.list_invocations(InvocationFilter(limit=3))
        expect_equal([r.id for r in newest], ["inv01999", "inv01998", "inv01997"], "newest")


def check_committed_data_survives_reopen(make_storage: MakeStorage, reopen: Reopen) -> None:
    store = make_storage()
    try:
        write(store, lambda tx: populate(tx, "a"), lambda tx: populate(tx, "b"))
        write(store, lambda tx: alter(tx, "b"))
        before = dump(store.reader(), ["a", "b"])
        store = reopen(store)
        expect_equal(dump(store.reader(), ["a", "b"]), before, "committed data after reopening")
        # Writing carries on where it stopped: the inbox stays FIFO, the journal appends.
        write(
            store,
            lambda tx: tx.push_inbox("Obj", "a", "later"),
            lambda tx: tx.append_journal("inv-a", journal(1, start=4)),
        )
        store = reopen(store)
        tx = store.begin()
        popped = [tx.pop_inbox("Obj", "a") for _ in range(4)]
        expect_equal(popped, ["inv-a-next-1", "inv-a-next-2", "later", None], "inbox after reopen")
        expect_equal(tx.read_journal("inv-a"), journal(5), "journal appended after a reopen")
        tx.rollback()
    finally:
        store.close()


def check_uncommitted_data_is_lost_on_reopen(make_storage: MakeStorage, reopen: Reopen) -> None:
    store = make_storage()
    try:
        write(store, lambda tx: populate(tx, "a"))
        before = dump(store.reader(), ["a", "b"])
        tx = store.begin()
        alter(tx, "a")
        populate(tx, "b")
        store = reopen(store)  # closes the store with the transaction still open
        expect_equal(dump(store.reader(), ["a", "b"]), before, "data after an uncommitted close")
        write(store, lambda tx: populate(tx, "c"))  # and the reopened store takes writes
    finally:
        store.close()


CHECKS: tuple[Callable[[MakeStorage], None], ...] = (
    *_storage_checks_tx.CHECKS,
    *_storage_checks_rows.CHECKS,
    check_list_invocations_filters_newest_first,
    check_list_active_invocations,
    check_a_few_thousand_rows,
)
REOPEN_CHECKS: tuple[Callable[[MakeStorage, Reopen], None], ...] = (
    check_committed_data_survives_reopen,
    check_uncommitted_data_is_lost_on_reopen,
)


def check_storage(make_storage: MakeStorage, reopen: Reopen | None = None) -> None:
    """Runs every check against stores from `make_storage` (and `reopen`, if given).

    `make_storage()` must return a new, empty store each time; each check closes its stores.
    Raises AssertionError naming the first behaviour that differs from the contract.
    """
    for check in CHECKS:
        check(make_storage)
    if reopen is not None:
        for reopen_check in REOPEN_CHECKS:
            reopen_check(make_storage, reopen)


__all__ = ["CHECKS", "REOPEN_CHECKS", "MakeStorage", "Reopen", "check_storage"]
