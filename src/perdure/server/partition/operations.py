"""Operator actions on one invocation (admin API), with Restate's answers for each status.

    operation      succeeds (status)                              refused (status)
    cancel         not started: done (200); started: appended (202) completed (409)
    kill           any active invocation (200)                    completed (409)
    purge          completed (200)                                active (409)
    purge-journal  completed: journal dropped, row kept (200)     active (409)
    pause          running, suspended, backing off (202);         not started, completed (409)
                   already paused (200)
    resume         paused, suspended, backing off: now (200);     not started (425),
                   running: nothing to do (200)                   completed (409)
    restart-as-new completed, not a workflow run (200, new id)    see restart.py

These follow restate crates/admin/src/rest_api/invocations.rs and the partition's manual
pause/resume/cancel/kill commands.
"""

from __future__ import annotations

from perdure.server.partition import lifecycle, restart, termination
from perdure.server.partition.context import Ctx
from perdure.server.partition.effects import AbortAttempt
from perdure.server.partition.events import Operation, OperatorRequested
from perdure.server.storage.api import Failure, InvocationRow, InvocationStatus

S = InvocationStatus

# (HTTP status, invocation id to answer with) or the refusal.
Result = tuple[int, str] | Failure


def operate(ctx: Ctx, row: InvocationRow, ev: OperatorRequested) -> Result:
    return _OPERATIONS[ev.operation](ctx, row, ev)


def _completed(row: InvocationRow, verb: str) -> Failure:
    return Failure(
        409,
        f"invocation {row.id} has already completed, so it cannot be {verb}; purge it "
        "(PATCH /invocations/{id}/purge) for the server to forget it",
    )


def _cancel(ctx: Ctx, row: InvocationRow, ev: OperatorRequested) -> Result:
    if row.status is S.COMPLETED:
        return _completed(row, "cancelled")
    return (200 if termination.cancel(ctx, row) else 202), row.id


def _kill(ctx: Ctx, row: InvocationRow, ev: OperatorRequested) -> Result:
    if row.status is S.COMPLETED:
        return _completed(row, "killed")
    termination.kill(ctx, row)
    return 200, row.id


def _purge(ctx: Ctx, row: InvocationRow, ev: OperatorRequested) -> Result:
    if row.status is not S.COMPLETED:
        return Failure(
            409,
            f"invocation {row.id} is {row.status.value}; only completed invocations can be "
            "purged (cancel or kill it first)",
        )
    lifecycle.purge(ctx, row)
    return 200, row.id


def _purge_journal(ctx: Ctx, row: InvocationRow, ev: OperatorRequested) -> Result:
    if row.status is not S.COMPLETED:
        return Failure(
            409,
            f"invocation {row.id} is {row.status.value}; only a completed invocation's journal "
            "can be purged",
        )
    ctx.tx.delete_journal(row.id)
    row.journal_length = 0
    row.command_count = 0
    ctx.touch(row)
    return 200, row.id


def _pause(ctx: Ctx, row: InvocationRow, ev: OperatorRequested) -> Result:
    if row.status is S.PAUSED:
        return 200, row.id
    if row.status not in (S.RUNNING, S.SUSPENDED, S.BACKING_OFF):
        return Failure(
            409,
            f"invocation {row.id} is {row.status.value}; only running, suspended or "
            "backing-off invocations can be paused",
        )
    if row.status is S.RUNNING:
        ctx.emit(AbortAttempt(row.id, row.attempt))
    ctx.tx.delete_timer(f"retry:{row.id}")
    lifecycle.pause(ctx, row)
    return 202, row.id


def _resume(ctx: Ctx, row: InvocationRow, ev: OperatorRequested) -> Result:
    if row.status is S.COMPLETED:
        return _completed(row, "resumed")
    if row.status in termination.NOT_STARTED:
        return Failure(
            425,
            f"invocation {row.id} is {row.status.value} and has not started yet; it starts "
            "by itself when its turn (or its time) comes",
        )
    if row.status in (S.PAUSED, S.SUSPENDED, S.BACKING_OFF):
        ctx.tx.delete_timer(f"retry:{row.id}")
        if row.status is S.PAUSED:
            # The operator fixed something: the retry policy starts afresh, as a new attempt
            # after a pause should not pause again on its first failure.
            row.retry_count = 0
        lifecycle.start_attempt(ctx, row)
    return 200, row.id


def _restart_as_new(ctx: Ctx, row: InvocationRow, ev: OperatorRequested) -> Result:
    try:
        return 200, restart.restart_as_new(ctx, row, ev.from_index, ev.keep_deployment)
    except restart.RestartRefused as refused:
        return Failure(refused.status, str(refused))


_OPERATIONS = {
    Operation.CANCEL: _cancel,
    Operation.KILL: _kill,
    Operation.PURGE: _purge,
    Operation.PAUSE: _pause,
    Operation.RESUME: _resume,
    Operation.RESTART_AS_NEW: _restart_as_new,
    Operation.PURGE_JOURNAL: _purge_journal,
}
