"""Micro-benchmark of the storage hot path: put_invocation + append_journal (+ commit) costs.

Run: .venv/bin/python bench/storage_micro.py [--n 2000] [--dir /tmp] [--backend sqlite|memory]

Prints the cost of each operation alone (inside one open transaction), then of whole cycles:
one event per commit (every event pays an fsync) and group commits of 10 and 100 events (how
the driver batches under load), then what one durable step (`ctx.run`: a run command, then
its result) costs the storage of a running invocation, with one or two commits per step.
Timings are wall clock on this machine; compare runs, not absolute numbers across machines.
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from perdure.server.storage.api import (
    InvocationRow,
    InvocationStatus,
    JournalEntry,
    Storage,
    Target,
    Transaction,
)
from perdure.server.storage.memory import MemoryStorage
from perdure.server.storage.sqlite import SqliteStorage


def _row(n: int) -> InvocationRow:
    return InvocationRow(
        id=f"inv_1{n:024x}",
        target=Target("Greeter", "greet"),
        status=InvocationStatus.RUNNING,
        created_at=1_700_000_000_000 + n,
        modified_at=1_700_000_000_000 + n,
        headers=(("x-request-id", f"req-{n}"),),
        deployment_id="dp_1",
        protocol_version=5,
        journal_length=2,
        command_count=1,
        attempt=1,
        random_seed=n * 7919,
        running_since=1_700_000_000_000 + n,
    )


def _entries(start: int) -> list[JournalEntry]:
    # An input command and a run command with a ~100-byte payload each: a typical small step.
    return [
        JournalEntry(start, 0x0400, b"\x0a\x20" + b"x" * 100),
        JournalEntry(start + 1, 0x0411, b"\x0a\x05greet" + b"y" * 90),
    ]


def _timed(label: str, count: int, body: Callable[[], None]) -> None:
    began = time.perf_counter()
    body()
    elapsed = time.perf_counter() - began
    per_op_us = elapsed / count * 1e6
    print(f"  {label:<52} {per_op_us:9.1f} us/op   {count / elapsed:10.0f} ops/s")


def _each(action: Callable[[InvocationRow], object], rows: list[InvocationRow]) -> None:
    for row in rows:
        action(row)


def _ops_alone(store: Storage, n: int) -> None:
    rows = [_row(i) for i in range(n)]
    updated = [
        dataclasses.replace(r, journal_length=4, modified_at=r.modified_at + 1) for r in rows
    ]
    entries = _entries(0)
    tx = store.begin()
    _timed("put_invocation (new row)", n, lambda: _each(tx.put_invocation, rows))
    _timed("put_invocation (update)", n, lambda: _each(tx.put_invocation, updated))
    _timed(
        "append_journal (2 entries)",
        n,
        lambda: _each(lambda r: tx.append_journal(r.id, entries), rows),
    )
    _timed("get_invocation", n, lambda: _each(lambda r: tx.get_invocation(r.id), rows))
    _timed("read_journal (2 entries)", n, lambda: _each(lambda r: tx.read_journal(r.id), rows))

    def savepoints() -> None:
        for _ in range(n):
            tx.savepoint()
            tx.release_savepoint()

    _timed("savepoint + release_savepoint", n, savepoints)
    tx.rollback()


def _event(tx: Transaction, n: int) -> None:
    """What one event of a running invocation costs: its row and its new journal entries."""
    row = _row(n)
    tx.savepoint()
    tx.put_invocation(row)
    tx.append_journal(row.id, _entries(0))
    tx.release_savepoint()


def _cycles(store: Storage, n: int, batch: int, offset: int) -> None:
    def run() -> None:
        for start in range(0, n, batch):
            tx = store.begin()
            for i in range(start, start + batch):
                _event(tx, offset + i)
            tx.commit()

    label = f"event cycle, {batch} event(s) per commit"
    _timed(label, n, run)


def _steps(store: Storage, n: int, commits_per_step: int) -> None:
    """Each event reads the invocation row (written one event earlier), appends one journal
    entry and writes the row back, as the partition does for a run command and its result."""
    row = dataclasses.replace(_row(5_000_000 + commits_per_step), journal_length=1)
    tx = store.begin()
    tx.put_invocation(row)
    tx.append_journal(row.id, _entries(0)[:1])
    tx.commit()

    def event(tx: Transaction) -> None:
        current = tx.get_invocation(row.id)
        assert current is not None
        entry = JournalEntry(current.journal_length, 0x0411, b"\x0a\x05step" + b"z" * 40)
        current.journal_length += 1
        current.modified_at += 1
        tx.append_journal(current.id, [entry])
        tx.put_invocation(current)

    def run() -> None:
        for _ in range(n):
            tx = store.begin()
            event(tx)  # the run command
            if commits_per_step == 2:
                tx.commit()
                tx = store.begin()
            event(tx)  # its result
            tx.commit()

    label = f"durable step (2 events), {commits_per_step} commit(s) per step"
    _timed(label, n, run)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="operations per measurement")
    parser.add_argument("--dir", default=None, help="directory for the SQLite file")
    parser.add_argument("--backend", choices=["sqlite", "memory"], default="sqlite")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        store: Storage
        if args.backend == "sqlite":
            path = Path(tmp) / "bench.db"
            store = SqliteStorage(path)
            print(f"sqlite {path} (WAL, synchronous=FULL), n={args.n}")
        else:
            store = MemoryStorage()
            print(f"memory, n={args.n}")
        try:
            print("operations inside one open transaction (no commit):")
            _ops_alone(store, args.n)
            print("whole cycles (savepoint + put_invocation + append_journal, then commit):")
            n_single = max(args.n // 4, 1)  # each commit fsyncs: keep this one shorter
            _cycles(store, n_single, 1, offset=1_000_000)
            _cycles(store, args.n, 10, offset=2_000_000)
            _cycles(store, args.n, 100, offset=3_000_000)
            print("durable steps of one running invocation:")
            _steps(store, n_single, 2)
            _steps(store, n_single, 1)
        finally:
            store.close()


if __name__ == "__main__":
    main()
