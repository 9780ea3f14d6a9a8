"""Durable promises of workflows: get (wait), peek, complete (once)."""

from __future__ import annotations

from perdure.protocol.messages import MessageType as T
from perdure.protocol.pb import protocol_pb2 as pb
from perdure.server.partition import lifecycle, wire
from perdure.server.partition.context import Ctx
from perdure.server.storage.api import (
    Failure,
    InvocationRow,
    Outcome,
    PromiseRow,
    Waiter,
    WaiterKind,
)


def _promise(ctx: Ctx, row: InvocationRow, name: str) -> PromiseRow:
    t = row.target
    found = ctx.tx.get_promise(t.service, t.key, name)
    return found if found is not None else PromiseRow(t.service, t.key, name)


def get_promise(ctx: Ctx, row: InvocationRow, msg: object) -> None:
    assert isinstance(msg, pb.GetPromiseCommandMessage)
    promise = _promise(ctx, row, msg.key)
    if promise.outcome is not None:
        note = wire.completion(
            T.GET_PROMISE_COMPLETION_NOTIFICATION, msg.result_completion_id, promise.outcome
        )
        lifecycle.deliver(ctx, row, note)
        return
    promise.waiters = (
        *promise.waiters,
        Waiter(WaiterKind.PROMISE, row.id, msg.result_completion_id),
    )
    ctx.tx.put_promise(promise)


def peek_promise(ctx: Ctx, row: InvocationRow, msg: object) -> None:
    assert isinstance(msg, pb.PeekPromiseCommandMessage)
    promise = _promise(ctx, row, msg.key)
    note = wire.completion(
        T.PEEK_PROMISE_COMPLETION_NOTIFICATION, msg.result_completion_id, promise.outcome
    )
    lifecycle.deliver(ctx, row, note)


def complete_promise(ctx: Ctx, row: InvocationRow, msg: object) -> None:
    assert isinstance(msg, pb.CompletePromiseCommandMessage)
    promise = _promise(ctx, row, msg.key)
    result: Outcome | None = None  # void: completed now
    if promise.outcome is not None:
        result = Outcome(
            failure=Failure(
                409, f"promise '{msg.key}' was already completed; it keeps its first value"
            )
        )
    else:
        if msg.WhichOneof("completion") == "completion_failure":
            promise.outcome = Outcome(failure=wire.from_pb_failure(msg.completion_failure))
        else:
            promise.outcome = Outcome(value=msg.completion_value.content)
        waiters = promise.waiters
        promise.waiters = ()
        ctx.tx.put_promise(promise)
        lifecycle.notify_waiters(ctx, waiters, promise.outcome)
    note = wire.completion(
        T.COMPLETE_PROMISE_COMPLETION_NOTIFICATION, msg.result_completion_id, result
    )
    lifecycle.deliver(ctx, row, note)
