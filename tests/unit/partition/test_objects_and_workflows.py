"""Virtual-object locking, state, idempotency keys, workflows and durable promises."""

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
from perdure.server.partition.effects import ReplyKind, StartAttempt
from perdure.server.partition.events import AttachBy, AttachRequested, CallMode
from perdure.server.storage.api import InvocationStatus as S

ADD = target("Counter", "add", "alice")
GET = target("Counter", "get", "alice")
END = cmd(pb.EndMessage())


def out(value: bytes) -> tuple[int, bool, bytes]:
    return cmd(pb.OutputCommandMessage(value=pb.Value(content=value)))


def test_exclusive_handlers_wait_for_the_lock_in_arrival_order() -> None:
    env = Env()
    _, first, e1 = env.request(ADD, b"1")
    _, second, e2 = env.request(ADD, b"2")
    _, third, e3 = env.request(ADD, b"3")
    assert only(e1, StartAttempt).invocation_id == first
    assert not all_of(e2, StartAttempt) and not all_of(e3, StartAttempt)
    assert env.row(second).status is S.PENDING
    done = env.frames(first, 1, out(b"1"), END)
    assert only(done, StartAttempt).invocation_id == second
    done = env.frames(second, 1, out(b"3"), END)
    assert only(done, StartAttempt).invocation_id == third


def test_shared_handlers_never_take_the_lock() -> None:
    env = Env()
    env.request(ADD, b"1")
    _, reader, effects = env.request(GET)
    assert only(effects, StartAttempt).invocation_id == reader


def test_state_is_written_and_handed_to_the_next_invocation_eagerly() -> None:
    env = Env()
    _, first, _ = env.request(ADD, b"1")
    env.frames(
        first,
        1,
        cmd(pb.SetStateCommandMessage(key=b"count", value=pb.Value(content=b"1"))),
        out(b"1"),
        END,
    )
    _, second, effects = env.request(ADD, b"1")
    start = start_frames(only(effects, StartAttempt))[0].decode_as(pb.StartMessage)
    assert [(e.key, e.value) for e in start.state_map] == [(b"count", b"1")]
    assert not start.partial_state and start.key == "alice"
    env.frames(second, 1, cmd(pb.ClearAllStateCommandMessage()), out(b"0"), END)
    _, _, effects = env.request(ADD, b"1")
    assert not start_frames(only(effects, StartAttempt))[0].decode_as(pb.StartMessage).state_map


def test_lazy_state_get_answers_with_a_notification() -> None:
    env = Env()
    _, inv, _ = env.request(GET)
    effects = env.frames(
        inv, 1, cmd(pb.GetLazyStateCommandMessage(key=b"nope", result_completion_id=1))
    )
    note = sent_frames(effects)[0].decode_as(pb.GetLazyStateCompletionNotificationMessage)
    assert note.completion_id == 1 and note.HasField("void")


def test_state_commands_on_a_service_are_a_protocol_violation() -> None:
    env = Env()
    _, inv, _ = env.request(target("Greeter", "greet"))
    env.frames(inv, 1, cmd(pb.SetStateCommandMessage(key=b"k", value=pb.Value(content=b"v"))))
    failure = env.row(inv).last_failure
    assert failure is not None and failure.code == 571


def test_idempotency_key_returns_the_same_invocation() -> None:
    env = Env()
    greet = target("Greeter", "greet")
    rid1, inv, _ = env.request(greet, idempotency_key="k1")
    rid2, _, effects = env.request(greet, idempotency_key="k1")
    assert not all_of(effects, StartAttempt)  # attached, not started again
    done = env.frames(inv, 1, out(b'"x"'), END)
    answered = {r.request_id for r in done if hasattr(r, "request_id")}
    assert answered == {rid1, rid2}
    # After completion the same key answers from the stored output.
    _, _, later = env.request(greet, idempotency_key="k1")
    assert reply(later).reply.outcome.value == b'"x"'
    _, _, sent = env.request(greet, mode=CallMode.SEND, idempotency_key="k1")
    assert reply(sent).reply.previously_accepted


def test_workflow_run_happens_once_per_key() -> None:
    env = Env()
    run = target("Signup", "run", "bob")
    _, inv, effects = env.request(run)
    assert only(effects, StartAttempt)
    _, _, again = env.request(run)
    assert reply(again).reply.kind is ReplyKind.ERROR and reply(again).reply.status == 409
    _, _, sent = env.request(run, mode=CallMode.SEND)
    assert reply(sent).reply.previously_accepted and reply(sent).reply.invocation_id == inv
    # Output of a running workflow: not ready (470); attach waits.
    peek = env.apply(AttachRequested(99, AttachBy.WORKFLOW, False, target=run))
    assert reply(peek).reply.status == 470


def test_durable_promise_wakes_the_waiting_run_and_refuses_a_second_completion() -> None:
    env = Env()
    _, run, _ = env.request(target("Signup", "run", "bob"))
    env.frames(
        run, 1, cmd(pb.GetPromiseCommandMessage(key="email.clicked", result_completion_id=1))
    )
    env.frames(run, 1, cmd(pb.SuspensionMessage(waiting_completions=[1])))
    _, click, _ = env.request(target("Signup", "click", "bob"))
    complete = pb.CompletePromiseCommandMessage(
        key="email.clicked", completion_value=pb.Value(content=b'"yes"'), result_completion_id=1
    )
    effects = env.frames(click, 1, cmd(complete))
    assert only(effects, StartAttempt).invocation_id == run  # the run resumes
    ack = sent_frames(effects)[0].decode_as(pb.CompletePromiseCompletionNotificationMessage)
    assert ack.HasField("void")
    _, click2, _ = env.request(target("Signup", "click", "bob"))
    effects = env.frames(click2, 1, cmd(complete))
    second = sent_frames(effects)[0].decode_as(pb.CompletePromiseCompletionNotificationMessage)
    assert second.failure.code == 409


def test_calls_enqueue_the_callee_and_complete_the_caller() -> None:
    env = Env()
    _, caller, _ = env.request(target("Greeter", "greet"))
    call = pb.CallCommandMessage(
        service_name="Counter",
        handler_name="add",
        key="carol",
        parameter=b"5",
        invocation_id_notification_idx=1,
        result_completion_id=2,
    )
    effects = env.frames(caller, 1, cmd(call))
    callee = only(effects, StartAttempt)
    assert callee.service == "Counter"
    id_note = sent_frames(effects)[0].decode_as(pb.CallInvocationIdCompletionNotificationMessage)
    assert id_note.invocation_id == callee.invocation_id
    done = env.frames(callee.invocation_id, 1, out(b"5"), END)
    result = sent_frames(done)
    assert [f.message_type for f in result] == [T.CALL_COMPLETION_NOTIFICATION]
    assert result[0].decode_as(pb.CallCompletionNotificationMessage).value.content == b"5"


def test_call_to_an_unknown_service_fails_the_call_not_the_caller() -> None:
    env = Env()
    _, caller, _ = env.request(target("Greeter", "greet"))
    call = pb.CallCommandMessage(
        service_name="Nope",
        handler_name="x",
        invocation_id_notification_idx=1,
        result_completion_id=2,
    )
    frames = sent_frames(env.frames(caller, 1, cmd(call)))
    assert frames[1].decode_as(pb.CallCompletionNotificationMessage).failure.code == 404
    assert env.row(caller).status is S.RUNNING
