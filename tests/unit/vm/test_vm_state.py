"""State: eager reads from the StartMessage, lazy reads from the server, writes, replay."""

from __future__ import annotations

import pytest
from tests.unit.vm.harness import Output, VMCase, await_result

from perdure.protocol.pb import protocol_pb2 as pb
from perdure.sdk.vm import SUSPENDED, VM, VMError, single

Entry = pb.StartMessage.StateEntry


def read(vm: VM, key: str) -> object:
    return await_result(vm, vm.sys_state_get(key))


def test_a_known_key_is_answered_eagerly_and_journaled_with_its_value() -> None:
    case = VMCase().start(state_map=[Entry(key=b"a", value=b"1")], partial_state=True).input()
    vm = case.vm()
    vm.sys_input()
    assert read(vm, "a") == b"1"
    out = Output.of(vm)
    get = out.next(pb.GetEagerStateCommandMessage)
    assert (get.key, get.value.content) == (b"a", b"1")
    out.done()


def test_an_unknown_key_of_a_complete_map_is_empty_without_a_round_trip() -> None:
    vm = VMCase().start(partial_state=False).input().vm()
    vm.sys_input()
    assert read(vm, "missing") is None
    get = Output.of(vm).next(pb.GetEagerStateCommandMessage)
    assert get.HasField("void")


def test_an_unknown_key_of_a_partial_map_is_read_lazily_and_suspends_without_answer() -> None:
    vm = VMCase().start(partial_state=True).input().vm()
    vm.sys_input()
    handle = vm.sys_state_get("b")
    assert vm.do_progress(single(handle)) == SUSPENDED
    out = Output.of(vm)
    assert out.next(pb.GetLazyStateCommandMessage).result_completion_id == 1
    assert list(out.next(pb.SuspensionMessage).awaiting_on.waiting_completions) == [1]


def test_a_lazy_read_is_answered_by_its_completion() -> None:
    vm = (
        VMCase()
        .start()
        .input()
        .later(
            pb.GetLazyStateCompletionNotificationMessage(
                completion_id=1, value=pb.Value(content=b"9")
            )
        )
        .vm()
    )
    vm.sys_input()
    assert read(vm, "b") == b"9"


def test_writes_update_what_later_reads_see() -> None:
    vm = VMCase().start(partial_state=True).input().vm()
    vm.sys_input()
    vm.sys_state_set("a", b"1")
    assert read(vm, "a") == b"1"
    vm.sys_state_clear("a")
    assert read(vm, "a") is None
    vm.sys_state_clear_all()
    assert read(vm, "anything") is None
    assert await_result(vm, vm.sys_state_get_keys()) == ()
    out = Output.of(vm)
    assert out.types == [
        "SET_STATE_COMMAND",
        "GET_EAGER_STATE_COMMAND",
        "CLEAR_STATE_COMMAND",
        "GET_EAGER_STATE_COMMAND",
        "CLEAR_ALL_STATE_COMMAND",
        "GET_EAGER_STATE_COMMAND",
        "GET_EAGER_STATE_KEYS_COMMAND",
    ]


def test_keys_of_a_complete_map_leave_out_cleared_keys() -> None:
    state = [Entry(key=b"a", value=b"1"), Entry(key=b"b", value=b"2")]
    vm = VMCase().start(state_map=state, partial_state=False).input().vm()
    vm.sys_input()
    vm.sys_state_clear("a")
    assert await_result(vm, vm.sys_state_get_keys()) == ("b",)


def test_keys_of_a_partial_map_are_asked_for() -> None:
    vm = (
        VMCase()
        .start(partial_state=True)
        .input()
        .later(
            pb.GetLazyStateKeysCompletionNotificationMessage(
                completion_id=1, state_keys=pb.StateKeys(keys=[b"x", b"y"])
            )
        )
        .vm()
    )
    vm.sys_input()
    assert await_result(vm, vm.sys_state_get_keys()) == ("x", "y")
    assert Output.of(vm).types == ["GET_LAZY_STATE_KEYS_COMMAND"]


def test_replay_takes_eager_values_from_the_journal_not_from_the_start_message() -> None:
    vm = (
        VMCase()
        .start(state_map=[Entry(key=b"a", value=b"new")], partial_state=False)
        .input()
        .entry(pb.GetEagerStateCommandMessage(key=b"a", value=pb.Value(content=b"old")))
        .vm()
    )
    vm.sys_input()
    assert read(vm, "a") == b"old"
    assert vm.is_processing
    assert Output.of(vm).types == []


def test_replay_accepts_a_lazy_read_where_the_code_could_read_eagerly() -> None:
    vm = (
        VMCase()
        .start(state_map=[Entry(key=b"a", value=b"1")], partial_state=False)
        .input()
        .entry(pb.GetLazyStateCommandMessage(key=b"a", result_completion_id=1))
        .entry(
            pb.GetLazyStateCompletionNotificationMessage(
                completion_id=1, value=pb.Value(content=b"journaled")
            )
        )
        .vm()
    )
    vm.sys_input()
    assert read(vm, "a") == b"journaled"


@pytest.mark.parametrize(
    "journaled",
    [
        pb.GetEagerStateCommandMessage(key=b"other", void=pb.Void()),
        pb.GetLazyStateCommandMessage(key=b"other", result_completion_id=1),
        pb.SetStateCommandMessage(key=b"a", value=pb.Value(content=b"1")),
    ],
)
def test_reading_another_key_than_the_journal_says_is_a_mismatch(journaled: object) -> None:
    vm = VMCase().start().input().entry(journaled).vm()  # type: ignore[arg-type]
    vm.sys_input()
    with pytest.raises(VMError) as caught:
        vm.sys_state_get("a")
    assert caught.value.code == 570
    assert caught.value.related is not None and caught.value.related.index == 1
    error = Output.of(vm).next(pb.ErrorMessage)
    assert error.code == 570 and error.related_command_index == 1


def test_a_set_with_another_value_is_a_mismatch() -> None:
    vm = (
        VMCase()
        .start()
        .input()
        .entry(pb.SetStateCommandMessage(key=b"a", value=pb.Value(content=b"1")))
        .vm()
    )
    vm.sys_input()
    with pytest.raises(VMError, match="570"):
        vm.sys_state_set("a", b"2")
