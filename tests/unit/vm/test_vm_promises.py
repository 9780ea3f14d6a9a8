"""Workflow promises: get, peek, complete; their notifications and failures."""

from __future__ import annotations

from tests.unit.vm.harness import Output, VMCase, await_result

from perdure.protocol.pb import protocol_pb2 as pb
from perdure.sdk.vm import SUSPENDED, Failure, single


def test_get_peek_and_complete_journal_their_commands() -> None:
    vm = VMCase().start(key="wf").input().vm()
    vm.sys_input()
    vm.sys_get_promise("approval")
    vm.sys_peek_promise("approval")
    vm.sys_complete_promise("approval", b"true")
    vm.sys_complete_promise("other", Failure(400, "denied"))
    out = Output.of(vm)
    assert out.next(pb.GetPromiseCommandMessage) == pb.GetPromiseCommandMessage(
        key="approval", result_completion_id=1
    )
    assert out.next(pb.PeekPromiseCommandMessage).result_completion_id == 2
    done = out.next(pb.CompletePromiseCommandMessage)
    assert (done.completion_value.content, done.result_completion_id) == (b"true", 3)
    rejected = out.next(pb.CompletePromiseCommandMessage)
    assert rejected.completion_failure == pb.Failure(code=400, message="denied")


def test_an_unresolved_promise_suspends_the_workflow() -> None:
    vm = VMCase().start(key="wf").input().vm()
    vm.sys_input()
    handle = vm.sys_get_promise("approval")
    assert vm.do_progress(single(handle)) == SUSPENDED


def test_promise_results_peeks_and_completion_failures() -> None:
    vm = (
        VMCase()
        .start(key="wf")
        .input()
        .later(
            pb.GetPromiseCompletionNotificationMessage(
                completion_id=1, value=pb.Value(content=b"1")
            )
        )
        .later(pb.PeekPromiseCompletionNotificationMessage(completion_id=2, void=pb.Void()))
        .later(
            pb.CompletePromiseCompletionNotificationMessage(
                completion_id=3, failure=pb.Failure(code=409, message="already completed")
            )
        )
        .vm()
    )
    vm.sys_input()
    assert await_result(vm, vm.sys_get_promise("p")) == b"1"
    assert await_result(vm, vm.sys_peek_promise("p")) is None
    assert await_result(vm, vm.sys_complete_promise("p", b"2")) == Failure(409, "already completed")
