"""Sleep: a durable timer is a command whose completion is a void notification."""

from __future__ import annotations

import pytest
from tests.unit.vm.harness import Stop, VMCase, await_result

from perdure.protocol.pb import protocol_pb2 as pb
from perdure.sdk.vm import VM, VMError

WAKE_UP = 1_721_123_699_086


def sleep_handler(vm: VM) -> None:
    vm.sys_input()
    handle = vm.sys_sleep(WAKE_UP)
    try:
        assert await_result(vm, handle) is None
    except Stop:
        return
    vm.sys_write_output(b"")
    vm.sys_end()


@pytest.mark.parametrize("version", [5, 6, 7])
def test_a_sleep_that_has_not_fired_suspends_on_its_completion(version: int) -> None:
    out = VMCase(version).start().input(b'"Till"').run(sleep_handler)

    sleep = out.next(pb.SleepCommandMessage)
    assert sleep.result_completion_id == 1
    assert sleep.wake_up_time == WAKE_UP
    suspension = out.next(pb.SuspensionMessage)
    if version >= 7:
        # The cancellation signal is awaited too, so that a cancel wakes the invocation.
        assert list(suspension.awaiting_on.waiting_completions) == [1]
        assert list(suspension.awaiting_on.waiting_signals) == [1]
        assert suspension.awaiting_on.combinator_type == pb.FIRST_COMPLETED
    else:
        assert list(suspension.waiting_completions) == [1]
        assert list(suspension.waiting_signals) == [1]
    out.done()


def test_a_replayed_sleep_with_its_completion_returns_and_the_handler_ends() -> None:
    out = (
        VMCase()
        .start()
        .input(b'"Till"')
        .entry(pb.SleepCommandMessage(wake_up_time=WAKE_UP, result_completion_id=1))
        .entry(pb.SleepCompletionNotificationMessage(completion_id=1, void=pb.Void()))
        .run(sleep_handler)
    )

    assert out.next(pb.OutputCommandMessage).value.content == b""
    out.next(pb.EndMessage)
    out.done()


def test_a_replayed_sleep_still_sleeping_suspends_without_writing_it_again() -> None:
    out = (
        VMCase()
        .start()
        .input(b'"Till"')
        .entry(pb.SleepCommandMessage(wake_up_time=WAKE_UP, result_completion_id=1))
        .run(sleep_handler)
    )

    assert list(out.next(pb.SuspensionMessage).awaiting_on.waiting_completions) == [1]
    out.done()


def test_the_wake_up_time_is_not_part_of_the_match() -> None:
    # The first run computed it from its clock; the replay computes another one.
    out = (
        VMCase()
        .start()
        .input()
        .entry(pb.SleepCommandMessage(wake_up_time=1, result_completion_id=1))
        .entry(pb.SleepCompletionNotificationMessage(completion_id=1, void=pb.Void()))
        .run(sleep_handler)
    )

    out.next(pb.OutputCommandMessage)
    out.next(pb.EndMessage)


def test_a_completion_arriving_after_the_replay_wakes_the_sleep() -> None:
    out = (
        VMCase()
        .start()
        .input()
        .entry(pb.SleepCommandMessage(wake_up_time=WAKE_UP, result_completion_id=1))
        .later(pb.SleepCompletionNotificationMessage(completion_id=1, void=pb.Void()))
        .run(sleep_handler)
    )

    out.next(pb.OutputCommandMessage)
    out.next(pb.EndMessage)
    out.done()


def test_a_named_sleep_must_keep_its_name_on_replay() -> None:
    vm = (
        VMCase()
        .start()
        .input()
        .entry(pb.SleepCommandMessage(wake_up_time=WAKE_UP, result_completion_id=1, name="nap"))
        .entry(pb.SleepCompletionNotificationMessage(completion_id=1, void=pb.Void()))
        .vm()
    )
    vm.sys_input()
    with pytest.raises(VMError) as caught:
        vm.sys_sleep(WAKE_UP, name="other")
    assert caught.value.code == 570
    assert "nap" in str(caught.value) and "other" in str(caught.value)
