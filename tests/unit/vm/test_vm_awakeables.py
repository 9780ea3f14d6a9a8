"""Awakeables and named signals: ids, completion by others, completing others'."""

from __future__ import annotations

import base64

import pytest
from tests.unit.vm.harness import START_ID, Output, VMCase, await_result

from perdure.protocol.ids import AwakeableId
from perdure.protocol.pb import protocol_pb2 as pb
from perdure.sdk.vm import SUSPENDED, Failure, VMError, awakeable_id, single


def test_awakeable_ids_are_the_invocation_id_and_a_signal_index_from_17() -> None:
    vm = VMCase().start().input().vm()
    vm.sys_input()
    first, _ = vm.sys_awakeable()
    second, _ = vm.sys_awakeable()
    assert first.startswith("sign_1")
    raw = base64.urlsafe_b64decode(first[len("sign_1") :] + "==")
    assert raw == START_ID + (17).to_bytes(4, "big")
    assert second == awakeable_id(START_ID, 18)
    # The codec's parser (what the ingress uses to route completions) reads it back.
    assert AwakeableId.parse(first).index == 17
    assert Output.of(vm).types == []  # creating an awakeable journals nothing


def test_an_awakeable_suspends_on_its_signal_and_is_completed_by_it() -> None:
    vm = VMCase().start().input().vm()
    vm.sys_input()
    _, handle = vm.sys_awakeable()
    assert vm.do_progress(single(handle)) == SUSPENDED
    suspension = Output.of(vm).next(pb.SuspensionMessage)
    assert sorted(suspension.awaiting_on.waiting_signals) == [1, 17]

    vm = (
        VMCase()
        .start()
        .input()
        .entry(pb.SignalNotificationMessage(idx=17, value=pb.Value(content=b'"ok"')))
        .vm()
    )
    vm.sys_input()
    _, handle = vm.sys_awakeable()
    assert await_result(vm, handle) == b'"ok"'


def test_a_rejected_awakeable_yields_its_failure() -> None:
    vm = (
        VMCase()
        .start()
        .input()
        .later(pb.SignalNotificationMessage(idx=17, failure=pb.Failure(code=400, message="no")))
        .vm()
    )
    vm.sys_input()
    _, handle = vm.sys_awakeable()
    assert await_result(vm, handle) == Failure(400, "no")


def test_completing_another_invocations_awakeable() -> None:
    vm = VMCase().start().input().vm()
    vm.sys_input()
    vm.sys_complete_awakeable("sign_1abc", b"1")
    vm.sys_complete_awakeable("sign_1def", Failure(500, "failed"))
    out = Output.of(vm)
    ok = out.next(pb.CompleteAwakeableCommandMessage)
    assert (ok.awakeable_id, ok.value.content) == ("sign_1abc", b"1")
    assert out.next(pb.CompleteAwakeableCommandMessage).failure.message == "failed"


def test_named_signals_are_awaited_by_name_and_sent_by_name() -> None:
    vm = (
        VMCase()
        .start()
        .input()
        .later(pb.SignalNotificationMessage(name="go", value=pb.Value(content=b"1")))
        .vm()
    )
    vm.sys_input()
    assert await_result(vm, vm.sys_signal("go")) == b"1"
    vm.sys_complete_signal("inv_1other", "done", b"2")
    signal = Output.of(vm).next(pb.SendSignalCommandMessage)
    assert (signal.target_invocation_id, signal.name, signal.value.content) == (
        "inv_1other",
        "done",
        b"2",
    )


def test_a_named_signal_not_there_yet_suspends_on_its_name() -> None:
    vm = VMCase(7).start().input().vm()
    vm.sys_input()
    assert vm.do_progress(single(vm.sys_signal("go"))) == SUSPENDED
    suspension = Output.of(vm).next(pb.SuspensionMessage)
    assert list(suspension.awaiting_on.waiting_named_signals) == ["go"]


def test_a_replayed_completion_must_name_the_same_awakeable() -> None:
    vm = (
        VMCase()
        .start()
        .input()
        .entry(pb.CompleteAwakeableCommandMessage(awakeable_id="a", value=pb.Value(content=b"1")))
        .vm()
    )
    vm.sys_input()
    with pytest.raises(VMError, match="570"):
        vm.sys_complete_awakeable("b", b"1")
