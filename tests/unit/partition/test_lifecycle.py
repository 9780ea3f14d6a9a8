"""Invocation lifecycle: start, output, run proposals, sleep and suspension, retries."""

from __future__ import annotations

from tests.unit.partition.harness import Env, cmd, only, reply, sent_frames, start_frames, target

from perdure.protocol.messages import MessageType as T
from perdure.protocol.pb import protocol_pb2 as pb
from perdure.server.partition.effects import (
    AbortAttempt,
    ReplyKind,
    ReplyToRequest,
    ScheduleTimer,
    StartAttempt,
)
from perdure.server.partition.events import AttemptFailed, CallMode, ServerStarted
from perdure.server.storage.api import InvocationStatus as S
from perdure.server.storage.api import TimerKind

GREET = target("Greeter", "greet")


def output(value: bytes) -> tuple[int, bool, bytes]:
    return cmd(pb.OutputCommandMessage(value=pb.Value(content=value)))


END = cmd(pb.EndMessage())


def test_call_starts_an_attempt_with_start_and_input() -> None:
    env = Env()
    _, inv, effects = env.request(GREET, b'"Ada"')
    start = only(effects, StartAttempt)
    assert (start.attempt, start.service, start.handler) == (1, "Greeter", "greet")
    frames = start_frames(start)
    assert [f.message_type for f in frames] == [T.START, T.INPUT_COMMAND]
    msg = frames[0].decode_as(pb.StartMessage)
    assert msg.debug_id == inv and msg.known_entries == 1 and msg.random_seed == 42
    assert frames[1].decode_as(pb.InputCommandMessage).value.content == b'"Ada"'
    assert env.row(inv).status is S.RUNNING


def test_output_then_end_answers_the_caller_and_completes() -> None:
    env = Env()
    rid, inv, _ = env.request(GREET)
    effects = env.frames(inv, 1, output(b'"hi"'), END)
    answer = reply(effects)
    assert answer.request_id == rid
    assert answer.reply.kind is ReplyKind.OUTPUT and answer.reply.outcome is not None
    assert answer.reply.outcome.value == b'"hi"'
    assert env.row(inv).status is S.COMPLETED


def test_send_is_accepted_at_once() -> None:
    env = Env()
    _, inv, effects = env.request(GREET, mode=CallMode.SEND)
    assert reply(effects).reply.kind is ReplyKind.ACCEPTED
    assert reply(effects).reply.invocation_id == inv
    effects = env.frames(inv, 1, output(b"1"), END)
    assert not [e for e in effects if isinstance(e, ReplyToRequest)]  # nobody waits for a send
    assert AbortAttempt(inv, 1) in effects


def test_terminal_failure_output_is_not_retried() -> None:
    env = Env()
    _, inv, _ = env.request(GREET)
    failure = pb.OutputCommandMessage(failure=pb.Failure(code=418, message="teapot"))
    effects = env.frames(inv, 1, cmd(failure), END)
    outcome = reply(effects).reply.outcome
    assert outcome is not None and outcome.failure is not None
    assert (outcome.failure.code, outcome.failure.message) == (418, "teapot")
    assert not [
        e for e in effects if isinstance(e, ScheduleTimer) and e.timer.kind is TimerKind.RETRY
    ]


def propose(completion_id: int, value: bytes, ack: bool) -> tuple[int, bool, bytes]:
    return cmd(pb.ProposeRunCompletionMessage(result_completion_id=completion_id, value=value), ack)


def test_run_proposal_is_echoed_as_notification_before_v7() -> None:
    env = Env(version=6)
    _, inv, _ = env.request(GREET)
    effects = env.frames(
        inv,
        1,
        cmd(pb.RunCommandMessage(result_completion_id=1, name="step")),
        propose(1, b"7", True),
    )
    frames = sent_frames(effects)
    assert [f.message_type for f in frames] == [T.RUN_COMPLETION_NOTIFICATION]
    assert frames[0].decode_as(pb.RunCompletionNotificationMessage).value.content == b"7"
    assert env.row(inv).journal_length == 3


def test_run_proposal_with_requested_ack_gets_an_ack_in_v7() -> None:
    env = Env(version=7)
    _, inv, _ = env.request(GREET)
    effects = env.frames(
        inv, 1, cmd(pb.RunCommandMessage(result_completion_id=1)), propose(1, b"7", True)
    )
    frames = sent_frames(effects)
    assert [f.message_type for f in frames] == [T.PROPOSE_RUN_COMPLETION_ACK]
    # The journal holds the real notification: a replay sees the result in the ack's place.
    journal = env.storage.reader().read_journal(inv)
    assert journal[-1].message_type == T.RUN_COMPLETION_NOTIFICATION


def test_sleep_suspend_and_resume_on_timer() -> None:
    env = Env()
    _, inv, _ = env.request(GREET)
    sleep = pb.SleepCommandMessage(wake_up_time=env.now + 1000, result_completion_id=1)
    effects = env.frames(inv, 1, cmd(sleep))
    timer = only(effects, ScheduleTimer).timer
    assert timer.fire_at == env.now + 1000 and timer.kind is TimerKind.SLEEP
    env.frames(inv, 1, cmd(pb.SuspensionMessage(waiting_completions=[1])))
    assert env.row(inv).status is S.SUSPENDED
    resumed = env.fire_timers(effects)
    start = only(resumed, StartAttempt)
    assert start.attempt == 2
    frames = start_frames(start)
    assert [f.message_type for f in frames] == [
        T.START,
        T.INPUT_COMMAND,
        T.SLEEP_COMMAND,
        T.SLEEP_COMPLETION_NOTIFICATION,
    ]
    assert frames[0].decode_as(pb.StartMessage).known_entries == 3


def test_suspension_with_all_completed_waits_for_every_child() -> None:
    env = Env(version=7)
    _, inv, _ = env.request(GREET)
    s1 = env.frames(
        inv, 1, cmd(pb.SleepCommandMessage(wake_up_time=env.now + 10, result_completion_id=1))
    )
    s2 = env.frames(
        inv, 1, cmd(pb.SleepCommandMessage(wake_up_time=env.now + 20, result_completion_id=2))
    )
    tree = pb.Future(waiting_completions=[1, 2], combinator_type=pb.ALL_COMPLETED)
    env.frames(inv, 1, cmd(pb.SuspensionMessage(awaiting_on=tree)))
    assert not [e for e in env.fire_timers(s1) if isinstance(e, StartAttempt)]
    assert env.row(inv).status is S.SUSPENDED
    assert only(env.fire_timers(s2), StartAttempt).attempt == 2


def test_suspension_resumes_at_once_when_already_notified() -> None:
    env = Env()
    _, inv, _ = env.request(GREET)
    effects = env.frames(
        inv, 1, cmd(pb.SleepCommandMessage(wake_up_time=env.now, result_completion_id=1))
    )
    env.fire_timers(effects)  # the notification arrives while the attempt still runs
    resumed = env.frames(inv, 1, cmd(pb.SuspensionMessage(waiting_completions=[1])))
    assert only(resumed, StartAttempt).attempt == 2


def error(code: int, message: str, **extra: object) -> tuple[int, bool, bytes]:
    return cmd(pb.ErrorMessage(code=code, message=message, **extra))  # type: ignore[arg-type]


def test_error_backs_off_and_retries_with_the_journal() -> None:
    env = Env()
    _, inv, _ = env.request(GREET)
    effects = env.frames(inv, 1, error(500, "boom"))
    timer = only(effects, ScheduleTimer).timer
    assert timer.kind is TimerKind.RETRY and timer.fire_at == env.now + 500  # Restate's 500 ms
    row = env.row(inv)
    assert row.status is S.BACKING_OFF and row.last_failure is not None
    assert row.last_failure.message == "boom"
    start = only(env.fire_timers(effects), StartAttempt)
    assert start.attempt == 2
    assert (
        start_frames(start)[0].decode_as(pb.StartMessage).retry_count_since_last_stored_entry == 1
    )


def test_next_retry_delay_from_the_sdk_wins() -> None:
    env = Env()
    _, inv, _ = env.request(GREET)
    effects = env.frames(inv, 1, error(500, "later", next_retry_delay=12_345))
    assert only(effects, ScheduleTimer).timer.fire_at == env.now + 12_345


def test_retries_exhausted_pause_the_invocation() -> None:
    env = Env()
    _, inv, _ = env.request(target("Fragile", "go"))
    attempt = 1
    for _ in range(2):
        effects = env.frames(inv, attempt, error(500, "again"))
        attempt = only(env.fire_timers(effects), StartAttempt).attempt
    effects = env.frames(inv, attempt, error(500, "third"))
    assert env.row(inv).status is S.PAUSED
    assert not [e for e in effects if isinstance(e, ScheduleTimer)]


def test_transport_failure_is_retried_and_stale_attempts_are_ignored() -> None:
    env = Env()
    _, inv, _ = env.request(GREET)
    effects = env.apply(AttemptFailed(inv, 1, 503, "connection refused"))
    assert env.row(inv).status is S.BACKING_OFF
    env.fire_timers(effects)
    # Attempt 1 is over: its late messages change nothing.
    assert env.frames(inv, 1, output(b"late"), END) == []
    assert env.row(inv).status is S.RUNNING and env.row(inv).attempt == 2


def test_error_behavior_fail_completes_with_the_failure() -> None:
    env = Env(version=7)
    _, inv, _ = env.request(GREET)
    effects = env.frames(inv, 1, error(422, "bad input", behavior=pb.FAIL))
    failure = reply(effects).reply.outcome.failure
    assert failure is not None and failure.code == 422


def test_server_restart_starts_running_invocations_again() -> None:
    env = Env()
    _, inv, _ = env.request(GREET)
    effects = env.apply(ServerStarted())
    start = only(effects, StartAttempt)
    assert (start.invocation_id, start.attempt) == (inv, 2)


def test_input_command_from_the_deployment_is_a_protocol_violation() -> None:
    env = Env()
    _, inv, _ = env.request(GREET)
    env.frames(inv, 1, cmd(pb.InputCommandMessage()))
    row = env.row(inv)
    assert row.status is S.BACKING_OFF and row.last_failure is not None
    assert row.last_failure.code == 571
