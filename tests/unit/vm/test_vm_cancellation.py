"""Cancellation: every await also waits for the cancel signal; when it comes, child calls are
cancelled, the handler is told once, and it may go on to compensate."""

from __future__ import annotations

from tests.unit.vm.harness import Output, VMCase, cancel_signal

from perdure.protocol.framing import encode_message
from perdure.protocol.pb import protocol_pb2 as pb
from perdure.sdk.vm import (
    ANY_COMPLETED,
    CANCEL_SIGNAL_RECEIVED,
    SUSPENDED,
    VMOptions,
    WaitExternalProgress,
    single,
)


def call_id(
    completion_id: int, invocation_id: str
) -> pb.CallInvocationIdCompletionNotificationMessage:
    return pb.CallInvocationIdCompletionNotificationMessage(
        completion_id=completion_id, invocation_id=invocation_id
    )


def test_the_cancel_signal_interrupts_an_await_once_and_cancels_child_calls() -> None:
    vm = VMCase().start().input().later(call_id(1, "inv_1child")).later(cancel_signal()).vm()
    vm.sys_input()
    call = vm.sys_call("Child", "work", b"")
    assert vm.do_progress(single(call.result_handle)) == CANCEL_SIGNAL_RECEIVED
    # Told once: compensation can now run, and a new await waits normally.
    compensation = vm.sys_run("refund")
    assert not compensation.replayed
    assert vm.do_progress(single(compensation.handle)).__class__.__name__ == "ExecuteRun"
    vm.propose_run_completion(compensation.handle, b"")
    assert vm.do_progress(single(compensation.handle)) == SUSPENDED
    out = Output.of(vm)
    assert out.types == [
        "CALL_COMMAND",
        "SEND_SIGNAL_COMMAND",
        "RUN_COMMAND",
        "PROPOSE_RUN_COMPLETION",
        "SUSPENSION",
    ]
    cancel = out.frames[1].decode()
    assert (cancel.target_invocation_id, cancel.idx) == ("inv_1child", 1)
    # The handled cancellation is no longer awaited.
    assert list(out.frames[-1].decode().awaiting_on.waiting_signals) == []


def test_the_child_invocation_id_is_awaited_before_cancelling_it() -> None:
    vm = VMCase().start().input().later(cancel_signal()).vm(close_input=False)
    vm.sys_input()
    call = vm.sys_call("Child", "work", b"")
    assert vm.do_progress(single(call.result_handle)) == WaitExternalProgress(True, False)
    vm.notify_input(encode_message(call_id(1, "inv_1child")))
    assert vm.do_progress(single(call.result_handle)) == CANCEL_SIGNAL_RECEIVED
    assert Output.of(vm).types[-1] == "SEND_SIGNAL_COMMAND"


def test_one_way_calls_are_cancelled_only_when_asked() -> None:
    for options, expected in (
        (VMOptions(), ["ONE_WAY_CALL_COMMAND", "SLEEP_COMMAND"]),
        (
            VMOptions(cancel_child_sends=True),
            ["ONE_WAY_CALL_COMMAND", "SLEEP_COMMAND", "SEND_SIGNAL_COMMAND"],
        ),
    ):
        vm = (
            VMCase(7, options)
            .start()
            .input()
            .later(call_id(1, "inv_1s"))
            .later(cancel_signal())
            .vm()
        )
        vm.sys_input()
        vm.sys_send("S", "h", b"")
        assert vm.do_progress(single(vm.sys_sleep(0))) == CANCEL_SIGNAL_RECEIVED
        assert Output.of(vm).types == expected


def test_without_implicit_cancellation_the_signal_is_not_awaited() -> None:
    options = VMOptions(implicit_cancellation=False)
    vm = VMCase(7, options).start().input().later(cancel_signal()).vm()
    vm.sys_input()
    assert vm.do_progress(single(vm.sys_sleep(0))) == SUSPENDED
    suspension = Output.of(vm).frames[-1].decode()
    assert list(suspension.awaiting_on.waiting_signals) == []


def test_replaying_a_cancelled_invocation_replays_the_child_cancellation() -> None:
    vm = (
        VMCase()
        .start()
        .input()
        .entry(
            pb.CallCommandMessage(
                service_name="Child",
                handler_name="work",
                invocation_id_notification_idx=1,
                result_completion_id=2,
            )
        )
        .entry(call_id(1, "inv_1child"))
        .entry(cancel_signal())
        .entry(
            pb.SendSignalCommandMessage(target_invocation_id="inv_1child", idx=1, void=pb.Void())
        )
        .entry(pb.RunCommandMessage(result_completion_id=3, name="refund"))
        .entry(pb.RunCompletionNotificationMessage(completion_id=3, value=pb.Value(content=b"")))
        .vm()
    )
    vm.sys_input()
    call = vm.sys_call("Child", "work", b"")
    assert vm.do_progress(single(call.result_handle)) == CANCEL_SIGNAL_RECEIVED
    refund = vm.sys_run("refund")
    assert refund.replayed
    assert vm.do_progress(single(refund.handle)) == ANY_COMPLETED
    assert vm.is_processing
    assert Output.of(vm).types == []
