"""Cancel, kill, pause, resume and restart-as-new: the operator rules and their status codes."""

from __future__ import annotations

from tests.unit.partition.harness import (
    Env,
    all_of,
    cmd,
    only,
    reply,
    sent_frames,
    start_frames,
    target,
)

from perdure.protocol.messages import MessageType as T
from perdure.protocol.pb import protocol_pb2 as pb
from perdure.server.partition.effects import AbortAttempt, CancelTimer, ReplyKind, StartAttempt
from perdure.server.partition.events import (
    AttemptFailed,
    CallMode,
    Operation,
    OperatorRequested,
)
from perdure.server.storage.api import InvocationStatus as S

ADD = target("Counter", "add", "k")
GREET = target("Greeter", "greet")
END = cmd(pb.EndMessage())


def operate(env: Env, inv: str, op: Operation) -> tuple[int, str]:
    answer = reply(env.apply(OperatorRequested(777, inv, op))).reply
    return answer.status, answer.message


def call_counter(env: Env, caller: str, completion: int = 2) -> str:
    """The caller calls Counter/k/add; answers the callee's invocation id."""
    msg = pb.CallCommandMessage(
        service_name="Counter",
        handler_name="add",
        key="k",
        parameter=b"1",
        invocation_id_notification_idx=completion - 1,
        result_completion_id=completion,
    )
    frames = sent_frames(env.frames(caller, 1, cmd(msg)))
    note = frames[0].decode_as(pb.CallInvocationIdCompletionNotificationMessage)
    return str(note.invocation_id)


def suspend(env: Env, inv: str, *completions: int) -> None:
    env.frames(inv, 1, cmd(pb.SuspensionMessage(waiting_completions=list(completions))))


def test_cancel_of_an_inboxed_invocation_completes_it_and_answers_done() -> None:
    env = Env()
    env.request(ADD)
    rid, queued, _ = env.request(ADD)
    assert env.row(queued).status is S.PENDING
    effects = env.apply(OperatorRequested(5, queued, Operation.CANCEL))
    answers = {e.request_id: e.reply for e in effects if hasattr(e, "request_id")}
    assert answers[5].status == 200  # done: it never ran
    assert answers[rid].outcome.failure.code == 409  # its own caller learns it was cancelled
    assert answers[rid].outcome.failure.message == "canceled"
    assert env.storage.reader().inbox_size("Counter", "k") == 0


def test_cancel_of_a_running_invocation_appends_the_signal_once() -> None:
    env = Env()
    _, inv, _ = env.request(GREET)
    effects = env.apply(OperatorRequested(5, inv, Operation.CANCEL))
    assert reply(effects).reply.status == 202
    signal = sent_frames(effects)[0].decode_as(pb.SignalNotificationMessage)
    assert signal.idx == 1 and signal.HasField("void")
    again = env.apply(OperatorRequested(6, inv, Operation.CANCEL))
    assert reply(again).reply.status == 202 and not sent_frames(again)


def test_cancel_wakes_a_suspended_or_paused_invocation() -> None:
    env = Env()
    _, inv, _ = env.request(GREET)
    suspend(env, inv, 9)
    assert env.row(inv).status is S.SUSPENDED
    restarted = only(env.apply(OperatorRequested(5, inv, Operation.CANCEL)), StartAttempt)
    assert start_frames(restarted)[-1].message_type == T.SIGNAL_NOTIFICATION
    _, paused, _ = env.request(GREET)
    assert operate(env, paused, Operation.PAUSE)[0] == 202
    assert env.row(paused).status is S.PAUSED
    assert only(env.apply(OperatorRequested(6, paused, Operation.CANCEL)), StartAttempt)


def test_kill_fails_the_waiting_caller() -> None:
    env = Env()
    _, caller, _ = env.request(GREET)
    callee = call_counter(env, caller)
    effects = env.apply(OperatorRequested(5, callee, Operation.KILL))
    assert reply(effects).reply.status == 200
    assert AbortAttempt(callee, 1) in effects
    note = sent_frames(effects)[0].decode_as(pb.CallCompletionNotificationMessage)
    assert (note.completion_id, note.failure.code, note.failure.message) == (2, 409, "killed")
    assert env.row(caller).status is S.RUNNING


def test_kill_takes_the_call_tree_down_deepest_first() -> None:
    env = Env()
    rid, root, _ = env.request(GREET)
    first = call_counter(env, root)  # holds the lock on Counter/k
    suspend(env, root, 2)
    second = call_counter(env, first)  # the same key: waits in the inbox behind `first`
    assert env.row(second).status is S.PENDING
    effects = env.apply(OperatorRequested(5, root, Operation.KILL))
    assert {env.row(i).status for i in (root, first, second)} == {S.COMPLETED}
    assert not all_of(effects, StartAttempt)  # nobody doomed was started or woken on the way
    assert env.storage.reader().get_lock("Counter", "k") is None
    assert env.storage.reader().inbox_size("Counter", "k") == 0
    answers = {e.request_id: e.reply for e in effects if hasattr(e, "request_id")}
    assert answers[rid].outcome.failure.message == "killed"
    assert answers[5].status == 200


def test_kill_leaves_one_way_sends_alone() -> None:
    env = Env()
    _, caller, _ = env.request(GREET)
    send = pb.OneWayCallCommandMessage(
        service_name="Counter", handler_name="add", key="s", invocation_id_notification_idx=1
    )
    note = sent_frames(env.frames(caller, 1, cmd(send)))[0]
    sent = note.decode_as(pb.CallInvocationIdCompletionNotificationMessage).invocation_id
    env.apply(OperatorRequested(5, caller, Operation.KILL))
    assert env.row(sent).status is S.RUNNING


def test_operations_on_a_completed_invocation_are_conflicts() -> None:
    env = Env()
    _, inv, _ = env.request(GREET)
    env.frames(inv, 1, cmd(pb.OutputCommandMessage(value=pb.Value(content=b"1"))), END)
    for op in (Operation.CANCEL, Operation.KILL, Operation.RESUME, Operation.PAUSE):
        assert operate(env, inv, op)[0] == 409, op
    assert "purge" in operate(env, inv, Operation.KILL)[1]
    assert operate(env, inv, Operation.PURGE)[0] == 200
    assert reply(env.apply(OperatorRequested(9, inv, Operation.KILL))).reply.status == 404


def test_resume_and_restart_of_an_invocation_that_has_not_started_are_too_early() -> None:
    env = Env()
    _, scheduled, _ = env.request(GREET, mode=CallMode.SEND, execution_time=env.now + 60_000)
    assert env.row(scheduled).status is S.SCHEDULED
    assert operate(env, scheduled, Operation.RESUME)[0] == 425
    assert operate(env, scheduled, Operation.RESTART_AS_NEW)[0] == 425
    assert operate(env, scheduled, Operation.PURGE)[0] == 409


def test_pause_stops_the_attempt_and_resume_starts_a_new_one() -> None:
    env = Env()
    _, inv, _ = env.request(GREET)
    effects = env.apply(OperatorRequested(5, inv, Operation.PAUSE))
    assert reply(effects).reply.status == 202 and AbortAttempt(inv, 1) in effects
    assert operate(env, inv, Operation.PAUSE)[0] == 200  # already paused
    effects = env.apply(OperatorRequested(6, inv, Operation.RESUME))
    assert reply(effects).reply.status == 200
    assert only(effects, StartAttempt).attempt == 2
    assert operate(env, inv, Operation.RESUME)[0] == 200  # running: nothing to do


def test_resume_after_failures_starts_the_retry_policy_afresh() -> None:
    env = Env()
    _, inv, _ = env.request(GREET)
    env.apply(AttemptFailed(inv, 1, 503, "connection refused"))
    assert env.row(inv).retry_count == 1
    env.apply(OperatorRequested(5, inv, Operation.PAUSE))
    assert env.row(inv).status is S.PAUSED
    assert operate(env, inv, Operation.RESUME)[0] == 200
    assert env.row(inv).retry_count == 0


def test_restart_as_new_reruns_the_input_under_a_new_id() -> None:
    env = Env()
    _, inv, _ = env.request(GREET, b'"Ada"')
    assert operate(env, inv, Operation.RESTART_AS_NEW)[0] == 409  # still running
    env.frames(inv, 1, cmd(pb.OutputCommandMessage(value=pb.Value(content=b"1"))), END)
    effects = env.apply(OperatorRequested(5, inv, Operation.RESTART_AS_NEW))
    answer = reply(effects).reply
    assert answer.kind is ReplyKind.DONE and answer.invocation_id != inv
    start = only(effects, StartAttempt)
    assert start.invocation_id == answer.invocation_id
    given = start_frames(start)[1].decode_as(pb.InputCommandMessage)
    assert given.value.content == b'"Ada"'


def test_restart_as_new_refuses_a_workflow_run() -> None:
    env = Env()
    _, run, _ = env.request(target("Signup", "run", "w"))
    env.frames(run, 1, cmd(pb.OutputCommandMessage(value=pb.Value(content=b"1"))), END)
    status, message = operate(env, run, Operation.RESTART_AS_NEW)
    assert status == 422 and "new key" in message


def test_termination_drops_the_timers_of_sleeps_that_will_never_matter() -> None:
    env = Env()
    _, inv, _ = env.request(GREET)
    far = env.now + 1024 * 86_400_000
    env.frames(inv, 1, cmd(pb.SleepCommandMessage(wake_up_time=far, result_completion_id=1)))
    timer_id = f"sleep:{inv}:1"
    assert [t.id for t in env.storage.reader().list_timers()] == [timer_id]
    effects = env.apply(OperatorRequested(5, inv, Operation.KILL))
    assert CancelTimer(timer_id) in effects
    assert not [t for t in env.storage.reader().list_timers() if t.id == timer_id]


def test_a_handler_failing_after_a_cancel_drops_its_sleep_timer() -> None:
    env = Env()
    _, inv, _ = env.request(GREET)
    far = env.now + 1024 * 86_400_000
    env.frames(inv, 1, cmd(pb.SleepCommandMessage(wake_up_time=far, result_completion_id=1)))
    env.apply(OperatorRequested(5, inv, Operation.CANCEL))
    failed = pb.OutputCommandMessage(failure=pb.Failure(code=409, message="cancelled"))
    effects = env.frames(inv, 1, cmd(failed), END)
    assert CancelTimer(f"sleep:{inv}:1") in effects
    assert {t.kind.value for t in env.storage.reader().list_timers()} == {"cleanup"}
