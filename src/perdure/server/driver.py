"""The pipeline: events -> one storage transaction -> partition.apply each -> commit -> effects.

This is the only place where effects leave the partition, and it hands them out only after the
transaction that recorded them has committed: rule 1 ("commit before you tell") holds by
construction. Events that arrive while a commit is in flight wait and form the next batch, so
one fsync covers many events (group commit) without any added delay at low load.

Two refinements keep the common path cheap:

- A batch runs without a savepoint per event. Only if one of its events raises is the batch
  undone and applied again event by event, each inside its own savepoint, so that the bad
  event is undone alone and the others keep their effects (as if each had had a savepoint).
- A batch that produced no effect (a `ctx.run` command on its way, before its result) tells
  nobody anything, so it need not be durable yet: its transaction stays open and the next
  batch joins it, and one fsync covers both. If nothing comes within `IDLE_COMMIT_S`, it is
  committed on its own. Whatever the open transaction holds is told to no one until the
  commit that includes it has returned.

Commits run on one long-lived thread (`_CommitThread`), off the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import queue
import threading
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

# A transaction whose events produced no effect waits this long for more events before it is
# committed on its own. Nothing waits for it (it told nobody anything), so the delay costs no
# latency; it lets the usual follower (a run's result after the run command) share its fsync.
IDLE_COMMIT_S = 0.010

# An attempt whose messages could not be stored (disk full, I/O error) is aborted; this long
# after, the driver reports it failed so that the retry policy starts the next attempt. The
# pause keeps a disk that stays full from being hammered in a tight loop.
LOST_ATTEMPT_RETRY_S = 1.0


class Applier(Protocol):
    def apply(self, tx: Transaction, event: Event, now_ms: int) -> list[Effect]: ...
    def on_batch_lost(self, events: list[Event]) -> list[Effect]: ...
    def checkpoint(self) -> object: ...
    def restore(self, checkpoint: object) -> None: ...


EffectSink = Callable[[list[Effect]], None]


def _request_id(event: Event) -> int | None:
    return getattr(event, "request_id", None)


class _CommitThread:
    """One daemon thread that runs commits handed to it, one at a time, in order.

    Cheaper than `asyncio.to_thread` per batch (no executor bookkeeping, no context copy);
    the result comes back to the event loop through `call_soon_threadsafe`.
    """

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[
            tuple[Callable[[], None], asyncio.AbstractEventLoop, asyncio.Future[None]] | None
        ] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    def run(self, job: Callable[[], None]) -> asyncio.Future[None]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(
                target=self._commit_loop, name="perdure-commit", daemon=True
            )
            self._thread.start()
        self._jobs.put((job, loop, future))
        return future

    def stop(self) -> None:
        if self._thread is not None:
            self._jobs.put(None)
            self._thread = None

    def _commit_loop(self) -> None:
        while (item := self._jobs.get()) is not None:
            job, loop, future = item
            error: BaseException | None = None
            try:
                job()
            except BaseException as exc:  # handed to the event loop, which decides
                error = exc
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(_settle, future, error)


def _settle(future: asyncio.Future[None], error: BaseException | None) -> None:
    if future.done():
        return
    if error is None:
        future.set_result(None)
    else:
        future.set_exception(error)


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
        self._committer = _CommitThread()
        # The open transaction whose events produced no effect yet (see the module docstring)
        # and those events, should its commit fail.
        self._tx: Transaction | None = None
        self._tx_events: list[Event] = []
        self.batches = 0  # batches applied
        self.commits = 0  # transactions committed
        self.events = 0  # events committed

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
        try:
            while True:
                if not self._queue:
                    self._wakeup.clear()
                    if self._tx is None:
                        await self._wakeup.wait()
                        continue
                    try:
                        async with asyncio.timeout(IDLE_COMMIT_S):
                            await self._wakeup.wait()
                    except TimeoutError:
                        self._dispatch(await self._commit_idle())
                    continue
                batch = [self._queue.popleft() for _ in range(min(MAX_BATCH, len(self._queue)))]
                effects = await self._process(batch)
                if effects is None:
                    continue  # nothing to tell: the transaction stays open for the next batch
                self._dispatch(effects)
        finally:
            self._shutdown()

    def _shutdown(self) -> None:
        # Cancelled (the server stops) with a transaction held open: commit it here. It told
        # nobody anything, so losing it would be harmless, but keeping it saves replaying.
        tx, self._tx = self._tx, None
        if tx is not None:
            try:
                tx.commit()
            except StorageError as exc:
                log.warning("the last open transaction could not be committed: %s", exc)
                with contextlib.suppress(StorageError):
                    tx.rollback()
        self._tx_events = []
        self._committer.stop()

    async def _process(self, batch: list[Event]) -> list[Effect] | None:
        """Applies `batch` and commits; returns the effects to hand out, or None when the
        batch produced none and its transaction stays open for the next one."""
        now_ms = int(self._clock() * 1000)
        tx, self._tx = self._tx, None
        events, self._tx_events = self._tx_events, []
        events.extend(batch)
        joined = tx is not None
        if tx is None:
            try:
                tx = self._storage.begin()
            except StorageError as exc:
                log.error("cannot open a transaction: %s", exc)
                return self._lost(events, str(exc))
        try:
            tx, effects = self._apply_batch(tx, batch, now_ms, joined)
        except StorageError as exc:
            log.error("a batch of %d events was rolled back: %s", len(events), exc)
            _rollback(tx)
            return self._lost(events, str(exc))
        except BaseException:
            # A bug: nothing of this transaction may be told to anyone.
            _rollback(tx)
            raise
        self.batches += 1
        if not effects and len(events) < MAX_BATCH:
            self._tx, self._tx_events = tx, events
            return None
        return await self._commit(tx, events, effects)

    async def _commit(
        self, tx: Transaction, events: list[Event], effects: list[Effect]
    ) -> list[Effect]:
        done = self._committer.run(tx.commit)
        try:
            await asyncio.shield(done)
        except asyncio.CancelledError:
            # Shutdown while the disk is busy: let the commit finish (it cannot be
            # interrupted safely), tell nobody, and stop.
            with contextlib.suppress(BaseException):
                await done
            raise
        except StorageError as exc:
            log.error("a batch of %d events was rolled back: %s", len(events), exc)
            _rollback(tx)
            return self._lost(events, str(exc))
        self.commits += 1
        self.events += len(events)
        return effects

    async def _commit_idle(self) -> list[Effect]:
        tx, self._tx = self._tx, None
        events, self._tx_events = self._tx_events, []
        if tx is None:
            return []
        return await self._commit(tx, events, [])

    def _apply_batch(
        self, tx: Transaction, batch: list[Event], now_ms: int, joined: bool
    ) -> tuple[Transaction, list[Effect]]:
        """The whole batch without a savepoint per event; if an event raises, the batch is
        undone and applied again event by event (`_apply_each`). Returns the transaction
        that holds the batch (a new one if the first had to be rolled back)."""
        partition = self._partition
        checkpoint = partition.checkpoint()
        if joined:
            tx.savepoint()  # the open transaction holds earlier batches: undo only this one
        effects: list[Effect] = []
        try:
            for event in batch:
                effects.extend(partition.apply(tx, event, now_ms))
        except StorageError:
            raise
        except Exception:
            partition.restore(checkpoint)
            if joined:
                tx.rollback_to_savepoint()
                tx.release_savepoint()
                return tx, self._apply_each(tx, batch, now_ms)
            # A fresh transaction holds this batch only: start over in a new one.
            tx.rollback()
            fresh = self._storage.begin()
            try:
                return fresh, self._apply_each(fresh, batch, now_ms)
            except BaseException:
                _rollback(fresh)
                raise
        if joined:
            tx.release_savepoint()
        return tx, effects

    def _apply_each(self, tx: Transaction, batch: list[Event], now_ms: int) -> list[Effect]:
        effects: list[Effect] = []
        for event in batch:
            effects.extend(self._apply_one(tx, event, now_ms))
        return effects

    def _apply_one(self, tx: Transaction, event: Event, now_ms: int) -> list[Effect]:
        checkpoint = self._partition.checkpoint()
        tx.savepoint()
        try:
            effects = self._partition.apply(tx, event, now_ms)
        except StorageError:
            raise
        except Exception as exc:
            # A bug or an unexpected input: undo this event only, keep the rest of the batch.
            tx.rollback_to_savepoint()
            tx.release_savepoint()
            self._partition.restore(checkpoint)
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


def _rollback(tx: Transaction) -> None:
    try:
        tx.rollback()
    except StorageError:
        log.exception("rollback failed as well")
