"""Failures: protocol violations (571), mismatches (570), the sticky error, notify_error."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.unit.vm.harness import Output, VMCase, start_message

from perdure.protocol.framing import encode_frame, encode_message
from perdure.protocol.pb import protocol_pb2 as pb
from perdure.sdk.vm import VM, Phase, VMError, VMOptions, single


def errors_of(vm: VM) -> list[pb.ErrorMessage]:
    return [f.decode() for f in Output.of(vm).frames if f.name == "ERROR"]


@pytest.mark.parametrize(
    "unexpected",
    [pb.EndMessage(), pb.SuspensionMessage(), pb.ErrorMessage(code=500), pb.CommandAckMessage()],
)
def test_control_messages_from_the_server_are_protocol_violations(unexpected: object) -> None:
    vm = VMCase().start().input().vm(close_input=False)
    vm.notify_input(encode_message(unexpected))  # type: ignore[arg-type]
    with pytest.raises(VMError) as caught:
        vm.is_ready_to_execute()
    assert caught.value.code == 571
    (error,) = errors_of(vm)
    assert error.code == 571 and "while the invocation was" in error.message


def test_a_command_after_the_replayed_journal_is_a_protocol_violation() -> None:
    vm = VMCase().start().input().vm(close_input=False)
    vm.notify_input(encode_message(pb.SleepCommandMessage(result_completion_id=1)))
    with pytest.raises(VMError, match="571"):
        vm.sys_input()


def test_a_second_start_message_is_a_protocol_violation() -> None:
    vm = VMCase().start().input().vm(close_input=False)
    vm.notify_input(encode_message(start_message(1)))
    assert vm.error is not None and vm.error.code == 571


def test_garbage_bytes_fail_the_attempt() -> None:
    vm = VM(7)
    vm.notify_input(encode_frame(0x0415, b""))  # a type code nobody defined
    assert vm.error is not None and vm.error.code == 571
    assert errors_of(vm)[0].message.startswith("unknown message type 0x0415")


def test_a_stream_closed_before_the_journal_arrived_fails_the_attempt() -> None:
    vm = VM(7)
    vm.notify_input(encode_message(start_message(3)) + encode_message(pb.InputCommandMessage()))
    vm.notify_input_closed()
    with pytest.raises(VMError) as caught:
        vm.is_ready_to_execute()
    assert caught.value.code == 571
    assert "after 1 of the 3 journal entries" in caught.value.message


def test_a_stream_cut_inside_a_frame_fails_the_attempt() -> None:
    vm = VM(7)
    vm.notify_input(encode_message(start_message(1))[:5])
    vm.notify_input_closed()
    assert vm.error is not None and vm.error.code == 571


def test_zero_known_entries_is_refused() -> None:
    vm = VM(7)
    vm.notify_input(encode_message(start_message(0)))
    assert vm.error is not None and "0 known entries" in vm.error.message


def test_the_error_is_sticky_and_written_once() -> None:
    vm = VMCase().start().input().entry(pb.ClearStateCommandMessage(key=b"a")).vm()
    vm.sys_input()
    with pytest.raises(VMError) as first:
        vm.sys_state_clear("b")
    with pytest.raises(VMError) as again:
        vm.sys_sleep(0)
    assert again.value is first.value
    vm.notify_error("late")  # ignored: the attempt already failed
    assert [m.code for m in errors_of(vm)] == [570]
    assert vm.phase is Phase.CLOSED and vm.is_output_closed


def test_the_mismatch_message_shows_both_commands_and_the_fix() -> None:
    vm = VMCase().start().input().entry(pb.ClearStateCommandMessage(key=b"a")).vm()
    vm.sys_input()
    with pytest.raises(VMError) as caught:
        vm.sys_sleep(5, name="nap")
    message = caught.value.message
    assert "command #1" in message
    assert 'CLEAR_STATE_COMMAND {key: "a"}' in message
    assert 'SLEEP_COMMAND {wake_up_time: 5 result_completion_id: 1 name: "nap"}' in message
    assert "deterministic" in message
    (error,) = errors_of(vm)
    assert (error.related_command_index, error.related_command_type) == (1, 0x040C)
    assert error.related_command_name == "nap"


def test_returning_early_while_replaying_is_a_mismatch() -> None:
    vm = (
        VMCase()
        .start()
        .input()
        .entry(pb.SetStateCommandMessage(key=b"a", value=pb.Value(content=b"1")))
        .entry(pb.OutputCommandMessage(value=pb.Value(content=b"1")))
        .vm()
    )
    vm.sys_input()
    with pytest.raises(VMError) as caught:
        vm.sys_end()
    assert caught.value.code == 570
    assert "SET_STATE_COMMAND" in caught.value.message


def test_an_await_the_journal_never_saw_complete_is_a_mismatch() -> None:
    vm = (
        VMCase()
        .start()
        .input()
        .entry(pb.SleepCommandMessage(result_completion_id=1))
        .entry(pb.ClearAllStateCommandMessage())
        .vm()
    )
    vm.sys_input()
    handle = vm.sys_sleep(0)
    with pytest.raises(VMError) as caught:
        vm.do_progress(single(handle))
    assert caught.value.code == 570
    assert "completion 1" in caught.value.message


def test_calls_after_the_end_are_closed_errors_that_write_nothing() -> None:
    vm = VMCase().start().input().vm()
    vm.sys_input()
    vm.sys_write_output(b"")
    vm.sys_end()
    vm.sys_end()  # tolerated
    with pytest.raises(VMError) as caught:
        vm.sys_sleep(0)
    assert caught.value.code == 598
    assert Output.of(vm).types == ["OUTPUT_COMMAND", "END"]


def test_notify_error_names_the_last_command_and_the_retry_delay() -> None:
    vm = VMCase().start().input().vm()
    vm.sys_input()
    vm.sys_state_set("a", b"1")
    vm.notify_error("boom", code=503, stacktrace="trace", next_retry_delay_ms=250)
    (error,) = errors_of(vm)
    assert (error.code, error.message, error.stacktrace, error.next_retry_delay) == (
        503,
        "boom",
        "trace",
        250,
    )
    assert (error.related_command_index, error.related_command_type) == (1, 0x0403)


def test_pausing_from_the_sdk_needs_v7() -> None:
    vm = VMCase(6).start().input().vm()
    vm.sys_input()
    vm.notify_error("stop", behavior=pb.PAUSE)
    assert [e.code for e in errors_of(vm)] == [573]


def test_reading_the_input_is_only_possible_once() -> None:
    vm = VMCase().start().input().vm()
    vm.sys_input()
    with pytest.raises(VMError, match="twice"):
        vm.sys_input()


def test_an_invocation_id_input_and_headers_come_from_start_and_input() -> None:
    vm = (
        VMCase(7)
        .start(key="k", random_seed=42, idempotency_key="idem")
        .input(b"body", headers=[("h", "v")])
        .vm()
    )
    invocation = vm.sys_input()
    assert (invocation.invocation_id, invocation.key, invocation.body) == (
        "inv_1test",
        "k",
        b"body",
    )
    assert invocation.headers == (("h", "v"),)
    assert (invocation.random_seed, invocation.idempotency_key) == (42, "idem")


def test_before_v6_the_random_seed_is_derived_from_the_invocation_id() -> None:
    seeds = {VMCase(5).start(random_seed=42).input().vm().sys_input().random_seed for _ in "ab"}
    (seed,) = seeds
    assert seed != 42
    assert VMCase(5).start(id=b"other").input().vm().sys_input().random_seed != seed


@pytest.mark.parametrize(("version", "behavior"), [(6, pb.RETRY), (7, pb.PAUSE)])
def test_a_mismatch_can_ask_the_server_to_pause_from_v7(version: int, behavior: int) -> None:
    options = VMOptions(on_journal_mismatch=pb.PAUSE)
    vm = VMCase(version, options).start().input().entry(pb.ClearAllStateCommandMessage()).vm()
    vm.sys_input()
    with pytest.raises(VMError):
        vm.sys_state_clear("a")
    assert errors_of(vm)[0].behavior == behavior


def test_a_payload_that_does_not_parse_fails_the_attempt() -> None:
    vm = VM(7)
    vm.notify_input(encode_frame(0x0000, b"\xff\xff\xff"))  # not a StartMessage
    assert vm.error is not None and vm.error.code == 571
    assert "StartMessage" in errors_of(vm)[0].message or "START" in errors_of(vm)[0].message


@given(st.binary(max_size=200), st.integers(min_value=5, max_value=7))
@settings(max_examples=300, deadline=None)
def test_any_bytes_either_feed_the_vm_or_fail_it_never_escape(data: bytes, version: int) -> None:
    vm = VM(version)
    vm.notify_input(encode_message(start_message(1)) + data)
    vm.notify_input_closed()
    try:
        vm.is_ready_to_execute()
    except VMError as exc:
        assert exc.code in (500, 570, 571)
        assert [m.code for m in errors_of(vm)] == [exc.code]
