"""The pipeline: events -> one storage transaction -> partition.apply each -> commit -> effects.

This is the only place where effects leave the partition, and it hands them out only after the
transaction that recorded them has committed: rule 1 ("commit before you tell") holds by
construction. Events that arrive while a commit is in flight wait and form the next batch, so
one fsync covers many events (group commit) without any added delay at low load.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Protocol

from perdure.server.partition.effects import (
    Effect,
    Reply,
    ReplyKind,
    ReplyToRequest,
    ScheduleTimer,
)
from perdure.server.partition.events import AttemptFailed, Event, FramesReceived
from perdure.server.storage.api import Storage, StorageError, Transaction

log = logging.getLogger("perdure.driver")

# At most this many events share one transaction. Large enough that one fsync (~0.5 ms here)
# is spread over many events under load, small enough that one batch's effects go out quickly.
MAX_BATCH = 512

# An attempt whose messages could not be stored (disk full, I/O error) is aborted; this long
# after, the driver reports it failed so that the retry policy starts the next attempt. The
# pause keeps a disk that stays full from being hammered in a tight loop.
LOST_ATTEMPT_RETRY_S = 1.0


class Applier(Protocol):
    def apply(self, tx: Transaction, event: Event, now_ms: int) -> list[Effect]: ...
    def on_batch_lost(self, events: list[Event]) -> list[Effect]: ...


EffectSink = Callable[[list[Effect]], None]


def _request_id(event: Event) -> int | None:
    return getattr(event, "request_id", None)


class Driver:
    """Owns the write transaction; the partition runs inside it, on the event loop thread."""

    def __init__(
        self,
        storage: Storage,
        partition: Applier,
        sink: EffectSink,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._storage = storage
        self._partition = partition
        self._sink = sink
        self._clock = clock
        self._queue: deque[Event] = deque()
        self._wakeup = asyncio.Event()
        self._pending: dict[int, asyncio.Future[Reply]] = {}
        self._next_request_id = 1
        self.batches = 0
        self.events = 0

    def next_request_id(self) -> int:
        rid = self._next_request_id
        self._next_request_id += 1
        return rid

    def submit(self, event: Event) -> None:
        """Queues an event whose outcome nobody awaits (frames, timers, failures)."""
        self._queue.append(event)
        self._wakeup.set()

    async def request(self, make: Callable[[int], Event]) -> Reply:
        """Queues the event built by `make(request_id)` and waits for its reply."""
        rid = self.next_request_id()
        future: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
        self._pending[rid] = future
        self.submit(make(rid))
        try:
            return await future
        finally:
            self._pending.pop(rid, None)

    def forget_request(self, request_id: int) -> None:
        self._pending.pop(request_id, None)

    async def run(self) -> None:
        while True:
            if not self._queue:
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            batch = [self._queue.popleft() for _ in range(min(MAX_BATCH, len(self._queue)))]
            effects = await self._process(batch)
            self._dispatch(effects)

    async def _process(self, batch: list[Event]) -> list[Effect]:
        now_ms = int(self._clock() * 1000)
        effects: list[Effect] = []
        try:
            tx = self._storage.begin()
        except StorageError as exc:
            log.error("cannot open a transaction: %s", exc)
            return self._lost(batch, str(exc))
        try:
            for event in batch:
                effects.extend(self._apply_one(tx, event, now_ms))
            commit = asyncio.ensure_future(asyncio.to_thread(tx.commit))
            try:
                await asyncio.shield(commit)
            except asyncio.CancelledError:
                # Shutdown while the disk is busy: let the commit finish (it cannot be
                # interrupted safely), tell nobody, and stop.
                with contextlib.suppress(BaseException):
                    await commit
                raise
        except StorageError as exc:
            log.error("a batch of %d events was rolled back: %s", len(batch), exc)
            try:
                tx.rollback()
            except StorageError:
                log.exception("rollback failed as well")
            return self._lost(batch, str(exc))
        except asyncio.CancelledError:
            raise
        except BaseException:
            # A bug: nothing of this batch may be told to anyone.
            try:
                tx.rollback()
            except StorageError:
                log.exception("rollback failed")
            raise
        self.batches += 1
        self.events += len(batch)
        return effects

    def _apply_one(self, tx: Transaction, event: Event, now_ms: int) -> list[Effect]:
        tx.savepoint()
        try:
            effects = self._partition.apply(tx, event, now_ms)
        except StorageError:
            raise
        except Exception as exc:
            # A bug or an unexpected input: undo this event only, keep the rest of the batch.
            tx.rollback_to_savepoint()
            tx.release_savepoint()
            log.exception("event %s failed and was rolled back", type(event).__name__)
            rid = _request_id(event)
            if rid is None:
                return []
            reply = Reply(
                ReplyKind.ERROR,
                status=500,
                message=f"internal error while handling the request ({exc}); nothing was stored",
            )
            return [ReplyToRequest(rid, reply)]
        tx.release_savepoint()
        return effects

    def _lost(self, batch: list[Event], why: str) -> list[Effect]:
        # A timer whose firing was not stored fires again, but not at once: on a disk that
        # stays full an immediate refire would spin (it still never fires before it is due).
        later_ms = int(self._clock() * 1000) + int(LOST_ATTEMPT_RETRY_S * 1000)
        effects = [
            ScheduleTimer(dataclasses.replace(e.timer, fire_at=max(e.timer.fire_at, later_ms)))
            if isinstance(e, ScheduleTimer)
            else e
            for e in self._partition.on_batch_lost(batch)
        ]
        loop = asyncio.get_running_loop()
        for event in batch:
            if isinstance(event, FramesReceived | AttemptFailed):
                # on_batch_lost aborts the attempt; without a failure on record nothing would
                # ever start the next one and the invocation would stay running forever.
                failed = AttemptFailed(
                    event.invocation_id,
                    event.attempt,
                    503,
                    f"the server could not store what the attempt sent ({why}); the attempt "
                    "was aborted and will be retried",
                )
                loop.call_later(LOST_ATTEMPT_RETRY_S, self.submit, failed)
            rid = _request_id(event)
            if rid is not None:
                reply = Reply(
                    ReplyKind.ERROR,
                    status=503,
                    message=(
                        f"the server could not store the request ({why}); nothing was "
                        "accepted, retry later"
                    ),
                )
                effects.append(ReplyToRequest(rid, reply))
        return effects

    def _dispatch(self, effects: list[Effect]) -> None:
        rest: list[Effect] = []
        for effect in effects:
            if isinstance(effect, ReplyToRequest):
                future = self._pending.get(effect.request_id)
                if future is not None and not future.done():
                    future.set_result(effect.reply)
            else:
                rest.append(effect)
        if rest:
            self._sink(rest)
