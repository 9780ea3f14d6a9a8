"""Calls and sends from handlers: ids, idempotency keys, workflow runs, signals."""

from __future__ import annotations

from tests.unit.partition.harness import Env, all_of, cmd, sent_frames, target

from perdure.protocol.messages import MessageType as T
from perdure.protocol.pb import protocol_pb2 as pb
from perdure.server.partition.effects import StartAttempt
from perdure.server.storage.api import InvocationStatus as S

END = cmd(pb.EndMessage())


def call(service: str, handler: str, key: str = "", n: int = 1, **extra: str) -> tuple:
    msg = pb.CallCommandMessage(
        service_name=service,
        handler_name=handler,
        key=key,
        parameter=b"1",
        invocation_id_notification_idx=n,
        result_completion_id=n + 1,
        **extra,
    )
    return cmd(msg)


def send(service: str, handler: str, key: str = "", n: int = 1, **extra: str) -> tuple:
    msg = pb.OneWayCallCommandMessage(
        service_name=service,
        handler_name=handler,
        key=key,
        parameter=b"1",
        invocation_id_notification_idx=n,
        **extra,
    )
    return cmd(msg)


def finish(env: Env, inv: str, value: bytes = b"7") -> None:
    env.frames(inv, 1, cmd(pb.OutputCommandMessage(value=pb.Value(content=value))), END)


def test_idempotent_call_to_a_completed_callee_gets_the_id_then_the_stored_result() -> None:
    env = Env()
    _, first, _ = env.request(target("Greeter", "greet"))
    effects = env.frames(first, 1, call("Greeter", "greet", idempotency_key="k"))
    callee = all_of(effects, StartAttempt)[0].invocation_id
    finish(env, callee)
    _, second, _ = env.request(target("Greeter", "greet"))
    effects = env.frames(second, 1, call("Greeter", "greet", idempotency_key="k"))
    assert not all_of(effects, StartAttempt)  # not run again
    frames = sent_frames(effects)
    assert [f.message_type for f in frames] == [
        T.CALL_INVOCATION_ID_COMPLETION_NOTIFICATION,
        T.CALL_COMPLETION_NOTIFICATION,
    ]
    assert frames[0].decode_as(pb.CallInvocationIdCompletionNotificationMessage).invocation_id == (
        callee
    )
    assert frames[1].decode_as(pb.CallCompletionNotificationMessage).value.content == b"7"


def test_calling_a_workflow_run_twice_fails_the_second_caller() -> None:
    env = Env()
    _, caller, _ = env.request(target("Greeter", "greet"))
    first = env.frames(caller, 1, call("Signup", "run", "w", n=1))
    run = all_of(first, StartAttempt)[0].invocation_id
    second = sent_frames(env.frames(caller, 1, call("Signup", "run", "w", n=3)))
    assert second[0].decode_as(pb.CallInvocationIdCompletionNotificationMessage).invocation_id == (
        run
    )
    refused = second[1].decode_as(pb.CallCompletionNotificationMessage)
    assert refused.failure.code == 409 and "already invoked" in refused.failure.message
    assert env.row(run).status is S.RUNNING  # the run itself carries on


def test_sending_a_workflow_run_twice_is_a_no_op_even_with_an_idempotency_key() -> None:
    env = Env()
    _, caller, _ = env.request(target("Greeter", "greet"))
    first = env.frames(caller, 1, send("Signup", "run", "w", n=1))
    run = all_of(first, StartAttempt)[0].invocation_id
    again = env.frames(caller, 1, send("Signup", "run", "w", n=2, idempotency_key="other"))
    assert not all_of(again, StartAttempt)
    note = sent_frames(again)[0].decode_as(pb.CallInvocationIdCompletionNotificationMessage)
    assert note.invocation_id == run


def test_cancel_signal_from_a_handler_cancels_the_target() -> None:
    env = Env()
    _, target_inv, _ = env.request(target("Greeter", "greet"))
    _, canceller, _ = env.request(target("Greeter", "greet"))
    signal = pb.SendSignalCommandMessage(target_invocation_id=target_inv, idx=1, void=pb.Void())
    effects = env.frames(canceller, 1, cmd(signal))
    to_target = [e for e in effects if getattr(e, "invocation_id", None) == target_inv]
    assert to_target, effects
    assert sent_frames(to_target)[0].decode_as(pb.SignalNotificationMessage).idx == 1


def test_named_signal_wakes_a_suspended_invocation() -> None:
    env = Env(version=7)
    _, waiting, _ = env.request(target("Greeter", "greet"))
    env.frames(waiting, 1, cmd(pb.SuspensionMessage(waiting_named_signals=["approve"])))
    _, sender, _ = env.request(target("Greeter", "greet"))
    signal = pb.SendSignalCommandMessage(
        target_invocation_id=waiting, name="approve", value=pb.Value(content=b'"yes"')
    )
    effects = env.frames(sender, 1, cmd(signal))
    assert [e.invocation_id for e in all_of(effects, StartAttempt)] == [waiting]
