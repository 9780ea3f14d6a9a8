"""Invocations talking to invocations: calls, one-way sends, signals, awakeables, attach."""

from __future__ import annotations

from perdure.protocol.messages import MessageType as T
from perdure.protocol.pb import protocol_pb2 as pb
from perdure.server.partition import lifecycle, termination, wire
from perdure.server.partition.context import Ctx
from perdure.server.storage.api import (
    Failure,
    HandlerType,
    InvocationRow,
    InvocationStatus,
    Outcome,
    Target,
    Waiter,
    WaiterKind,
)

CANCEL_SIGNAL = termination.CANCEL_SIGNAL
WORKFLOW_ALREADY_INVOKED = Failure(
    409,
    "the workflow's run handler was already invoked for this key; attach to it instead "
    "(ctx.attach_invocation, or GET /restate/workflow/{name}/{key}/attach)",
)


def resolve_target(ctx: Ctx, service: str, handler: str, key: str) -> Target | Failure:
    """The full target of a call, or the failure the caller sees when it does not exist."""
    info = ctx.registry.service(service)
    if info is None:
        return Failure(404, f"service '{service}' is not registered")
    h = info.handlers.get(handler)
    if h is None:
        return Failure(404, f"service '{service}' has no handler '{handler}'")
    return Target(service, handler, key, info.service_type, h.handler_type)


def new_child(
    ctx: Ctx,
    parent: InvocationRow,
    target: Target,
    payload: bytes,
    headers: tuple[tuple[str, str], ...],
    idempotency_key: str | None,
    execution_time: int | None,
    waiter: Waiter | None,
) -> str:
    """Creates (or, for a known idempotency key / workflow key, finds) the callee."""
    existing = find_existing(ctx, target, idempotency_key)
    if existing is not None:
        if waiter is not None:
            attach_waiter(ctx, existing, waiter)
        return existing.id
    row = InvocationRow(
        id=ctx.ids.invocation_id(target, idempotency_key),
        target=target,
        status=InvocationStatus.READY,
        created_at=ctx.now,
        modified_at=ctx.now,
        headers=headers,
        idempotency_key=idempotency_key,
        execution_time=execution_time,
        waiters=(waiter,) if waiter is not None else (),
        random_seed=ctx.ids.random_seed(),
        caller_id=parent.id,
    )
    register_keys(ctx, row)
    lifecycle.accept(ctx, row, payload)
    return row.id


def find_existing(ctx: Ctx, target: Target, idempotency_key: str | None) -> InvocationRow | None:
    existing_id: str | None = None
    if idempotency_key is not None:
        existing_id = ctx.tx.get_idempotency(
            target.service, target.key, target.handler, idempotency_key
        )
    elif target.handler_type is HandlerType.WORKFLOW:
        existing_id = ctx.tx.get_workflow_run(target.service, target.key)
    return ctx.load(existing_id) if existing_id is not None else None


def register_keys(ctx: Ctx, row: InvocationRow) -> None:
    t = row.target
    if row.idempotency_key is not None:
        ctx.tx.put_idempotency(t.service, t.key, t.handler, row.idempotency_key, row.id)
    elif t.handler_type is HandlerType.WORKFLOW:
        ctx.tx.put_workflow_run(t.service, t.key, row.id)


def attach_waiter(ctx: Ctx, callee: InvocationRow, waiter: Waiter) -> None:
    """Answers at once if the callee has completed, else waits for it."""
    if callee.outcome is not None and callee.status is InvocationStatus.COMPLETED:
        lifecycle.notify_waiters(ctx, (waiter,), callee.outcome)
        return
    callee.waiters = (*callee.waiters, waiter)
    ctx.touch(callee)


def _headers(
    msg: pb.CallCommandMessage | pb.OneWayCallCommandMessage,
) -> tuple[tuple[str, str], ...]:
    return tuple((h.key, h.value) for h in msg.headers)


def call(ctx: Ctx, row: InvocationRow, msg: object) -> None:
    assert isinstance(msg, pb.CallCommandMessage)
    target = resolve_target(ctx, msg.service_name, msg.handler_name, msg.key)
    idem = msg.idempotency_key if msg.HasField("idempotency_key") else None
    if isinstance(target, Failure):
        failed = ctx.ids.invocation_id(Target(msg.service_name, msg.handler_name, msg.key), idem)
        lifecycle.deliver(
            ctx, row, wire.invocation_id_completion(msg.invocation_id_notification_idx, failed)
        )
        note = wire.completion(
            T.CALL_COMPLETION_NOTIFICATION, msg.result_completion_id, Outcome(failure=target)
        )
        lifecycle.deliver(ctx, row, note)
        return
    waiter = Waiter(WaiterKind.CALL, row.id, msg.result_completion_id)
    idem = _usable_key(target, idem)
    existing = find_existing(ctx, target, idem)
    child_id = (
        existing.id
        if existing is not None
        else new_child(ctx, row, target, msg.parameter, _headers(msg), idem, None, waiter)
    )
    # The callee's id first, then (for a known callee) its result, as Restate orders them.
    lifecycle.deliver(
        ctx, row, wire.invocation_id_completion(msg.invocation_id_notification_idx, child_id)
    )
    if existing is None:
        return
    if target.handler_type is HandlerType.WORKFLOW:
        # A workflow key runs once: a second call of its run handler fails (Restate's
        # WORKFLOW_ALREADY_INVOKED); a second send is a no-op.
        note = wire.completion(
            T.CALL_COMPLETION_NOTIFICATION,
            msg.result_completion_id,
            Outcome(failure=WORKFLOW_ALREADY_INVOKED),
        )
        lifecycle.deliver(ctx, row, note)
        return
    attach_waiter(ctx, existing, waiter)


def _usable_key(target: Target, idempotency_key: str | None) -> str | None:
    """A workflow's run ignores idempotency keys: its workflow key already is one (Restate
    ignores it too, and its ingress refuses it)."""
    return None if target.handler_type is HandlerType.WORKFLOW else idempotency_key


def one_way_call(ctx: Ctx, row: InvocationRow, msg: object) -> None:
    assert isinstance(msg, pb.OneWayCallCommandMessage)
    target = resolve_target(ctx, msg.service_name, msg.handler_name, msg.key)
    idem = msg.idempotency_key if msg.HasField("idempotency_key") else None
    if isinstance(target, Failure):
        # Nobody awaits a send's result; the invocation id is all the caller gets.
        child_id = ctx.ids.invocation_id(Target(msg.service_name, msg.handler_name, msg.key), idem)
    else:
        when = int(msg.invoke_time) or None
        idem = _usable_key(target, idem)
        child_id = new_child(ctx, row, target, msg.parameter, _headers(msg), idem, when, None)
    lifecycle.deliver(
        ctx, row, wire.invocation_id_completion(msg.invocation_id_notification_idx, child_id)
    )


def send_signal(ctx: Ctx, row: InvocationRow, msg: object) -> None:
    assert isinstance(msg, pb.SendSignalCommandMessage)
    target = ctx.load(msg.target_invocation_id)
    if target is None:
        return
    outcome = _signal_outcome(msg)
    if msg.WhichOneof("signal_id") == "name":
        lifecycle.deliver(ctx, target, wire.signal(None, msg.name, outcome))
    elif msg.idx == CANCEL_SIGNAL:
        termination.cancel(ctx, target)
    else:
        lifecycle.deliver(ctx, target, wire.signal(msg.idx, None, outcome))


def _signal_outcome(msg: pb.SendSignalCommandMessage) -> Outcome | None:
    which = msg.WhichOneof("result")
    if which == "value":
        return Outcome(value=msg.value.content)
    if which == "failure":
        return Outcome(failure=wire.from_pb_failure(msg.failure))
    return None


def complete_awakeable(ctx: Ctx, row: InvocationRow, msg: object) -> None:
    assert isinstance(msg, pb.CompleteAwakeableCommandMessage)
    parsed = ctx.ids.parse_awakeable(msg.awakeable_id)
    if parsed is None:
        return  # an id the SDK made up: nothing to complete (Restate ignores it as well)
    invocation_id, index = parsed
    if msg.WhichOneof("result") == "failure":
        outcome = Outcome(failure=wire.from_pb_failure(msg.failure))
    else:
        outcome = Outcome(value=msg.value.content)
    resolve_awakeable(ctx, invocation_id, index, outcome)


def resolve_awakeable(ctx: Ctx, invocation_id: str, index: int, outcome: Outcome) -> Failure | None:
    """Delivers an awakeable's result; returns the failure a client should see, if any."""
    target = ctx.load(invocation_id)
    if target is None or target.status is InvocationStatus.COMPLETED:
        return Failure(404, "the awakeable's invocation does not exist or has completed")
    key = f"s:{index}"
    if any(e.notification_key == key for e in ctx.tx.read_journal(target.id)):
        return Failure(409, "the awakeable was already completed; the second result was ignored")
    lifecycle.deliver(ctx, target, wire.signal(index, None, outcome))
    return None


def _lookup(
    ctx: Ctx, msg: pb.AttachInvocationCommandMessage | pb.GetInvocationOutputCommandMessage
) -> InvocationRow | None:
    which = msg.WhichOneof("target")
    if which == "invocation_id":
        return ctx.load(msg.invocation_id)
    if which == "idempotent_request_target":
        t = msg.idempotent_request_target
        key = t.service_key if t.HasField("service_key") else ""
        found = ctx.tx.get_idempotency(t.service_name, key, t.handler_name, t.idempotency_key)
        return ctx.load(found) if found else None
    if which == "workflow_target":
        w = msg.workflow_target
        found = ctx.tx.get_workflow_run(w.workflow_name, w.workflow_key)
        return ctx.load(found) if found else None
    return None


def attach_invocation(ctx: Ctx, row: InvocationRow, msg: object) -> None:
    assert isinstance(msg, pb.AttachInvocationCommandMessage)
    callee = _lookup(ctx, msg)
    if callee is None:
        note = wire.completion(
            T.ATTACH_INVOCATION_COMPLETION_NOTIFICATION,
            msg.result_completion_id,
            Outcome(failure=Failure(404, "invocation not found")),
        )
        lifecycle.deliver(ctx, row, note)
        return
    attach_waiter(ctx, callee, Waiter(WaiterKind.ATTACH, row.id, msg.result_completion_id))


def get_invocation_output(ctx: Ctx, row: InvocationRow, msg: object) -> None:
    assert isinstance(msg, pb.GetInvocationOutputCommandMessage)
    callee = _lookup(ctx, msg)
    if callee is None:
        outcome: Outcome | None = Outcome(failure=Failure(404, "invocation not found"))
    elif callee.status is InvocationStatus.COMPLETED:
        outcome = callee.outcome
    else:
        outcome = None  # void: not completed yet
    note = wire.completion(
        T.GET_INVOCATION_OUTPUT_COMPLETION_NOTIFICATION, msg.result_completion_id, outcome
    )
    lifecycle.deliver(ctx, row, note)
