"""Requests from outside: ingress invocations, attach/output, awakeables, operator actions."""

from __future__ import annotations

from perdure.server.partition import lifecycle, operations
from perdure.server.partition.calls import find_existing, register_keys, resolve_awakeable
from perdure.server.partition.context import Ctx
from perdure.server.partition.effects import Reply, ReplyKind, ReplyToRequest
from perdure.server.partition.events import (
    AttachBy,
    AttachRequested,
    AwakeableCompleted,
    CallMode,
    InvocationRequested,
    OperatorRequested,
)
from perdure.server.storage.api import (
    Failure,
    HandlerType,
    InvocationRow,
    InvocationStatus,
)

S = InvocationStatus


def reply(ctx: Ctx, request_id: int, answer: Reply) -> None:
    ctx.emit(ReplyToRequest(request_id, answer))


def error(ctx: Ctx, request_id: int, status: int, message: str) -> None:
    reply(ctx, request_id, Reply(ReplyKind.ERROR, status=status, message=message))


def wait_for_output(ctx: Ctx, request_id: int, row: InvocationRow) -> None:
    if row.status is S.COMPLETED and row.outcome is not None:
        reply(ctx, request_id, lifecycle.output_reply(ctx, row))
        return
    ctx.ingress_waiters.add(row.id, request_id)


def invocation_requested(ctx: Ctx, ev: InvocationRequested) -> None:
    target = ev.target
    existing = find_existing(ctx, target, ev.idempotency_key)
    if existing is not None:
        if ev.mode is CallMode.SEND:
            reply(
                ctx, ev.request_id, Reply(ReplyKind.ACCEPTED, existing.id, previously_accepted=True)
            )
        elif target.handler_type is HandlerType.WORKFLOW and ev.idempotency_key is None:
            error(
                ctx,
                ev.request_id,
                409,
                f"workflow '{target.service}' with key '{target.key}' has already been started "
                f"({existing.id}); attach to it with GET /restate/workflow/{target.service}/"
                f"{target.key}/attach",
            )
        else:
            wait_for_output(ctx, ev.request_id, existing)
        return
    row = InvocationRow(
        id=ev.invocation_id,
        target=target,
        status=S.READY,
        created_at=ctx.now,
        modified_at=ctx.now,
        headers=ev.headers,
        idempotency_key=ev.idempotency_key,
        execution_time=ev.execution_time,
        random_seed=ctx.ids.random_seed(),
    )
    register_keys(ctx, row)
    if ev.mode is CallMode.CALL:
        ctx.ingress_waiters.add(row.id, ev.request_id)
    lifecycle.accept(ctx, row, ev.payload)
    if ev.mode is CallMode.SEND:
        reply(ctx, ev.request_id, Reply(ReplyKind.ACCEPTED, row.id))


def attach_requested(ctx: Ctx, ev: AttachRequested) -> None:
    found: str | None = None
    if ev.by is AttachBy.INVOCATION_ID:
        found = ev.invocation_id
    elif ev.target is not None:
        t = ev.target
        if ev.by is AttachBy.WORKFLOW:
            found = ctx.tx.get_workflow_run(t.service, t.key)
        elif ev.idempotency_key is not None:
            found = ctx.tx.get_idempotency(t.service, t.key, t.handler, ev.idempotency_key)
    row = ctx.load(found) if found is not None else None
    if row is None:
        error(
            ctx,
            ev.request_id,
            404,
            "invocation not found; it may never have existed or its retention period has ended",
        )
        return
    if ev.wait:
        wait_for_output(ctx, ev.request_id, row)
    elif row.status is S.COMPLETED and row.outcome is not None:
        reply(ctx, ev.request_id, lifecycle.output_reply(ctx, row))
    else:
        reply(
            ctx,
            ev.request_id,
            Reply(
                ReplyKind.NOT_READY,
                row.id,
                status=470,
                message="the invocation exists but has not completed yet",
            ),
        )


def awakeable_completed(ctx: Ctx, ev: AwakeableCompleted) -> None:
    failure = resolve_awakeable(ctx, ev.invocation_id, ev.signal_index, ev.outcome)
    if failure is not None:
        error(ctx, ev.request_id, failure.code, failure.message)
    else:
        reply(ctx, ev.request_id, Reply(ReplyKind.DONE, ev.invocation_id, status=202))


def operator_requested(ctx: Ctx, ev: OperatorRequested) -> None:
    """Runs an admin operation; answers with Restate's status for it (see `operations`)."""
    row = ctx.load(ev.invocation_id)
    if row is None:
        error(ctx, ev.request_id, 404, f"invocation {ev.invocation_id} not found")
        return
    outcome = operations.operate(ctx, row, ev)
    if isinstance(outcome, Failure):
        error(ctx, ev.request_id, outcome.code, outcome.message)
        return
    status, answered_id = outcome
    reply(ctx, ev.request_id, Reply(ReplyKind.DONE, answered_id, status=status))
