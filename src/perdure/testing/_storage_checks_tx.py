"""Conformance checks for transaction semantics: visibility, rollback, savepoints, lifecycle."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable

from perdure.server.storage.api import InvocationFilter, Storage, StorageError, Transaction
from perdure.testing._storage_fixtures import (
    alter,
    dump,
    expect_equal,
    expect_storage_error,
    journal,
    minimal_invocation,
    opened,
    populate,
    remove,
    write,
)

MakeStorage = Callable[[], Storage]


def check_empty_store_reads_nothing(make_storage: MakeStorage) -> None:
    with opened(make_storage) as store:
        empty: dict[str, object] = {
            "x": (None, [], None, None, [], None, None, 0, None, None, None),
            "lists": ([], [], [], [], []),
        }
        expect_equal(dump(store.reader(), ["x"]), empty, "a new store's reader")
        tx = store.begin()
        expect_equal(dump(tx, ["x"]), empty, "a new store's transaction")
        expect_equal(tx.pop_inbox("Obj", "x"), None, "pop_inbox on an empty inbox")
        expect_equal(tx.remove_from_inbox("Obj", "x", "inv"), False, "remove_from_inbox, empty")
        tx.rollback()


def check_transaction_reads_its_own_writes(make_storage: MakeStorage) -> None:
    with opened(make_storage) as store:
        tx = store.begin()
        populate(tx, "a")
        seen = dump(tx, ["a"])
        tx.commit()
        expect_equal(dump(store.reader(), ["a"]), seen, "what a transaction read of its writes")
        expect_equal(seen["a"][0] is not None, True, "the written invocation is readable")


def check_reader_sees_only_committed_data(make_storage: MakeStorage) -> None:
    with opened(make_storage) as store:
        reader = store.reader()
        before = dump(reader, ["a"])
        tx = store.begin()
        populate(tx, "a")
        expect_equal(dump(reader, ["a"]), before, "the reader before commit()")
        expect_equal(dump(store.reader(), ["a"]), before, "a fresh reader() before commit()")
        in_tx = dump(tx, ["a"])
        tx.commit()
        expect_equal(dump(reader, ["a"]), in_tx, "the same reader after commit()")
        expect_equal(dump(store.reader(), ["a"]), in_tx, "reader() after commit()")


def check_reader_follows_each_commit(make_storage: MakeStorage) -> None:
    with opened(make_storage) as store:
        reader = store.reader()
        for n in range(5):
            tx = store.begin()
            tx.put_invocation(minimal_invocation(f"inv{n}", n))
            tx.commit()
            found = reader.list_invocations(InvocationFilter(limit=100))
            expect_equal(len(found), n + 1, f"invocations the reader sees after commit {n + 1}")


def check_rollback_undoes_the_whole_transaction(make_storage: MakeStorage) -> None:
    with opened(make_storage) as store:
        write(store, lambda tx: populate(tx, "a"), lambda tx: populate(tx, "gone"))
        before = dump(store.reader(), ["a", "b", "gone"])
        tx = store.begin()
        alter(tx, "a")
        populate(tx, "b")
        remove(tx, "gone")
        tx.rollback()
        expect_equal(dump(store.reader(), ["a", "b", "gone"]), before, "reader after rollback()")
        tx = store.begin()
        expect_equal(dump(tx, ["a", "b", "gone"]), before, "a new transaction after rollback()")
        tx.rollback()


def check_savepoint_rollback_undoes_only_writes_since_it(make_storage: MakeStorage) -> None:
    with opened(make_storage) as store:
        write(store, lambda tx: populate(tx, "old"))
        tx = store.begin()
        populate(tx, "a")
        at_savepoint = dump(tx, ["old", "a", "b"])
        tx.savepoint()
        alter(tx, "a")
        remove(tx, "old")
        populate(tx, "b")
        tx.rollback_to_savepoint()
        expect_equal(dump(tx, ["old", "a", "b"]), at_savepoint, "after rollback_to_savepoint()")
        # The savepoint stays open after a rollback to it (as in SQL): roll back to it again.
        alter(tx, "a")
        tx.rollback_to_savepoint()
        expect_equal(dump(tx, ["old", "a", "b"]), at_savepoint, "after a second rollback to it")
        tx.release_savepoint()
        populate(tx, "c")
        expected = dump(tx, ["old", "a", "b", "c"])
        tx.commit()
        expect_equal(dump(store.reader(), ["old", "a", "b", "c"]), expected, "after commit()")


def check_released_savepoint_keeps_its_writes(make_storage: MakeStorage) -> None:
    with opened(make_storage) as store:
        tx = store.begin()
        tx.savepoint()
        populate(tx, "a")
        tx.release_savepoint()
        tx.savepoint()
        alter(tx, "a")
        tx.release_savepoint()
        expected = dump(tx, ["a"])
        tx.commit()
        expect_equal(dump(store.reader(), ["a"]), expected, "writes under released savepoints")


def check_savepoints_nest(make_storage: MakeStorage) -> None:
    with opened(make_storage) as store:
        tx = store.begin()
        populate(tx, "a")
        outer = dump(tx, ["a", "b", "c"])
        tx.savepoint()
        populate(tx, "b")
        inner = dump(tx, ["a", "b", "c"])
        tx.savepoint()
        populate(tx, "c")
        alter(tx, "a")
        tx.rollback_to_savepoint()
        tx.release_savepoint()
        expect_equal(dump(tx, ["a", "b", "c"]), inner, "after undoing the inner savepoint")
        tx.rollback_to_savepoint()
        tx.release_savepoint()
        expect_equal(dump(tx, ["a", "b", "c"]), outer, "after undoing the outer savepoint")
        tx.commit()
        expect_equal(dump(store.reader(), ["a", "b", "c"]), outer, "committed after both")


def check_one_event_per_savepoint_in_a_batch(make_storage: MakeStorage) -> None:
    """The driver's pattern: each event under a savepoint; a failed one is undone alone."""
    with opened(make_storage) as store:
        tx = store.begin()
        for n in range(20):
            tx.savepoint()
            tx.put_invocation(minimal_invocation(f"inv{n}", n))
            tx.append_journal(f"inv{n}", journal(3))
            tx.push_inbox("Obj", "k", f"inv{n}")
            if n % 4 == 3:  # this event "failed"
                tx.rollback_to_savepoint()
            tx.release_savepoint()
        tx.commit()
        reader = store.reader()
        kept = [f"inv{n}" for n in range(20) if n % 4 != 3]
        found = [row.id for row in reader.list_invocations(InvocationFilter(limit=100))]
        expect_equal(sorted(found), sorted(kept), "invocations of the events not rolled back")
        expect_equal(reader.inbox_size("Obj", "k"), len(kept), "inbox entries kept")
        expect_equal(reader.read_journal("inv3"), [], "journal of a rolled-back event")
        expect_equal(reader.read_journal("inv2"), journal(3), "journal of a kept event")


def check_savepoint_misuse_ends_the_transaction(make_storage: MakeStorage) -> None:
    with opened(make_storage) as store:
        for misuse in ("release_savepoint", "rollback_to_savepoint"):
            tx = store.begin()
            populate(tx, "a")
            expect_storage_error(getattr(tx, misuse), f"{misuse}() with no savepoint open")
            expect_storage_error(tx.commit, "commit() after the error")
            tx.rollback()  # a no-op now, and must not raise
            expect_equal(dump(store.reader(), ["a"])["a"][0], None, "data of the failed tx")
        write(store, lambda tx: populate(tx, "b"))  # the store still works


def check_storage_error_ends_the_transaction(make_storage: MakeStorage) -> None:
    """A duplicate journal index is refused, and the whole transaction is rolled back."""
    with opened(make_storage) as store:
        write(store, lambda tx: tx.append_journal("inv", journal(2)))
        tx = store.begin()
        populate(tx, "a")
        expect_storage_error(
            lambda: tx.append_journal("inv", journal(1, start=1)), "a duplicate journal index"
        )
        expect_storage_error(lambda: tx.get_invocation("inv-a"), "a read after the error")
        tx.rollback()
        expect_equal(store.reader().get_invocation("inv-a"), None, "the failed tx's writes")
        expect_equal(store.reader().read_journal("inv"), journal(2), "the committed journal")
        write(store, lambda tx: tx.append_journal("inv", journal(1, start=2)))
        expect_equal(store.reader().read_journal("inv"), journal(3), "journal appended after")


def check_transaction_lifecycle(make_storage: MakeStorage) -> None:
    with opened(make_storage) as store:
        tx = store.begin()
        expect_storage_error(store.begin, "begin() while a transaction is open")
        populate(tx, "a")  # the open transaction is unharmed by the refused begin()
        tx.commit()
        expect_storage_error(tx.commit, "commit() twice")
        expect_storage_error(lambda: populate(tx, "b"), "a write after commit()")
        expect_storage_error(lambda: tx.get_lock("Obj", "a"), "a read after commit()")
        tx.rollback()  # after commit: a no-op
        expect_equal(store.reader().get_lock("Obj", "a"), "inv-a", "committed data")
        tx = store.begin()
        tx.rollback()
        tx.rollback()
        expect_storage_error(tx.commit, "commit() after rollback()")
        expect_storage_error(lambda: populate(tx, "b"), "a write after rollback()")
        write(store, lambda tx: populate(tx, "c"))
        expect_equal(store.reader().get_lock("Obj", "b"), None, "writes refused after the end")


def check_commit_from_another_thread(make_storage: MakeStorage) -> None:
    """The driver writes on the event loop thread and commits from a worker thread."""
    with opened(make_storage) as store:
        for round_ in range(3):
            tx = store.begin()
            populate(tx, f"t{round_}")
            errors: list[BaseException] = []

            def commit(tx: Transaction = tx, errors: list[BaseException] = errors) -> None:
                try:
                    tx.commit()
                except BaseException as exc:
                    errors.append(exc)

            worker = threading.Thread(target=commit)
            worker.start()
            worker.join()
            expect_equal(errors, [], "errors of commit() in a worker thread")
            lock = store.reader().get_lock("Obj", f"t{round_}")
            expect_equal(lock, f"inv-t{round_}", "committed from a worker, read on the caller")


def _commit_if_still_open(tx: Transaction) -> None:
    # Losing the race to rollback() makes commit() raise StorageError: expected here.
    with contextlib.suppress(StorageError):
        tx.commit()


def check_rollback_racing_a_commit_is_all_or_nothing(make_storage: MakeStorage) -> None:
    """A caller that gives up on a commit in a worker thread rolls back while it may still run.

    Either may win, but the batch is then wholly stored or wholly absent, and the store works.
    """
    with opened(make_storage) as store:
        empty = dump(store.reader(), ["r"])
        for round_ in range(10):
            tx = store.begin()
            populate(tx, "r")
            whole = dump(tx, ["r"])
            worker = threading.Thread(target=_commit_if_still_open, args=(tx,))
            worker.start()
            tx.rollback()
            worker.join()
            seen = dump(store.reader(), ["r"])
            if seen != empty:
                expect_equal(seen, whole, f"round {round_}: a commit that won the race")
            write(store, lambda tx: remove(tx, "r"))
            expect_equal(dump(store.reader(), ["r"]), empty, "after cleaning up")


def check_readers_work_from_other_threads(make_storage: MakeStorage) -> None:
    with opened(make_storage) as store:
        write(store, lambda tx: populate(tx, "a"))
        expected = dump(store.reader(), ["a"])
        seen: list[object] = []
        workers = [
            threading.Thread(target=lambda: seen.append(dump(store.reader(), ["a"])))
            for _ in range(4)
        ]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        expect_equal(seen, [expected] * 4, "dumps read from four threads")


def check_closed_store_refuses_work(make_storage: MakeStorage) -> None:
    store = make_storage()
    reader = store.reader()
    store.close()
    store.close()  # closing twice is harmless
    expect_storage_error(store.begin, "begin() after close()")
    expect_storage_error(store.reader, "reader() after close()")
    expect_storage_error(lambda: reader.get_lock("Obj", "a"), "a reader's read after close()")


CHECKS: tuple[Callable[[MakeStorage], None], ...] = (
    check_empty_store_reads_nothing,
    check_transaction_reads_its_own_writes,
    check_reader_sees_only_committed_data,
    check_reader_follows_each_commit,
    check_rollback_undoes_the_whole_transaction,
    check_savepoint_rollback_undoes_only_writes_since_it,
    check_released_savepoint_keeps_its_writes,
    check_savepoints_nest,
    check_one_event_per_savepoint_in_a_batch,
    check_savepoint_misuse_ends_the_transaction,
    check_storage_error_ends_the_transaction,
    check_transaction_lifecycle,
    check_commit_from_another_thread,
    check_rollback_racing_a_commit_is_all_or_nothing,
    check_readers_work_from_other_threads,
    check_closed_store_refuses_work,
)
