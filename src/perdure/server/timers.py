"""Durable timers, fired on time: a heap of due times, woken by new timers, feeding the driver.

Timers are stored rows (written by the partition in the same transaction as the command that
set them); this service only keeps an in-memory heap of the *earliest* of them so it knows when
to wake up. Every completed invocation holds a cleanup timer for its retention (a day by
default), so the store may hold millions of timers; memory holds at most `window` of them:

- the heap covers every stored timer up to a *horizon* key (fire_at, id), and none after it;
- a timer scheduled after the horizon is left to storage (it is already stored);
- when the heap runs low (or empties) before the horizon's end, the next page is read from
  storage: the timers after the horizon, in (fire_at, id) order, `window // 2` of them;
- when the heap grows past `window`, the horizon moves back and the latest ones are dropped
  from memory (they stay stored and come back with a later page).

Without a `page` reader (tests, the memory backend's callers) every scheduled timer is kept,
as before. After a restart the heap is refilled from storage, so a sleep survives any crash.
A timer that is replaced or cancelled stays in the heap and is skipped when it surfaces (lazy
deletion).
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import time
from collections.abc import Callable, Iterable

from perdure.server.storage.api import TimerRow

# Never sleep longer than this in one go, so a wall-clock jump is noticed within a minute.
MAX_SLEEP_S = 60.0
# At most this many timers in memory when a page reader is given (~400 bytes each).
DEFAULT_WINDOW = 20_000

Key = tuple[int, str]  # (fire_at, id): the order of the heap and of the stored timers
# Reads the stored timers after `after` (all of them if None), by key, at most `limit`.
PageReader = Callable[[Key | None, int], list[TimerRow]]


class TimerService:
    """Fires stored timers on time; see the module docstring.

    >>> from perdure.server.storage.api import TimerKind
    >>> fired = []
    >>> stored = [TimerRow(f"t{i}", 1000 + i, "inv", TimerKind.SLEEP) for i in range(10)]
    >>> page = lambda after, limit: [t for t in stored if after is None
    ...                              or (t.fire_at, t.id) > after][:limit]
    >>> service = TimerService(fired.append, clock=lambda: 1.005, page=page, window=4)
    >>> service.refill()  # a restart: the earliest two (window // 2) are in memory
    >>> len(service)
    2
    >>> [t.id for t in service._pop_due(1005)]  # due: t0..t5; the pages follow on
    ['t0', 't1', 't2', 't3', 't4', 't5']
    """

    def __init__(
        self,
        fire: Callable[[TimerRow], None],
        clock: Callable[[], float] = time.time,
        *,
        page: PageReader | None = None,
        window: int = DEFAULT_WINDOW,
    ) -> None:
        if window < 2:
            raise ValueError("the timer window must hold at least 2 timers")
        self._fire = fire
        self._clock = clock
        self._page = page
        self._window = window
        self._heap: list[tuple[int, str]] = []
        self._live: dict[str, TimerRow] = {}
        # Every stored timer with a key <= horizon is in `_live`; None: no page read yet
        # (nothing stored is known), or no reader: memory holds everything.
        self._horizon: Key | None = None
        self._complete = page is None  # True: memory holds every stored timer
        self._changed = asyncio.Event()

    def __len__(self) -> int:
        return len(self._live)

    def load(self, timers: Iterable[TimerRow]) -> None:
        for timer in timers:
            self.schedule(timer)

    def refill(self) -> None:
        """Reads the first page from storage (at start; `run` does it too, if needed)."""
        if self._page is not None:
            self._horizon, self._complete = None, False
            self._read_page()

    def _read_page(self) -> None:
        assert self._page is not None
        size = max(1, self._window // 2)
        rows = self._page(self._horizon, size)
        for timer in rows:
            self._keep(timer)
        if len(rows) < size:
            self._complete = True  # everything stored is in memory now
        elif rows:
            last = rows[-1]
            self._horizon = (last.fire_at, last.id)

    def _beyond(self, timer: TimerRow) -> bool:
        if self._complete:
            return False
        return self._horizon is None or (timer.fire_at, timer.id) > self._horizon

    def schedule(self, timer: TimerRow) -> None:
        if self._beyond(timer):
            # Stored, and a later page brings it; a copy kept from before must not fire.
            self._live.pop(timer.id, None)
            return
        self._keep(timer)
        if len(self._live) > self._window and self._page is not None:
            self._shrink()

    def _keep(self, timer: TimerRow) -> None:
        previous = self._live.get(timer.id)
        self._live[timer.id] = timer
        if previous is None or previous.fire_at != timer.fire_at:
            heapq.heappush(self._heap, (timer.fire_at, timer.id))
        if self._heap[0][1] == timer.id:
            self._changed.set()

    def _shrink(self) -> None:
        """Keeps the earliest half of the window; the horizon moves back to its last key."""
        keep = heapq.nsmallest(self._window // 2, ((t.fire_at, t.id) for t in self._live.values()))
        self._horizon, self._complete = keep[-1], False
        self._live = {i: t for i, t in self._live.items() if (t.fire_at, i) <= self._horizon}
        self._heap = [(f, i) for f, i in self._heap if (f, i) <= self._horizon]
        heapq.heapify(self._heap)

    def cancel(self, timer_id: str) -> None:
        self._live.pop(timer_id, None)

    def _pop_due(self, now_ms: int) -> list[TimerRow]:
        due: list[TimerRow] = []
        while True:
            while self._heap and self._heap[0][0] <= now_ms:
                fire_at, timer_id = heapq.heappop(self._heap)
                timer = self._live.get(timer_id)
                if timer is not None and timer.fire_at == fire_at:
                    del self._live[timer_id]
                    due.append(timer)
            # Running low before the horizon: read on, so the next due timer is in memory.
            if self._complete or len(self._live) > self._window // 4:
                return due
            before = self._horizon
            self._read_page()
            if self._horizon == before and not self._complete:
                return due

    async def run(self) -> None:
        if self._page is not None and self._horizon is None and not self._complete:
            self.refill()
        while True:
            now_ms = int(self._clock() * 1000)
            for timer in self._pop_due(now_ms):
                self._fire(timer)
            self._changed.clear()
            if self._heap:
                wait_s = min(MAX_SLEEP_S, max(0.0, (self._heap[0][0] - now_ms) / 1000))
            else:
                wait_s = MAX_SLEEP_S
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), timeout=wait_s)
