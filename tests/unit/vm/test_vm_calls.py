"""Calls, one-way sends, attach and get-output: commands, handles, matching on replay."""

from __future__ import annotations

import pytest
from tests.unit.vm.harness import Output, VMCase, await_result

from perdure.protocol.pb import protocol_pb2 as pb
from perdure.sdk.vm import (
    VM,
    Failure,
    IdempotentRequestTarget,
    VMError,
    WorkflowTarget,
)


def started(version: int = 7) -> VM:
    vm = VMCase(version).start().input().vm()
    vm.sys_input()
    return vm


def test_a_call_takes_two_completion_ids_and_journals_its_target() -> None:
    vm = started()
    handles = vm.sys_call(
        "Greeter", "greet", b'"x"', key="k", idempotency_key="idem", headers=[("a", "b")]
    )
    assert handles.invocation_id_handle != handles.result_handle
    call = Output.of(vm).next(pb.CallCommandMessage)
    assert (call.service_name, call.handler_name, call.parameter, call.key) == (
        "Greeter",
        "greet",
        b'"x"',
        "k",
    )
    assert (call.invocation_id_notification_idx, call.result_completion_id) == (1, 2)
    assert call.idempotency_key == "idem"
    assert [(h.key, h.value) for h in call.headers] == [("a", "b")]
    assert not call.HasField("scope")


def test_a_call_result_and_its_invocation_id_arrive_separately() -> None:
    vm = (
        VMCase()
        .start()
        .input()
        .later(pb.CallInvocationIdCompletionNotificationMessage(completion_id=1, invocation_id="i"))
        .later(pb.CallCompletionNotificationMessage(completion_id=2, failure=pb.Failure(code=404)))
        .vm()
    )
    vm.sys_input()
    handles = vm.sys_call("S", "h", b"")
    assert await_result(vm, handles.invocation_id_handle) == "i"
    assert await_result(vm, handles.result_handle) == Failure(404, "")


def test_a_send_at_a_time_and_its_invocation_id() -> None:
    vm = (
        VMCase()
        .start()
        .input()
        .later(pb.CallInvocationIdCompletionNotificationMessage(completion_id=1, invocation_id="i"))
        .vm()
    )
    vm.sys_input()
    handle = vm.sys_send("S", "h", b"{}", invoke_time_ms=1234, key="k")
    assert await_result(vm, handle) == "i"
    send = Output.of(vm).next(pb.OneWayCallCommandMessage)
    assert (send.invoke_time, send.key, send.invocation_id_notification_idx) == (1234, "k", 1)


def test_the_invoke_time_of_a_send_is_not_matched_on_replay() -> None:
    journaled = pb.OneWayCallCommandMessage(
        service_name="S",
        handler_name="h",
        parameter=b"{}",
        invoke_time=1,
        invocation_id_notification_idx=1,
    )
    vm = VMCase().start().input().entry(journaled).vm()
    vm.sys_input()
    vm.sys_send("S", "h", b"{}", invoke_time_ms=999)
    assert vm.is_processing


def test_a_call_with_other_parameters_than_journaled_is_a_mismatch() -> None:
    journaled = pb.CallCommandMessage(
        service_name="S",
        handler_name="h",
        parameter=b"1",
        invocation_id_notification_idx=1,
        result_completion_id=2,
    )
    vm = VMCase().start().input().entry(journaled).vm()
    vm.sys_input()
    with pytest.raises(VMError) as caught:
        vm.sys_call("S", "h", b"2")
    assert caught.value.code == 570
    assert 'parameter: "1"' in caught.value.message and 'parameter: "2"' in caught.value.message


def test_a_call_to_another_handler_than_journaled_is_a_mismatch() -> None:
    journaled = pb.OneWayCallCommandMessage(service_name="S", handler_name="h")
    vm = VMCase().start().input().entry(journaled).vm()
    vm.sys_input()
    with pytest.raises(VMError, match="ONE_WAY_CALL_COMMAND"):
        vm.sys_call("S", "h", b"")


@pytest.mark.parametrize("field", ["idempotency_key", "scope", "limit_key"])
def test_empty_keys_are_refused(field: str) -> None:
    vm = started()
    with pytest.raises(VMError, match="empty"):
        vm.sys_call("S", "h", b"", **{field: ""})  # type: ignore[arg-type]


@pytest.mark.parametrize("field", ["scope", "limit_key"])
def test_scopes_and_limit_keys_need_v7(field: str) -> None:
    vm = started(6)
    with pytest.raises(VMError) as caught:
        vm.sys_send("S", "h", b"", **{field: "x"})  # type: ignore[arg-type]
    assert caught.value.code == 573
    assert Output.of(vm).next(pb.ErrorMessage).code == 573


def test_scope_and_limit_key_are_journaled_at_v7() -> None:
    vm = started(7)
    vm.sys_call("S", "h", b"", scope="tenant", limit_key="user")
    call = Output.of(vm).next(pb.CallCommandMessage)
    assert (call.scope, call.limit_key) == ("tenant", "user")


def test_attach_and_get_output_by_id_workflow_and_idempotency_key() -> None:
    vm = started()
    vm.sys_attach_invocation("inv_1x")
    vm.sys_attach_invocation(WorkflowTarget("Flow", "k"))
    vm.sys_get_invocation_output(IdempotentRequestTarget("S", "h", "idem", service_key="sk"))
    out = Output.of(vm)
    assert out.next(pb.AttachInvocationCommandMessage).invocation_id == "inv_1x"
    workflow = out.next(pb.AttachInvocationCommandMessage).workflow_target
    assert (workflow.workflow_name, workflow.workflow_key) == ("Flow", "k")
    target = out.next(pb.GetInvocationOutputCommandMessage).idempotent_request_target
    assert (target.service_name, target.handler_name, target.idempotency_key) == (
        "S",
        "h",
        "idem",
    )
    assert target.service_key == "sk"


def test_cancel_invocation_is_a_cancel_signal_to_the_target() -> None:
    vm = started()
    vm.sys_cancel_invocation("inv_1x")
    signal = Output.of(vm).next(pb.SendSignalCommandMessage)
    assert (signal.target_invocation_id, signal.idx, signal.HasField("void")) == (
        "inv_1x",
        1,
        True,
    )
