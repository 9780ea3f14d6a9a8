"""The partition: every rule of the engine, as `apply(tx, event, now) -> effects`. No I/O.

The partition reads and writes through the storage `Transaction` it is handed and returns the
effects the world must see; the driver commits before any effect leaves. Besides storage it
keeps one piece of memory: which ingress requests wait for which invocation (requests do not
survive a restart, so neither need their waiters).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from perdure.protocol.messages import MessageType as T
from perdure.server.partition import lifecycle, requests, wire
from perdure.server.partition.commands import handle_frames
from perdure.server.partition.context import Ctx, IdSource
from perdure.server.partition.effects import (
    AbortAttempt,
    Effect,
    RegistryChanged,
    Reply,
    ReplyKind,
    ReplyToRequest,
    ScheduleTimer,
)
from perdure.server.partition.events import (
    AttachRequested,
    AttemptFailed,
    AwakeableCompleted,
    DeploymentRegistered,
    DeploymentRemoved,
    Event,
    FramesReceived,
    InvocationRequested,
    OperatorRequested,
    ServerStarted,
    TimerFired,
)
from perdure.server.partition.waiters import IngressWaiters
from perdure.server.registry import Registry
from perdure.server.storage.api import Failure, InvocationStatus, TimerKind, Transaction

S = InvocationStatus


class Partition:
    def __init__(self, registry: Callable[[], Registry], ids: IdSource) -> None:
        self._registry = registry
        self._ids = ids
        self.ingress_waiters = IngressWaiters()
        self._handlers: dict[type[Any], Callable[[Ctx, Any], None]] = {
            InvocationRequested: requests.invocation_requested,
            AttachRequested: requests.attach_requested,
            AwakeableCompleted: requests.awakeable_completed,
            OperatorRequested: requests.operator_requested,
            FramesReceived: _frames_received,
            AttemptFailed: _attempt_failed,
            TimerFired: _timer_fired,
            DeploymentRegistered: _deployment_registered,
            DeploymentRemoved: _deployment_removed,
            ServerStarted: _server_started,
        }

    def apply(self, tx: Transaction, event: Event, now_ms: int) -> list[Effect]:
        ctx = Ctx(tx, now_ms, self._registry(), self._ids, self.ingress_waiters)
        self._handlers[type(event)](ctx, event)
        ctx.flush()
        return ctx.effects

    def checkpoint(self) -> object:
        """Marks the partition's memory, so that `restore` can undo an event that raised."""
        return self.ingress_waiters.checkpoint()

    def restore(self, checkpoint: object) -> None:
        assert isinstance(checkpoint, int)
        self.ingress_waiters.restore(checkpoint)

    def on_batch_lost(self, events: list[Event]) -> list[Effect]:
        """A batch failed to commit: undo what memory holds and make the world retry."""
        effects: list[Effect] = []
        self.ingress_waiters.drop_requests(getattr(e, "request_id", None) for e in events)
        for event in events:
            if isinstance(event, FramesReceived | AttemptFailed):
                # The attempt's messages were not stored: end it; its retry replays the journal.
                effects.append(AbortAttempt(event.invocation_id, event.attempt))
            elif isinstance(event, TimerFired):
                effects.append(ScheduleTimer(event.timer))
        return effects


# Read at start: suspended, pending, scheduled and backing-off invocations are left in storage
# (their timers, inboxes and notifications wake them), so a start costs O(running), not
# O(active).
_RESTARTED = frozenset({S.RUNNING, S.READY})


def _server_started(ctx: Ctx, ev: ServerStarted) -> None:
    """Attempts die with the process; every invocation that was running starts a new one."""
    for row in ctx.tx.list_active_invocations(_RESTARTED):
        ctx.rows[row.id] = row
        lifecycle.start_attempt(ctx, row)


def _frames_received(ctx: Ctx, ev: FramesReceived) -> None:
    row = ctx.load(ev.invocation_id)
    if row is None or row.status is not S.RUNNING or row.attempt != ev.attempt:
        return  # a late message from an attempt that has already ended
    handle_frames(ctx, row, ev.frames)


def _attempt_failed(ctx: Ctx, ev: AttemptFailed) -> None:
    row = ctx.load(ev.invocation_id)
    if row is None or row.status is not S.RUNNING or row.attempt != ev.attempt:
        return
    lifecycle.fail_attempt(ctx, row, Failure(ev.code, ev.message))


def _timer_fired(ctx: Ctx, ev: TimerFired) -> None:
    timer = ev.timer
    ctx.tx.delete_timer(timer.id)
    row = ctx.load(timer.invocation_id)
    if row is None:
        return
    if timer.kind is TimerKind.SLEEP and timer.completion_id is not None:
        note = wire.completion(T.SLEEP_COMPLETION_NOTIFICATION, timer.completion_id, None)
        lifecycle.deliver(ctx, row, note)
    elif timer.kind is TimerKind.INVOKE and row.status is S.SCHEDULED:
        lifecycle.enqueue_or_start(ctx, row)
    elif timer.kind is TimerKind.RETRY and row.status is S.BACKING_OFF:
        lifecycle.start_attempt(ctx, row)
    elif timer.kind is TimerKind.CLEANUP and row.status is S.COMPLETED:
        lifecycle.purge(ctx, row)


def _deployment_registered(ctx: Ctx, ev: DeploymentRegistered) -> None:
    ctx.tx.put_deployment(ev.deployment)
    ctx.tx.put_services(ev.services)
    ctx.emit(RegistryChanged())
    ctx.emit(ReplyToRequest(ev.request_id, Reply(ReplyKind.DONE, status=201)))


def _deployment_removed(ctx: Ctx, ev: DeploymentRemoved) -> None:
    ctx.tx.delete_deployment(ev.deployment_id)
    for service in ctx.tx.list_services():
        if service.deployment_id == ev.deployment_id:
            ctx.tx.delete_service(service.name)
    ctx.emit(RegistryChanged())
    ctx.emit(ReplyToRequest(ev.request_id, Reply(ReplyKind.DONE, status=200)))


__all__ = ["Partition"]
