"""kill -9 a process that writes to SQLite: reopening shows exactly what was committed."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from perdure.server.storage.api import InvocationFilter
from perdure.server.storage.sqlite import SqliteStorage

pytestmark = pytest.mark.crash

# The child commits transactions, printing "committed <n>" only after commit() returns (the
# moment Perdure would tell the world). Then, by mode:
#   open  - opens one more, large transaction (bigger than the page cache, so SQLite spills
#           uncommitted pages into the WAL), prints "writing", and waits to be killed;
#   loop  - keeps committing until it is killed, at a random moment.
_CHILD = r"""
import sys, time
from perdure.server.storage.api import InvocationRow, InvocationStatus, JournalEntry, Target
from perdure.server.storage.sqlite import SqliteStorage

path, mode, first = sys.argv[1], sys.argv[2], int(sys.argv[3])
store = SqliteStorage(path)
store._writer.execute("PRAGMA cache_size = 50")  # spill early: uncommitted frames hit the WAL

def event(tx, n):
    inv = f"inv{n:06}"
    row = InvocationRow(inv, Target("Svc", "h"), InvocationStatus.RUNNING, n, n)
    tx.put_invocation(row)
    tx.append_journal(inv, [JournalEntry(i, 1, bytes([i]) * 300 * i) for i in range(3)])
    tx.set_state("Obj", "k", inv.encode(), b"v" * 1000)

n = 0
while mode == "loop" or n < first:
    tx = store.begin()
    event(tx, n)
    tx.commit()
    print(f"committed {n}", flush=True)
    n += 1
tx = store.begin()
for m in range(n, n + 3000):
    event(tx, m)
print("writing", flush=True)
time.sleep(600)
"""


def _start(path: Path, mode: str, first: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(path), mode, str(first)],
        stdout=subprocess.PIPE,
        text=True,
    )


def _kill(child: subprocess.Popen[str]) -> None:
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert child.stdout is not None
    child.stdout.close()


def _committed_ids(path: Path) -> list[str]:
    store = SqliteStorage(path)
    try:
        assert store.check_integrity() == []
        reader = store.reader()
        rows = reader.list_invocations(InvocationFilter(limit=1_000_000))
        ids = sorted(row.id for row in rows)
        for invocation_id in ids:  # every committed event is whole: row, journal and state
            entries = reader.read_journal(invocation_id)
            assert [e.payload for e in entries] == [bytes([i]) * 300 * i for i in range(3)]
            assert reader.get_state("Obj", "k", invocation_id.encode()) == b"v" * 1000
        assert len(reader.get_all_state("Obj", "k")) == len(ids)
        return ids
    finally:
        store.close()


def test_a_kill_during_an_uncommitted_batch_keeps_exactly_the_commits(tmp_path: Path) -> None:
    path = tmp_path / "perdure.db"
    committed = 25
    child = _start(path, "open", committed)
    assert child.stdout is not None
    lines = [child.stdout.readline().strip() for _ in range(committed + 1)]
    assert lines[-1] == "writing", lines
    _kill(child)
    assert _committed_ids(path) == [f"inv{n:06}" for n in range(committed)]


def test_a_kill_at_a_random_moment_keeps_every_acknowledged_commit(tmp_path: Path) -> None:
    rng = random.Random(7)
    for attempt in range(4):
        path = tmp_path / f"perdure{attempt}.db"
        child = _start(path, "loop", 0)
        assert child.stdout is not None
        acknowledged = -1
        for _ in range(rng.randint(5, 60)):
            acknowledged = int(child.stdout.readline().split()[1])
        _kill(child)
        ids = _committed_ids(path)
        # A prefix of the commits, holding at least every one that was acknowledged (one more
        # may have committed before its acknowledgement was printed).
        assert ids == [f"inv{n:06}" for n in range(len(ids))]
        assert len(ids) >= acknowledged + 1
