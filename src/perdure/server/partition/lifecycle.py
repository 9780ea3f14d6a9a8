"""The invocation lifecycle: accept, lock or enqueue, start attempts, suspend, retry, complete.

Every status change of an invocation happens in this module. The transitions:

    SCHEDULED --timer--> (lock?) --> PENDING (inbox) --lock released--> RUNNING
    RUNNING --End--> COMPLETED
    RUNNING --Suspension--> SUSPENDED --notification--> RUNNING
    RUNNING --Error/failure--> BACKING_OFF --timer--> RUNNING  (exhausted: PAUSED or killed)
"""

from __future__ import annotations

from perdure.protocol import versions
from perdure.protocol.messages import MessageType as T
from perdure.protocol.pb import protocol_pb2 as pb
from perdure.server.partition import wire
from perdure.server.partition.context import Ctx
from perdure.server.partition.effects import (
    AbortAttempt,
    CancelTimer,
    Reply,
    ReplyKind,
    ReplyToRequest,
    ScheduleTimer,
    SendToAttempt,
    StartAttempt,
)
from perdure.server.partition.futures import CANCEL_SIGNAL_KEY, AwaitTree, evaluate
from perdure.server.registry import HandlerInfo, RetryPolicy
from perdure.server.storage.api import (
    Failure,
    HandlerType,
    InvocationRow,
    InvocationStatus,
    JournalEntry,
    Outcome,
    TimerKind,
    TimerRow,
    Waiter,
    WaiterKind,
)

S = InvocationStatus

# How long to wait before retrying when no deployment can serve an invocation (it may be
# registered any moment; a short fixed delay keeps the log readable and the start prompt).
NO_DEPLOYMENT_RETRY_MS = 2_000


def handler_info(ctx: Ctx, row: InvocationRow) -> HandlerInfo | None:
    return ctx.registry.handler(row.target.service, row.target.handler)


# --- accepting -------------------------------------------------------------------------------


def accept(ctx: Ctx, row: InvocationRow, payload: bytes) -> None:
    """Stores a new invocation with its input entry, then schedules, enqueues or starts it."""
    entry = JournalEntry(0, T.INPUT_COMMAND, wire.input_command(payload, row.headers))
    row.journal_length = 1
    row.command_count = 1
    ctx.add(row)
    ctx.append(row, [entry])
    if row.execution_time is not None and row.execution_time > ctx.now:
        row.status = S.SCHEDULED
        schedule(ctx, TimerRow(f"invoke:{row.id}", row.execution_time, row.id, TimerKind.INVOKE))
        return
    enqueue_or_start(ctx, row)


def enqueue_or_start(ctx: Ctx, row: InvocationRow) -> None:
    target = row.target
    if target.takes_lock:
        holder = ctx.tx.get_lock(target.service, target.key)
        if holder is not None and holder != row.id:
            row.status = S.PENDING
            ctx.touch(row)
            ctx.tx.push_inbox(target.service, target.key, row.id)
            return
        ctx.tx.set_lock(target.service, target.key, row.id)
    start_attempt(ctx, row)


# --- attempts --------------------------------------------------------------------------------


def start_attempt(ctx: Ctx, row: InvocationRow) -> None:
    """Opens a new attempt: pins a deployment, sends Start plus the whole journal."""
    deployment = (
        ctx.registry.deployment(row.deployment_id)
        if row.deployment_id is not None
        else ctx.registry.deployment_for(row.target.service)
    )
    if deployment is None:
        why = (
            f"no deployment serves '{row.target.service}'"
            if row.deployment_id is None
            else f"deployment {row.deployment_id}, which this invocation started on, is gone"
        )
        row.last_failure = Failure(
            503, f"{why}; register one with `perdure deployments register <uri>`"
        )
        back_off(ctx, row, NO_DEPLOYMENT_RETRY_MS)
        return
    version = row.protocol_version or versions.negotiate_server(
        deployment.min_protocol_version, deployment.max_protocol_version
    )
    if version is None:
        row.last_failure = Failure(
            500,
            f"deployment {deployment.id} speaks protocol versions "
            f"{deployment.min_protocol_version}..{deployment.max_protocol_version}, which this "
            "server does not support; upgrade the SDK or Perdure",
        )
        back_off(ctx, row, NO_DEPLOYMENT_RETRY_MS)
        return
    row.deployment_id = deployment.id
    row.protocol_version = version
    row.attempt += 1
    row.status = S.RUNNING
    row.running_since = ctx.now
    row.next_retry_at = None
    row.awaiting = None
    ctx.touch(row)

    target = row.target
    info = handler_info(ctx, row)
    state: list[tuple[bytes, bytes]] = []
    partial = False
    if target.is_keyed:
        if info is not None and info.enable_lazy_state:
            partial = True
        else:
            state = ctx.tx.get_all_state(target.service, target.key)
    journal = ctx.journal(row)
    start = wire.start_message(
        id_bytes=ctx.ids.invocation_id_bytes(row.id),
        debug_id=row.id,
        known_entries=len(journal),
        state=state,
        partial_state=partial,
        key=target.key,
        retry_count=row.retry_count,
        duration_since_last_entry_ms=max(0, ctx.now - row.modified_at),
        random_seed=row.random_seed,
        protocol_version=version,
        idempotency_key=row.idempotency_key,
    )
    ctx.emit(
        StartAttempt(
            invocation_id=row.id,
            attempt=row.attempt,
            deployment_id=deployment.id,
            service=target.service,
            handler=target.handler,
            protocol_version=version,
            frames=start + wire.frames_of(journal),
        )
    )


def fail_attempt(
    ctx: Ctx,
    row: InvocationRow,
    failure: Failure,
    *,
    related: str | None = None,
    next_retry_delay_ms: int | None = None,
    behavior: int = 0,
) -> None:
    """An attempt ended in error: retry with backoff, pause, or fail the invocation."""
    ctx.emit(AbortAttempt(row.id, row.attempt))
    row.last_failure = failure
    row.last_failure_related = related
    row.retry_count += 1
    info = handler_info(ctx, row)
    policy = info.retry if info is not None else ctx.registry.defaults.retry
    if behavior == 2:  # ErrorBehavior.FAIL: the SDK asks to fail without retrying
        complete(ctx, row, Outcome(failure=failure))
        return
    if behavior == 1:  # ErrorBehavior.PAUSE
        pause(ctx, row)
        return
    if policy.is_exhausted(row.retry_count):
        exhausted(ctx, row, policy, failure)
        return
    delay = (
        next_retry_delay_ms if next_retry_delay_ms is not None else policy.delay_ms(row.retry_count)
    )
    back_off(ctx, row, delay)


def exhausted(ctx: Ctx, row: InvocationRow, policy: RetryPolicy, failure: Failure) -> None:
    if policy.on_max_attempts == "kill":
        attempts = "1 attempt" if row.retry_count == 1 else f"{row.retry_count} attempts"
        message = f"gave up after {attempts}; last error: {failure.message}"
        complete(ctx, row, Outcome(failure=Failure(failure.code or 500, message)))
    else:
        pause(ctx, row)


def pause(ctx: Ctx, row: InvocationRow) -> None:
    row.status = S.PAUSED
    row.next_retry_at = None
    ctx.touch(row)


def back_off(ctx: Ctx, row: InvocationRow, delay_ms: int) -> None:
    row.status = S.BACKING_OFF
    row.next_retry_at = ctx.now + max(0, delay_ms)
    ctx.touch(row)
    schedule(ctx, TimerRow(f"retry:{row.id}", row.next_retry_at, row.id, TimerKind.RETRY))


def suspend(ctx: Ctx, row: InvocationRow, tree: AwaitTree) -> None:
    """The SDK suspended; resume at once if what it awaits is already in the journal."""
    ctx.emit(AbortAttempt(row.id, row.attempt))
    row.status = S.SUSPENDED
    row.awaiting = tree.to_json()
    row.running_since = None
    ctx.touch(row)
    outcomes = {
        e.notification_key: not e.is_failure
        for e in ctx.tx.read_journal(row.id)
        if e.notification_key is not None
    }
    if evaluate(tree, outcomes) is not None:
        start_attempt(ctx, row)


# --- notifications -----------------------------------------------------------------------------


def deliver(ctx: Ctx, row: InvocationRow, note: wire.Authored) -> None:
    """Appends a notification to an invocation's journal and tells or wakes it."""
    if row.status is S.COMPLETED:
        return
    entry = note.entry(row.journal_length)
    row.journal_length += 1
    ctx.append(row, [entry])
    if row.status is S.RUNNING:
        ctx.emit(SendToAttempt(row.id, row.attempt, wire.frame(note.message_type, note.payload)))
    elif row.status is S.SUSPENDED and (note.key == CANCEL_SIGNAL_KEY or _resolves(ctx, row)):
        start_attempt(ctx, row)
    elif row.status in (S.PAUSED, S.BACKING_OFF) and note.key == CANCEL_SIGNAL_KEY:
        # A cancellation is acted on now: a paused invocation would otherwise never see it,
        # and a backing-off one only after its retry delay (Restate resumes paused ones too).
        ctx.tx.delete_timer(f"retry:{row.id}")
        start_attempt(ctx, row)


def _resolves(ctx: Ctx, row: InvocationRow) -> bool:
    if row.awaiting is None:
        return True
    tree = AwaitTree.from_json(row.awaiting)
    keys = tree.keys()
    outcomes = {
        e.notification_key: not e.is_failure
        for e in ctx.tx.read_journal(row.id)
        if e.notification_key in keys
    }
    return evaluate(tree, outcomes) is not None


# --- completion ----------------------------------------------------------------------------------


def complete(ctx: Ctx, row: InvocationRow, outcome: Outcome) -> None:
    """Records the outcome, answers everyone waiting, releases the lock, keeps or purges."""
    if row.status is S.COMPLETED:
        return
    was_running = row.status is S.RUNNING
    row.status = S.COMPLETED
    row.outcome = outcome
    row.completed_at = ctx.now
    row.awaiting = None
    row.next_retry_at = None
    row.running_since = None
    ctx.touch(row)
    if was_running:
        ctx.emit(AbortAttempt(row.id, row.attempt))
    if outcome.failure is not None:
        drop_pending_sleeps(ctx, row)
    notify_waiters(ctx, row.waiters, outcome)
    row.waiters = ()
    answer = output_reply(ctx, row)
    for rid in ctx.ingress_waiters.pop(row.id):
        ctx.emit(ReplyToRequest(rid, answer))
    release_lock(ctx, row)
    retain_or_purge(ctx, row)


def drop_pending_sleeps(ctx: Ctx, row: InvocationRow) -> None:
    """Deletes the timers of `row`'s sleeps that have not fired: a cancelled or killed
    `sleep(days=1024)` should not keep a timer row for three years. Done for failures only,
    where cancellation and kills end up, so that a successful completion reads no journal."""
    if row.journal_length <= 1:
        return
    journal = ctx.tx.read_journal(row.id)
    fired = {e.notification_key for e in journal if e.notification_key is not None}
    for e in journal:
        if e.message_type != T.SLEEP_COMMAND:
            continue
        sleep = pb.SleepCommandMessage()
        sleep.ParseFromString(e.payload)
        if f"c:{sleep.result_completion_id}" not in fired:
            timer_id = f"sleep:{row.id}:{sleep.result_completion_id}"
            ctx.tx.delete_timer(timer_id)
            ctx.emit(CancelTimer(timer_id))


def output_reply(ctx: Ctx, row: InvocationRow) -> Reply:
    """The answer to a client waiting for a completed invocation's output."""
    return Reply(ReplyKind.OUTPUT, row.id, row.outcome, expires_at=key_expires_at(ctx, row))


def notify_waiters(ctx: Ctx, waiters: tuple[Waiter, ...], outcome: Outcome) -> None:
    for waiter in waiters:
        other = ctx.load(waiter.invocation_id)
        if other is None:
            continue
        if waiter.kind is WaiterKind.CALL:
            mtype = T.CALL_COMPLETION_NOTIFICATION
        elif waiter.kind is WaiterKind.ATTACH:
            mtype = T.ATTACH_INVOCATION_COMPLETION_NOTIFICATION
        elif waiter.kind is WaiterKind.PROMISE:
            mtype = T.GET_PROMISE_COMPLETION_NOTIFICATION
        else:
            mtype = T.GET_INVOCATION_OUTPUT_COMPLETION_NOTIFICATION
        deliver(ctx, other, wire.completion(mtype, waiter.completion_id, outcome))


def release_lock(ctx: Ctx, row: InvocationRow) -> None:
    target = row.target
    if not target.takes_lock or ctx.tx.get_lock(target.service, target.key) != row.id:
        return
    ctx.tx.release_lock(target.service, target.key)
    while (next_id := ctx.tx.pop_inbox(target.service, target.key)) is not None:
        nxt = ctx.load(next_id)
        if nxt is not None and nxt.status is S.PENDING:
            ctx.tx.set_lock(target.service, target.key, nxt.id)
            start_attempt(ctx, nxt)
            return


def key_retention_ms(ctx: Ctx, row: InvocationRow) -> int | None:
    """How long a completed invocation keeps its idempotency key or workflow key (None: it
    has neither). While kept, the same key answers with this invocation's outcome."""
    info = handler_info(ctx, row)
    defaults = ctx.registry.defaults
    if row.idempotency_key is not None:
        return info.idempotency_retention_ms if info else defaults.idempotency_retention_ms
    if row.target.handler_type is HandlerType.WORKFLOW:
        return (
            info.workflow_completion_retention_ms
            if info
            else defaults.workflow_completion_retention_ms
        )
    return None


def key_expires_at(ctx: Ctx, row: InvocationRow) -> int | None:
    """When the idempotency key of a completed invocation is forgotten (ms since the epoch)."""
    if row.idempotency_key is None or row.completed_at is None:
        return None
    keep = key_retention_ms(ctx, row)
    return None if keep is None else row.completed_at + keep


def retain_or_purge(ctx: Ctx, row: InvocationRow) -> None:
    """Keeps a completed invocation for its retention, then purges it.

    An invocation with an idempotency key or a workflow key is kept exactly as long as the
    key: its id is derived from the key, so a request after the key expired starts a new
    invocation under the same id (Restate caps journal retention at that retention too).
    Any other invocation is kept for the journal retention.
    """
    keep = key_retention_ms(ctx, row)
    if keep is None:
        info = handler_info(ctx, row)
        keep = info.journal_retention_ms if info else ctx.registry.defaults.journal_retention_ms
    if keep <= 0:
        purge(ctx, row)
        return
    schedule(ctx, TimerRow(f"cleanup:{row.id}", ctx.now + keep, row.id, TimerKind.CLEANUP))


def forget_keys(ctx: Ctx, row: InvocationRow) -> None:
    """Releases the idempotency key or workflow key of `row` (if still its own): a new
    request with the same key starts a new invocation. A workflow's state and promises go
    with its key."""
    t = row.target
    if row.idempotency_key is not None:
        if ctx.tx.get_idempotency(t.service, t.key, t.handler, row.idempotency_key) == row.id:
            ctx.tx.delete_idempotency(t.service, t.key, t.handler, row.idempotency_key)
    elif (
        t.handler_type is HandlerType.WORKFLOW
        and ctx.tx.get_workflow_run(t.service, t.key) == row.id
    ):
        ctx.tx.delete_workflow_run(t.service, t.key)
        ctx.tx.clear_all_state(t.service, t.key)
        ctx.tx.delete_promises(t.service, t.key)


def purge(ctx: Ctx, row: InvocationRow) -> None:
    """Forgets a completed invocation: journal, keys and, for a workflow run, its state and
    promises."""
    ctx.tx.delete_journal(row.id)
    forget_keys(ctx, row)
    ctx.tx.delete_timer(f"cleanup:{row.id}")
    ctx.forget(row.id)


def schedule(ctx: Ctx, timer: TimerRow) -> None:
    ctx.tx.put_timer(timer)
    ctx.emit(ScheduleTimer(timer))
