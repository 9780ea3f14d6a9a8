"""The driver's batching on a real SQLite file: one bad event is undone alone, a batch that
tells nobody anything waits for the next one's commit, and nothing is told before a commit.

The applier here is a stand-in for the partition: each event names a lock to write and whether
to answer, so what was stored and what was told can be checked directly.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from perdure.server import driver as driver_module
from perdure.server.driver import Driver
from perdure.server.partition.effects import Effect, Reply, ReplyKind, ReplyToRequest
from perdure.server.partition.waiters import IngressWaiters
from perdure.server.storage.api import Transaction
from perdure.server.storage.sqlite import SqliteStorage


@dataclass(frozen=True)
class Write:
    """Stores lock `key`; answers request `request_id` (if any); raises if `boom`."""

    key: str
    request_id: int | None = None
    boom: bool = False


class LockWriter:
    def __init__(self) -> None:
        self.waiters = IngressWaiters()
        self.applied: list[str] = []

    def apply(self, tx: Transaction, event: Write, now_ms: int) -> list[Effect]:  # type: ignore[override]
        self.applied.append(event.key)
        tx.set_lock("S", event.key, f"inv_{event.key}")
        self.waiters.add(event.key, 1)
        if event.boom:
            raise ValueError(f"bad event {event.key}")
        if event.request_id is None:
            return []
        return [ReplyToRequest(event.request_id, Reply(ReplyKind.DONE, status=200))]

    def on_batch_lost(self, events: list[object]) -> list[Effect]:
        return []

    def checkpoint(self) -> object:
        return self.waiters.checkpoint()

    def restore(self, checkpoint: object) -> None:
        assert isinstance(checkpoint, int)
        self.waiters.restore(checkpoint)


@dataclass
class Rig:
    driver: Driver
    store: SqliteStorage
    applier: LockWriter
    told: list[Effect]

    def stored(self, key: str) -> bool:
        return self.store.reader().get_lock("S", key) is not None


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    store = SqliteStorage(tmp_path / "perdure.db")
    applier = LockWriter()
    told: list[Effect] = []
    driver = Driver(store, applier, told.extend)  # type: ignore[arg-type]
    task = asyncio.create_task(driver.run())
    try:
        yield Rig(driver, store, applier, told)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        store.close()


async def _until(check: object, what: str) -> None:
    for _ in range(2000):
        if callable(check) and check():
            return
        await asyncio.sleep(0.005)
    raise AssertionError(f"never happened: {what}")


async def test_a_bad_event_is_undone_alone_and_the_rest_of_its_batch_is_kept(rig: Rig) -> None:
    # Queued together, so they form one batch: the fast path fails on "b" and the batch is
    # applied again event by event.
    futures = [
        asyncio.ensure_future(rig.driver.request(lambda rid, k=k: Write(k, rid, boom=k == "b")))
        for k in ("a", "b", "c")
    ]
    replies = await asyncio.gather(*futures)
    assert [r.status for r in replies] == [200, 500, 200]
    assert "nothing was stored" in (replies[1].message or "")
    assert rig.stored("a") and rig.stored("c")
    assert not rig.stored("b")
    # a, b (raised), then a, b, c one by one
    assert rig.applier.applied == ["a", "b", "a", "b", "c"]
    # The memory of the bad event was undone with its writes; the others' stayed.
    assert "a" in rig.applier.waiters and "c" in rig.applier.waiters
    assert "b" not in rig.applier.waiters
    assert rig.driver.commits == 1


async def test_a_batch_without_effects_shares_the_next_batchs_commit(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(driver_module, "IDLE_COMMIT_S", 3600.0)  # only the next batch commits
    rig.driver.submit(Write("quiet"))
    await _until(lambda: rig.driver.batches == 1, "the quiet batch is applied")
    assert not rig.stored("quiet")  # applied, not committed: the reader cannot see it yet
    assert rig.driver.commits == 0
    reply = await rig.driver.request(lambda rid: Write("loud", rid))
    assert reply.status == 200
    assert rig.stored("quiet") and rig.stored("loud")  # one commit holds both
    assert rig.driver.commits == 1
    assert rig.driver.events == 2


async def test_a_batch_without_effects_is_committed_when_nothing_follows(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(driver_module, "IDLE_COMMIT_S", 0.001)
    rig.driver.submit(Write("alone"))
    await _until(lambda: rig.stored("alone"), "the quiet batch is committed on its own")
    assert rig.driver.commits == 1


async def test_stopping_commits_a_transaction_held_open(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(driver_module, "IDLE_COMMIT_S", 3600.0)
    store = SqliteStorage(tmp_path / "perdure.db")
    driver = Driver(store, LockWriter(), lambda effects: None)  # type: ignore[arg-type]
    task = asyncio.create_task(driver.run())
    driver.submit(Write("held"))
    await _until(lambda: driver.batches == 1, "the batch is applied")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert store.reader().get_lock("S", "held") == "inv_held"
    store.close()


def test_ingress_waiters_undo_to_the_last_checkpoint_only() -> None:
    w = IngressWaiters()
    w.add("inv_1", 1)
    mark = w.checkpoint()
    w.add("inv_1", 2)
    w.add("inv_2", 3)
    assert w.pop("inv_1") == [1, 2]
    w.restore(mark)
    assert w.get("inv_1") == [1] and "inv_2" not in w
    newer = w.checkpoint()
    with pytest.raises(RuntimeError):
        w.restore(mark)
    w.restore(newer)
    assert w.pop("inv_1") == [1]
