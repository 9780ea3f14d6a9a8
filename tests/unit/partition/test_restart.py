"""Restart-as-new from the beginning or from a journal prefix."""

from __future__ import annotations

from tests.unit.partition.harness import Env, cmd, only, reply, start_frames, target

from perdure.protocol.messages import MessageType as T
from perdure.protocol.pb import protocol_pb2 as pb
from perdure.server.partition.effects import StartAttempt
from perdure.server.partition.events import Operation, OperatorRequested

END = cmd(pb.EndMessage())
OUT = cmd(pb.OutputCommandMessage(value=pb.Value(content=b"1")))


def restart(env: Env, inv: str, from_index: int = 0, keep: bool = False) -> tuple:
    ev = OperatorRequested(5, inv, Operation.RESTART_AS_NEW, from_index, keep)
    effects = env.apply(ev)
    return reply(effects).reply, effects


def finished_with_a_run_step(env: Env) -> str:
    """input(0), run(1, completion 1), sleep(2, completion 2), run result(3), sleep done(4)."""
    _, inv, _ = env.request(target("Greeter", "greet"), b'"Ada"')
    effects = env.frames(
        inv,
        1,
        cmd(pb.RunCommandMessage(result_completion_id=1, name="step")),
        cmd(pb.SleepCommandMessage(wake_up_time=env.now, result_completion_id=2)),
        cmd(pb.ProposeRunCompletionMessage(result_completion_id=1, value=b"42")),
    )
    env.fire_timers(effects)
    env.frames(inv, 1, OUT, END)
    return inv


def test_restart_from_a_prefix_copies_it_with_the_completions_it_needs() -> None:
    env = Env()
    inv = finished_with_a_run_step(env)
    answer, effects = restart(env, inv, from_index=1, keep=True)
    assert answer.status == 200 and answer.invocation_id != inv
    frames = start_frames(only(effects, StartAttempt))
    assert [f.message_type for f in frames] == [
        T.START,
        T.INPUT_COMMAND,
        T.RUN_COMMAND,
        T.RUN_COMPLETION_NOTIFICATION,
    ]
    assert frames[0].decode_as(pb.StartMessage).known_entries == 3
    assert frames[3].decode_as(pb.RunCompletionNotificationMessage).value.content == b"42"
    assert env.row(answer.invocation_id).deployment_id == env.row(inv).deployment_id


def test_restart_from_the_beginning_keeps_only_the_input() -> None:
    env = Env()
    inv = finished_with_a_run_step(env)
    _, effects = restart(env, inv)
    frames = start_frames(only(effects, StartAttempt))
    assert [f.message_type for f in frames] == [T.START, T.INPUT_COMMAND]
    assert frames[1].decode_as(pb.InputCommandMessage).value.content == b'"Ada"'


def test_restart_refuses_an_index_out_of_range_or_a_prefix_with_a_missing_result() -> None:
    env = Env()
    _, inv, _ = env.request(target("Greeter", "greet"))
    sleep = cmd(pb.SleepCommandMessage(wake_up_time=env.now + 10**9, result_completion_id=1))
    env.frames(inv, 1, sleep, OUT, END)  # completed while the sleep never fired
    assert restart(env, inv, from_index=99)[0].status == 400
    refused = restart(env, inv, from_index=1)[0]
    assert refused.status == 400 and "c:1" in refused.message
    assert restart(env, inv, from_index=0)[0].status == 200


def test_purge_journal_keeps_the_row_and_then_restart_is_gone() -> None:
    env = Env()
    _, running, _ = env.request(target("Greeter", "greet"))
    refused = reply(env.apply(OperatorRequested(4, running, Operation.PURGE_JOURNAL))).reply
    assert refused.status == 409
    inv = finished_with_a_run_step(env)
    assert reply(env.apply(OperatorRequested(5, inv, Operation.PURGE_JOURNAL))).reply.status == 200
    assert env.row(inv).journal_length == 0 and env.row(inv).outcome is not None
    assert not env.storage.reader().read_journal(inv)
    assert restart(env, inv)[0].status == 410
