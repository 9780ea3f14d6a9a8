"""What a start reads: a window of the earliest stored timers (not all of them), and only
the running invocations (not every active one).

A model store (a dict, read in pages like SQLite's `list_timers(after, limit)`) against the
service: random schedules, replacements, cancels and clock steps; every stored timer fires
once, on time, in order, and memory never holds much more than the window.
"""

from __future__ import annotations

import random

import pytest

from perdure.server.storage import open_storage
from perdure.server.storage.api import TimerKind, TimerRow
from perdure.server.timers import TimerService


class ModelStore:
    def __init__(self) -> None:
        self.timers: dict[str, TimerRow] = {}

    def page(self, after: tuple[int, str] | None, limit: int) -> list[TimerRow]:
        rows = sorted(self.timers.values(), key=lambda t: (t.fire_at, t.id))
        return [t for t in rows if after is None or (t.fire_at, t.id) > after][:limit]


def _timer(i: int, fire_at: int) -> TimerRow:
    return TimerRow(f"t{i:06d}", fire_at, f"inv{i}", TimerKind.CLEANUP)


@pytest.mark.parametrize("seed", range(30))
def test_every_stored_timer_fires_once_on_time_with_a_bounded_window(seed: int) -> None:
    rng = random.Random(seed)
    store, fired, now = ModelStore(), [], [0]
    window = rng.choice([2, 4, 10, 50])
    for i in range(rng.randrange(0, 200)):  # stored before the start
        store.timers[f"t{i:06d}"] = _timer(i, rng.randrange(0, 5000))
    service = TimerService(
        fired.append, clock=lambda: now[0] / 1000, page=store.page, window=window
    )
    service.refill()
    most = 0
    for step in range(600):
        action = rng.random()
        if action < 0.4:  # schedule a new timer, or replace one (same id, new time)
            i = rng.randrange(0, 400)
            timer = _timer(i, now[0] + rng.randrange(0, 3000))
            store.timers[timer.id] = timer
            service.schedule(timer)
        elif action < 0.5 and store.timers:  # cancel one
            timer_id = rng.choice(sorted(store.timers))
            del store.timers[timer_id]
            service.cancel(timer_id)
        else:  # time passes; what fires is deleted from the store (as the partition does)
            now[0] += rng.randrange(0, 200)
            due = service._pop_due(now[0])
            for timer in due:
                assert store.timers.get(timer.id) == timer, f"step {step}: {timer} not stored"
                assert timer.fire_at <= now[0]
                del store.timers[timer.id]
            assert [(t.fire_at, t.id) for t in due] == sorted((t.fire_at, t.id) for t in due)
            left = [t for t in store.timers.values() if t.fire_at <= now[0]]
            assert not left, f"step {step}: due but not fired: {left}"
        most = max(most, len(service))
    now[0] += 10_000
    for timer in service._pop_due(now[0]):
        assert store.timers.pop(timer.id) == timer
    assert store.timers == {}
    assert most <= window + 1


def test_without_a_page_reader_every_timer_stays_in_memory() -> None:
    service = TimerService(lambda timer: None, clock=lambda: 0.0)
    service.load(_timer(i, 1000 + i) for i in range(100))
    assert len(service) == 100


def test_sqlite_lists_timers_after_a_key_in_pages(tmp_path) -> None:  # type: ignore[no-untyped-def]
    store = open_storage(tmp_path)
    try:
        tx = store.begin()
        timers = [_timer(i, 1000 + i // 3) for i in range(10)]  # ties on fire_at
        for timer in timers:
            tx.put_timer(timer)
        tx.commit()
        reader = store.reader()
        assert reader.list_timers() == timers
        assert reader.list_timers(limit=4) == timers[:4]
        key = (timers[3].fire_at, timers[3].id)
        assert reader.list_timers(key, 4) == timers[4:8]
        assert reader.list_timers(key) == timers[4:]
        assert reader.list_timers(key, 0) == []
    finally:
        store.close()


def test_sqlite_lists_only_the_active_invocations_of_some_statuses(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from perdure.server.storage.api import InvocationRow, InvocationStatus, Target

    store = open_storage(tmp_path)
    try:
        tx = store.begin()
        statuses = list(InvocationStatus) * 2
        for i, status in enumerate(statuses):
            tx.put_invocation(InvocationRow(f"inv{i:02d}", Target("S", "h"), status, i, i))
        tx.commit()
        wanted = frozenset({InvocationStatus.RUNNING, InvocationStatus.READY})
        got = store.reader().list_active_invocations(wanted)
        assert [r.id for r in got] == [f"inv{i:02d}" for i, s in enumerate(statuses) if s in wanted]
        assert len(store.reader().list_active_invocations()) == len(statuses) - 2
    finally:
        store.close()
