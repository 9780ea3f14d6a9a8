"""Replay at every journal position: cut a recorded journal anywhere, the handler must go on
exactly as it went the first time (same commands, same results), at V5, V6 and V7."""

from __future__ import annotations

import json

import pytest
from google.protobuf.message import Message
from tests.unit.vm.fake_runtime import FakeRuntime, Session, Stop, commands
from tests.unit.vm.harness import start_message

from perdure.protocol.framing import decode_frames, encode_message
from perdure.protocol.pb import protocol_pb2 as pb
from perdure.sdk.vm import VM, Failure

WAKE_UP = 1_700_000_000_000


def saga(session: Session) -> list[object]:
    """A handler touching every kind of step, recording what each step returned."""
    vm = session.vm
    seen: list[object] = []
    inp = vm.sys_input()
    seen.append(inp.body)
    seen.append(session.result(vm.sys_state_get("count")))
    vm.sys_state_set("count", b"1")
    charge = vm.sys_run("charge")
    seen.append(session.result(charge.handle, run=lambda: b'"charged"'))
    seen.append(session.result(vm.sys_sleep(WAKE_UP)))
    call = vm.sys_call("Greeter", "greet", b'"Till"', key=None)
    seen.append(session.result(call.result_handle))
    seen.append(session.result(call.invocation_id_handle))
    awakeable_id, awakeable = vm.sys_awakeable()
    seen.append(awakeable_id)
    seen.append(session.result(awakeable))
    vm.sys_send("Mailer", "send", b"{}", invoke_time_ms=WAKE_UP)
    seen.append(session.result(vm.sys_get_promise("approval")))
    seen.append(session.result(vm.sys_state_get_keys()))
    vm.sys_state_clear("count")
    failing = vm.sys_run("notify")
    seen.append(session.result(failing.handle, run=lambda: Failure(418, "teapot")))
    seen.append(session.result(vm.sys_state_get("count")))
    vm.sys_write_output(json.dumps([repr(s) for s in seen]).encode())
    vm.sys_end()
    return seen


def new_runtime(version: int) -> FakeRuntime:
    return FakeRuntime(
        version=version,
        state={"count": b"0"},
        promises={"approval": b"true"},
        signals={17: b'"ok"'},
    )


def run_fresh(version: int) -> tuple[FakeRuntime, list[object]]:
    runtime = new_runtime(version)
    input_cmd = pb.InputCommandMessage(value=pb.Value(content=b'"in"'))
    runtime.load([input_cmd])
    vm = VM(version)
    vm.notify_input(encode_message(start_message(1)) + encode_message(input_cmd))
    session = Session(vm, runtime)
    seen = saga(session)
    session.finish()
    return runtime, seen


def replay(version: int, prefix: list[Message]) -> tuple[FakeRuntime, list[object]]:
    runtime = new_runtime(version)
    # The server's state already reflects the commands of the prefix.
    for msg in prefix:
        if isinstance(msg, pb.SetStateCommandMessage):
            runtime.state[msg.key.decode()] = msg.value.content
        elif isinstance(msg, pb.ClearStateCommandMessage):
            runtime.state.pop(msg.key.decode(), None)
        elif isinstance(msg, pb.SignalNotificationMessage):
            runtime.signals.pop(msg.idx, None)
    runtime.load(prefix)
    vm = VM(version)
    vm.notify_input(
        encode_message(start_message(len(prefix))) + b"".join(encode_message(m) for m in prefix)
    )
    session = Session(vm, runtime)
    seen = saga(session)
    session.finish()
    return runtime, seen


@pytest.mark.parametrize("version", [5, 6, 7])
def test_the_saga_runs_to_the_end_against_the_fake_server(version: int) -> None:
    runtime, seen = run_fresh(version)

    assert isinstance(runtime.ended_with, pb.EndMessage)
    assert seen[0] == b'"in"'
    assert seen[1] == b"0"
    assert seen[2] == b'"charged"'
    assert seen[3] is None
    assert seen[4] == b'"Till"'
    assert seen[5] == "inv_child4"
    assert str(seen[6]).startswith("sign_1")
    assert seen[7] == b'"ok"'
    assert seen[8] == b"true"
    assert seen[9] == ("count",)
    assert seen[10] == Failure(418, "teapot")
    assert seen[11] is None  # cleared: answered from the eager state, no round trip


@pytest.mark.parametrize("version", [5, 6, 7])
def test_replaying_any_prefix_of_the_journal_continues_identically(version: int) -> None:
    original, first_seen = run_fresh(version)
    journal = original.journal

    for cut in range(1, len(journal) + 1):
        prefix = journal[:cut]
        runtime, seen = replay(version, prefix)
        assert seen == first_seen, f"different results when replaying {cut} entries"
        assert commands(runtime.journal) == commands(journal), f"cut at {cut}"
        assert runtime.journal == journal, f"cut at {cut}"
        assert isinstance(runtime.ended_with, pb.EndMessage), f"cut at {cut}"


def test_a_replay_does_not_execute_runs_that_are_journaled() -> None:
    original, _ = run_fresh(7)
    executed: list[str] = []

    runtime = new_runtime(7)
    runtime.load(original.journal)
    vm = VM(7)
    vm.notify_input(
        encode_message(start_message(len(original.journal)))
        + b"".join(encode_message(m) for m in original.journal)
    )
    session = Session(vm, runtime)
    session.runs = {}
    try:
        saga(session)
    except KeyError:  # a run closure was asked for: it would have executed again
        executed.append("run")
    assert executed == []
    # The whole journal replayed, output included: only the End is new.
    assert [f.name for f in decode_frames(vm.take_output())] == ["END"]


def test_stop_is_raised_when_the_journal_ends_in_a_suspension() -> None:
    runtime = new_runtime(7)
    runtime.hold = frozenset({0x040C})  # never fire the timer
    input_cmd = pb.InputCommandMessage(value=pb.Value(content=b'"in"'))
    runtime.load([input_cmd])
    vm = VM(7)
    vm.notify_input(encode_message(start_message(1)) + encode_message(input_cmd))
    with pytest.raises(Stop):
        saga(Session(vm, runtime))
    runtime.receive(vm.take_output())
    assert isinstance(runtime.ended_with, pb.SuspensionMessage)
