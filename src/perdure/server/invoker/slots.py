"""Which attempt may open a stream now: the invoker's concurrency limit, as a pure scheduler.

The partition has already committed every attempt it hands to the invoker (the invocation is
`running` in storage), so holding an attempt back here loses nothing: a crash forgets this
queue, and the restart starts every running invocation again (`ServerStarted`). What the queue
changes is *when* the stream opens:

- at most `limit` attempts are open at once (None: no limit); the others wait, first in first
  out;
- two lanes: attempts of invocations someone is waiting on (calls, and everything not known to
  be one-way) start before one-way invocations accepted by the ingress (`/send`);
- one-way attempts take at most `one_way_limit` of the open attempts, and while the ingress is
  busy accepting sends (`busy`) at most `one_way_share`, so that accepting a burst is not slowed
  by running it: the rest of the burst waits in the queue and drains once the ingress is quiet.
  The one-way lane shapes how fast such attempts *start*, not how long they may run: the
  invoker takes an attempt off the lane (`leave_lane`) once it has been open for a while
  (`service.LANE_HOLD_S`), so handlers that wait long (on a promise, an awakeable, a slow
  call) keep only their slot under `limit` and never starve later sends.

Sans-I/O: no tasks, no clock. The invoker (`service.py`) owns the streams and asks `pop_ready`
whenever a slot may have opened.

>>> slots: AttemptSlots[str] = AttemptSlots(limit=2, one_way_share=1, one_way_limit=8)
>>> for name in ("a", "b", "c"):
...     slots.push(name, name.upper(), one_way=True)
>>> slots.pop_ready(busy=True)          # one one-way attempt while the ingress is busy
('a', 'A', True)
>>> slots.pop_ready(busy=True) is None
True
>>> slots.pop_ready(busy=False)         # quiet: up to the limit
('b', 'B', True)
>>> slots.pop_ready(busy=False) is None  # two open: the limit
True
>>> slots.finished(one_way=True)
>>> slots.pop_ready(busy=False)
('c', 'C', True)
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Generic, TypeVar

Item = TypeVar("Item")

# While the ingress accepts a burst of sends, this many one-way attempts still run, so the
# backlog always drains; once it is quiet, up to DEFAULT_ONE_WAY_LIMIT. 2 rather than 8: on a
# quiet machine it accepted 1.05-1.11x restate-server's rate at c=64 where 8 did 0.81-0.92x,
# with the backlog completed as fast (bench/results/2026-12-06-share{2,8}-{a,b}.md); a slow
# handler holds a lane slot for LANE_HOLD_S at most, so 2 cannot starve the lane.
DEFAULT_ONE_WAY_SHARE = 2
DEFAULT_ONE_WAY_LIMIT = 128


class AttemptSlots(Generic[Item]):
    """A FIFO per lane and counters of the open attempts; see the module docstring."""

    def __init__(
        self,
        limit: int | None = None,
        *,
        one_way_share: int = DEFAULT_ONE_WAY_SHARE,
        one_way_limit: int = DEFAULT_ONE_WAY_LIMIT,
    ) -> None:
        if limit is not None and limit < 1:
            raise ValueError("the concurrency limit must be at least 1 (or None: no limit)")
        if not 1 <= one_way_share <= one_way_limit:
            raise ValueError("need 1 <= one_way_share <= one_way_limit")
        self.limit = limit
        self.one_way_share = one_way_share
        self.one_way_limit = one_way_limit
        self._calls: OrderedDict[str, Item] = OrderedDict()
        self._one_way: OrderedDict[str, Item] = OrderedDict()
        self.open = 0
        self.open_one_way = 0

    def __len__(self) -> int:
        """How many attempts wait for a slot."""
        return len(self._calls) + len(self._one_way)

    def __contains__(self, key: object) -> bool:
        return key in self._calls or key in self._one_way

    def get(self, key: str) -> Item | None:
        item = self._calls.get(key)
        return item if item is not None else self._one_way.get(key)

    def push(self, key: str, item: Item, *, one_way: bool) -> None:
        """Queues an attempt at the end of its lane (replacing one queued for the same key)."""
        self.remove(key)
        (self._one_way if one_way else self._calls)[key] = item

    def remove(self, key: str) -> Item | None:
        """Takes a queued attempt out (it was aborted or superseded); None if not queued."""
        item = self._calls.pop(key, None)
        return item if item is not None else self._one_way.pop(key, None)

    def _full(self) -> bool:
        return self.limit is not None and self.open >= self.limit

    def _one_way_room(self, busy: bool) -> bool:
        return self.open_one_way < (self.one_way_share if busy else self.one_way_limit)

    def held_back(self, *, busy: bool) -> bool:
        """One-way attempts wait only because the ingress is busy (worth a look when quiet)."""
        return (
            busy
            and bool(self._one_way)
            and not self._full()
            and not self._one_way_room(True)
            and self._one_way_room(False)
        )

    def pop_ready(self, *, busy: bool) -> tuple[str, Item, bool] | None:
        """The next attempt that may open now, counted as open; None if none may."""
        if self._full():
            return None
        if self._calls:
            key, item = self._calls.popitem(last=False)
            self.open += 1
            return key, item, False
        if self._one_way and self._one_way_room(busy):
            key, item = self._one_way.popitem(last=False)
            self.open += 1
            self.open_one_way += 1
            return key, item, True
        return None

    def admit(self, *, one_way: bool, busy: bool) -> bool:
        """Counts an attempt as open if it may open at once, with nothing queued before it."""
        if self._full() or self._calls:
            return False
        if one_way and (self._one_way or not self._one_way_room(busy)):
            return False
        self.open += 1
        if one_way:
            self.open_one_way += 1
        return True

    def clear(self) -> None:
        """Forgets every waiting attempt (shutdown: the restart starts them again)."""
        self._calls.clear()
        self._one_way.clear()

    def leave_lane(self) -> None:
        """An open one-way attempt stops counting against the one-way lane (it stays open).

        >>> slots: AttemptSlots[str] = AttemptSlots(one_way_share=1, one_way_limit=1)
        >>> slots.push("a", "A", one_way=True); slots.push("b", "B", one_way=True)
        >>> slots.pop_ready(busy=False), slots.pop_ready(busy=False)
        (('a', 'A', True), None)
        >>> slots.leave_lane()
        >>> slots.pop_ready(busy=False), slots.open
        (('b', 'B', True), 2)
        """
        self.open_one_way -= 1

    def finished(self, *, one_way: bool) -> None:
        """An open attempt ended (or was stopped): its slot is free."""
        self.open -= 1
        if one_way:
            self.open_one_way -= 1
