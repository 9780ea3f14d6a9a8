"""Ending invocations early: cancel and kill.

Cancel is cooperative: an invocation that has started gets the built-in CANCEL signal in its
journal and its handler sees a cancellation error it may catch to compensate; the SDK then
cancels the calls it is still waiting for (implicit cancellation, sdk-shared-core). One that
has not started yet (waiting in an inbox, or scheduled) never runs: it completes at once with
the cancellation failure. Kill is not cooperative: the invocation completes at once with the
kill failure, runs no more code, and so do the calls it was still waiting for, recursively.
Their callers see the failure like any other.

Codes and sentences follow Restate (crates/worker state_machine, `CANCELED_INVOCATION_ERROR` and
`KILLED_INVOCATION_ERROR`): both are 409, so SDK code that checks for 409 works unchanged.

    >>> CANCELED.code, KILLED.code
    (409, 409)
"""

from __future__ import annotations

from perdure.protocol.messages import MessageType as T
from perdure.protocol.pb import protocol_pb2 as pb
from perdure.server.partition import lifecycle, wire
from perdure.server.partition.context import Ctx
from perdure.server.partition.effects import CancelTimer
from perdure.server.partition.futures import CANCEL_SIGNAL_KEY
from perdure.server.storage.api import (
    Failure,
    InvocationRow,
    InvocationStatus,
    Outcome,
)

S = InvocationStatus

CANCEL_SIGNAL = 1
CANCELED = Failure(409, "canceled")
KILLED = Failure(409, "killed")

# The statuses in which an invocation has not run any code yet.
NOT_STARTED = (S.PENDING, S.SCHEDULED, S.READY)


def cancel(ctx: Ctx, row: InvocationRow) -> bool:
    """Cancels `row`; True when it is done at once (it had not started), False when the
    CANCEL signal was appended for its handler to see. A completed invocation is left alone."""
    if row.status is S.COMPLETED:
        return False
    if row.status in NOT_STARTED:
        terminate(ctx, row, CANCELED)
        return True
    if not _has_cancel_signal(ctx, row):
        lifecycle.deliver(ctx, row, wire.signal(CANCEL_SIGNAL, None, None))
    return False


def _has_cancel_signal(ctx: Ctx, row: InvocationRow) -> bool:
    return any(e.notification_key == CANCEL_SIGNAL_KEY for e in ctx.tx.read_journal(row.id))


def terminate(ctx: Ctx, row: InvocationRow, failure: Failure) -> None:
    """Completes `row` with `failure` now, wherever it is: inbox, timer, attempt, suspension."""
    t = row.target
    if row.status is S.PENDING and t.takes_lock:
        ctx.tx.remove_from_inbox(t.service, t.key, row.id)
    for timer_id in (f"invoke:{row.id}", f"retry:{row.id}"):
        ctx.tx.delete_timer(timer_id)
        ctx.emit(CancelTimer(timer_id))
    lifecycle.complete(ctx, row, Outcome(failure=failure))


def kill(ctx: Ctx, row: InvocationRow) -> None:
    """Kills `row` and every call it still waits for, deepest first.

    Deepest first, and without telling the doomed callers, so that a killed callee neither
    wakes a caller that is about to be killed nor hands its object lock to an inboxed call
    that is about to be killed as well.
    """
    tree = call_tree(ctx, row)
    doomed = {r.id for r in tree}
    for member in reversed(tree):
        member.waiters = tuple(w for w in member.waiters if w.invocation_id not in doomed)
        terminate(ctx, member, KILLED)


def call_tree(ctx: Ctx, root: InvocationRow) -> list[InvocationRow]:
    """`root` and the active invocations it (transitively) waits for through calls, parents
    before children. One-way sends are not part of the tree: nobody waits for them."""
    order: list[InvocationRow] = []
    seen: set[str] = set()
    todo = [root]
    while todo:
        row = todo.pop()
        if row.id in seen or row.status is S.COMPLETED:
            continue
        seen.add(row.id)
        order.append(row)
        for child_id in pending_callees(ctx, row):
            child = ctx.load(child_id)
            if child is not None:
                todo.append(child)
    return order


def pending_callees(ctx: Ctx, row: InvocationRow) -> list[str]:
    """The invocation ids of `row`'s calls whose result has not arrived yet."""
    journal = ctx.tx.read_journal(row.id)
    present = {e.notification_key for e in journal if e.notification_key is not None}
    callee_by_key: dict[str, str] = {}
    for e in journal:
        if e.message_type == T.CALL_INVOCATION_ID_COMPLETION_NOTIFICATION and e.notification_key:
            note = pb.CallInvocationIdCompletionNotificationMessage()
            note.ParseFromString(e.payload)
            callee_by_key[e.notification_key] = note.invocation_id
    callees: list[str] = []
    for e in journal:
        if e.message_type != T.CALL_COMMAND:
            continue
        call = pb.CallCommandMessage()
        call.ParseFromString(e.payload)
        if f"c:{call.result_completion_id}" in present:
            continue
        callee = callee_by_key.get(f"c:{call.invocation_id_notification_idx}")
        if callee is not None:
            callees.append(callee)
    return callees
