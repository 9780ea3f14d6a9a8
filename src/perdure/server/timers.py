"""Durable timers, fired on time: a heap of due times, woken by new timers, feeding the driver.

Timers are stored rows (written by the partition in the same transaction as the command that
set them); this service only keeps an in-memory heap of them so it knows when to wake up. After
a restart it is refilled from storage, so a sleep survives any crash. A timer that is replaced
or cancelled stays in the heap and is skipped when it surfaces (lazy deletion).
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


class TimerService:
    def __init__(
        self, fire: Callable[[TimerRow], None], clock: Callable[[], float] = time.time
    ) -> None:
        self._fire = fire
        self._clock = clock
        self._heap: list[tuple[int, str]] = []
        self._live: dict[str, TimerRow] = {}
        self._changed = asyncio.Event()

    def __len__(self) -> int:
        return len(self._live)

    def load(self, timers: Iterable[TimerRow]) -> None:
        for timer in timers:
            self.schedule(timer)

    def schedule(self, timer: TimerRow) -> None:
        previous = self._live.get(timer.id)
        self._live[timer.id] = timer
        if previous is None or previous.fire_at != timer.fire_at:
            heapq.heappush(self._heap, (timer.fire_at, timer.id))
        if self._heap[0][1] == timer.id:
            self._changed.set()

    def cancel(self, timer_id: str) -> None:
        self._live.pop(timer_id, None)

    def _pop_due(self, now_ms: int) -> list[TimerRow]:
        due: list[TimerRow] = []
        while self._heap and self._heap[0][0] <= now_ms:
            fire_at, timer_id = heapq.heappop(self._heap)
            timer = self._live.get(timer_id)
            if timer is not None and timer.fire_at == fire_at:
                del self._live[timer_id]
                due.append(timer)
        return due

    async def run(self) -> None:
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
