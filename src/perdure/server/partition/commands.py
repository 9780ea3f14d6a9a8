"""What the partition does with each message a deployment sends during an attempt.

Commands are appended to the journal exactly as they arrived, then acted on: state written,
timers set, calls enqueued, notifications produced. Control messages (End, Suspension, Error,
run proposals) move the lifecycle. A message the server cannot accept fails the attempt with
code 571 (protocol violation) and is retried like any other failure.
"""

from __future__ import annotations

from collections.abc import Callable

from perdure.protocol.errors import PROTOCOL_VIOLATION
from perdure.protocol.messages import MessageType as T
from perdure.protocol.messages import message_class
from perdure.protocol.pb import protocol_pb2 as pb
from perdure.server.partition import lifecycle, wire
from perdure.server.partition.calls import (
    attach_invocation,
    call,
    complete_awakeable,
    get_invocation_output,
    one_way_call,
    send_signal,
)
from perdure.server.partition.context import Ctx
from perdure.server.partition.effects import SendToAttempt
from perdure.server.partition.futures import AwaitTree, tree_from_lists
from perdure.server.partition.promises import complete_promise, get_promise, peek_promise
from perdure.server.storage.api import (
    Failure,
    InvocationRow,
    JournalEntry,
    Outcome,
    TimerKind,
    TimerRow,
)

CUSTOM_COMMAND_START = 0xFC00


class Violation(Exception):
    """The deployment broke the protocol; the attempt fails with code 571."""


def handle_frames(
    ctx: Ctx, row: InvocationRow, frames: tuple[tuple[int, bool, bytes], ...]
) -> None:
    for mtype, requested_ack, payload in frames:
        if row.status is not lifecycle.S.RUNNING:
            return  # the attempt ended (End/Suspension/Error); anything after it is ignored
        try:
            _handle(ctx, row, mtype, requested_ack, payload)
        except Violation as exc:
            lifecycle.fail_attempt(ctx, row, Failure(PROTOCOL_VIOLATION, str(exc)))
            return


def _handle(ctx: Ctx, row: InvocationRow, mtype: int, ack: bool, payload: bytes) -> None:
    if 0x0400 <= mtype < 0x8000 or mtype >= CUSTOM_COMMAND_START:
        _command(ctx, row, mtype, payload)
        return
    control = _CONTROL.get(mtype)
    if control is None:
        raise Violation(f"unexpected message type 0x{mtype:04X} from the deployment")
    control(ctx, row, ack, payload)


def _parse(mtype: int, payload: bytes) -> object:
    try:
        msg = message_class(mtype)()
        msg.ParseFromString(payload)
    except Exception as exc:
        raise Violation(f"message 0x{mtype:04X} does not parse: {exc}") from exc
    return msg


# --- commands -----------------------------------------------------------------------------------


def _command(ctx: Ctx, row: InvocationRow, mtype: int, payload: bytes) -> None:
    if mtype == T.INPUT_COMMAND:
        raise Violation("the deployment sent an InputCommand; only the server writes the input")
    entry = JournalEntry(row.journal_length, mtype, payload)
    row.journal_length += 1
    row.command_count += 1
    row.retry_count = 0  # progress: the retry counter restarts
    ctx.append(row, [entry])
    if mtype >= CUSTOM_COMMAND_START:
        return  # opaque custom command: stored and replayed, never interpreted
    action = _COMMANDS.get(mtype)
    if action is not None:
        action(ctx, row, _parse(mtype, payload))


def _require_state(row: InvocationRow) -> None:
    if not row.target.is_keyed:
        raise Violation(
            f"{row.target.service} is a service; only virtual objects and workflows have state"
        )


def _output(ctx: Ctx, row: InvocationRow, msg: object) -> None:
    assert isinstance(msg, pb.OutputCommandMessage)
    if msg.HasField("failure"):
        row.outcome = Outcome(failure=wire.from_pb_failure(msg.failure))
    else:
        row.outcome = Outcome(value=msg.value.content)


def _get_lazy_state(ctx: Ctx, row: InvocationRow, msg: object) -> None:
    assert isinstance(msg, pb.GetLazyStateCommandMessage)
    _require_state(row)
    value = ctx.tx.get_state(row.target.service, row.target.key, msg.key)
    outcome = None if value is None else Outcome(value=value)
    note = wire.completion(
        T.GET_LAZY_STATE_COMPLETION_NOTIFICATION, msg.result_completion_id, outcome
    )
    lifecycle.deliver(ctx, row, note)


def _get_lazy_state_keys(ctx: Ctx, row: InvocationRow, msg: object) -> None:
    assert isinstance(msg, pb.GetLazyStateKeysCommandMessage)
    _require_state(row)
    keys = [k for k, _ in ctx.tx.get_all_state(row.target.service, row.target.key)]
    lifecycle.deliver(ctx, row, wire.state_keys_completion(msg.result_completion_id, keys))


def _set_state(ctx: Ctx, row: InvocationRow, msg: object) -> None:
    assert isinstance(msg, pb.SetStateCommandMessage)
    _require_state(row)
    ctx.tx.set_state(row.target.service, row.target.key, msg.key, msg.value.content)


def _clear_state(ctx: Ctx, row: InvocationRow, msg: object) -> None:
    assert isinstance(msg, pb.ClearStateCommandMessage)
    _require_state(row)
    ctx.tx.clear_state(row.target.service, row.target.key, msg.key)


def _clear_all_state(ctx: Ctx, row: InvocationRow, msg: object) -> None:
    _require_state(row)
    ctx.tx.clear_all_state(row.target.service, row.target.key)


def _sleep(ctx: Ctx, row: InvocationRow, msg: object) -> None:
    assert isinstance(msg, pb.SleepCommandMessage)
    timer_id = f"sleep:{row.id}:{msg.result_completion_id}"
    timer = TimerRow(
        timer_id, int(msg.wake_up_time), row.id, TimerKind.SLEEP, msg.result_completion_id
    )
    lifecycle.schedule(ctx, timer)


_COMMANDS: dict[int, Callable[[Ctx, InvocationRow, object], None]] = {
    T.OUTPUT_COMMAND: _output,
    T.GET_LAZY_STATE_COMMAND: _get_lazy_state,
    T.GET_LAZY_STATE_KEYS_COMMAND: _get_lazy_state_keys,
    T.SET_STATE_COMMAND: _set_state,
    T.CLEAR_STATE_COMMAND: _clear_state,
    T.CLEAR_ALL_STATE_COMMAND: _clear_all_state,
    T.SLEEP_COMMAND: _sleep,
    T.CALL_COMMAND: call,
    T.ONE_WAY_CALL_COMMAND: one_way_call,
    T.SEND_SIGNAL_COMMAND: send_signal,
    T.COMPLETE_AWAKEABLE_COMMAND: complete_awakeable,
    T.ATTACH_INVOCATION_COMMAND: attach_invocation,
    T.GET_INVOCATION_OUTPUT_COMMAND: get_invocation_output,
    T.GET_PROMISE_COMMAND: get_promise,
    T.PEEK_PROMISE_COMMAND: peek_promise,
    T.COMPLETE_PROMISE_COMMAND: complete_promise,
    # GetEagerState, GetEagerStateKeys and Run need nothing beyond being journaled.
}


# --- control messages ---------------------------------------------------------------------


def _propose_run(ctx: Ctx, row: InvocationRow, ack: bool, payload: bytes) -> None:
    msg = _parse(T.PROPOSE_RUN_COMPLETION, payload)
    assert isinstance(msg, pb.ProposeRunCompletionMessage)
    if msg.HasField("failure"):
        outcome = Outcome(failure=wire.from_pb_failure(msg.failure))
    else:
        outcome = Outcome(value=msg.value)
    note = wire.completion(T.RUN_COMPLETION_NOTIFICATION, msg.result_completion_id, outcome)
    entry = note.entry(row.journal_length)
    row.journal_length += 1
    row.retry_count = 0
    ctx.append(row, [entry])
    # V7 with REQUESTED_ACK: a small ack stands in for the notification the SDK already knows.
    if ack and (row.protocol_version or 0) >= 7:
        reply = wire.run_ack(msg.result_completion_id)
    else:
        reply = wire.frame(note.message_type, note.payload)
    ctx.emit(SendToAttempt(row.id, row.attempt, reply))


def _suspension(ctx: Ctx, row: InvocationRow, ack: bool, payload: bytes) -> None:
    msg = _parse(T.SUSPENSION, payload)
    assert isinstance(msg, pb.SuspensionMessage)
    if msg.HasField("awaiting_on"):
        tree = _tree(msg.awaiting_on)
    else:
        tree = tree_from_lists(
            list(msg.waiting_completions),
            list(msg.waiting_signals),
            list(msg.waiting_named_signals),
        )
    if row.outcome is not None:
        raise Violation("the deployment suspended after writing its output")
    lifecycle.suspend(ctx, row, tree)


def _tree(future: pb.Future) -> AwaitTree:
    base = tree_from_lists(
        list(future.waiting_completions),
        list(future.waiting_signals),
        list(future.waiting_named_signals),
        int(future.combinator_type),
    )
    return AwaitTree(base.combinator, base.leaves, tuple(_tree(f) for f in future.nested_futures))


def _error(ctx: Ctx, row: InvocationRow, ack: bool, payload: bytes) -> None:
    msg = _parse(T.ERROR, payload)
    assert isinstance(msg, pb.ErrorMessage)
    related = None
    if msg.HasField("related_command_index"):
        name = msg.related_command_name if msg.HasField("related_command_name") else ""
        related = f"command {msg.related_command_index} {name}".strip()
    message = msg.message or "the deployment reported an error without a message"
    delay = msg.next_retry_delay if msg.HasField("next_retry_delay") else None
    lifecycle.fail_attempt(
        ctx,
        row,
        Failure(msg.code or 500, message),
        related=related,
        next_retry_delay_ms=delay,
        behavior=int(msg.behavior),
    )


def _end(ctx: Ctx, row: InvocationRow, ack: bool, payload: bytes) -> None:
    outcome = row.outcome if row.outcome is not None else Outcome(value=b"")
    lifecycle.complete(ctx, row, outcome)


def _ignore(ctx: Ctx, row: InvocationRow, ack: bool, payload: bytes) -> None:
    """AwaitingOn is a hint only; the server acts on the Suspension that may follow."""


_CONTROL: dict[int, Callable[[Ctx, InvocationRow, bool, bytes], None]] = {
    T.PROPOSE_RUN_COMPLETION: _propose_run,
    T.SUSPENSION: _suspension,
    T.ERROR: _error,
    T.END: _end,
    T.AWAITING_ON: _ignore,
}
