"""ctx.run: journaled as a command, executed when awaited, its result proposed; V7 acks."""

from __future__ import annotations

import pytest
from tests.unit.vm.harness import Output, VMCase

from perdure.protocol.framing import encode_message
from perdure.protocol.pb import protocol_pb2 as pb
from perdure.sdk.vm import (
    ANY_COMPLETED,
    SUSPENDED,
    ExecuteRun,
    Failure,
    GiveUp,
    RetryPolicy,
    VMError,
    WaitExternalProgress,
    single,
)


def test_a_new_run_is_written_executed_when_awaited_and_proposed() -> None:
    vm = VMCase().start().input().vm(close_input=False)
    vm.sys_input()
    run = vm.sys_run("charge")
    assert not run.replayed
    assert vm.do_progress(single(run.handle)) == ExecuteRun(run.handle)
    # While the closure runs, the VM waits for it (and for input).
    assert vm.do_progress(single(run.handle)) == WaitExternalProgress(True, True)
    vm.propose_run_completion(run.handle, b"42")
    assert vm.do_progress(single(run.handle)) == WaitExternalProgress(True, False)

    out = Output.of(vm)
    assert out.next(pb.RunCommandMessage) == pb.RunCommandMessage(
        result_completion_id=1, name="charge"
    )
    frame = out.next_frame()
    assert frame.name == "PROPOSE_RUN_COMPLETION" and frame.requested_ack
    assert frame.decode() == pb.ProposeRunCompletionMessage(result_completion_id=1, value=b"42")
    hint = out.next(pb.AwaitingOnMessage)  # V7: what the SDK waits on, once the run is done
    assert list(hint.awaiting_on.waiting_completions) == [1]


def test_at_v7_the_ack_makes_the_proposed_result_available() -> None:
    vm = VMCase(7).start().input().vm(close_input=False)
    vm.sys_input()
    run = vm.sys_run("charge")
    vm.do_progress(single(run.handle))
    vm.propose_run_completion(run.handle, b"42")
    vm.notify_input(encode_message(pb.ProposeRunCompletionAckMessage(completion_id=1)))
    assert vm.do_progress(single(run.handle)) == ANY_COMPLETED
    assert vm.take_notification(run.handle) == b"42"


@pytest.mark.parametrize("version", [5, 6])
def test_before_v7_the_server_echoes_the_whole_result(version: int) -> None:
    vm = VMCase(version).start().input().vm(close_input=False)
    vm.sys_input()
    run = vm.sys_run("charge")
    vm.do_progress(single(run.handle))
    vm.propose_run_completion(run.handle, b"42")
    frames = Output.of(vm).frames
    assert [(f.name, f.requested_ack) for f in frames] == [
        ("RUN_COMMAND", False),
        ("PROPOSE_RUN_COMPLETION", False),
    ]
    vm.notify_input(
        encode_message(
            pb.RunCompletionNotificationMessage(completion_id=1, value=pb.Value(content=b"42"))
        )
    )
    assert vm.do_progress(single(run.handle)) == ANY_COMPLETED
    assert vm.take_notification(run.handle) == b"42"


def test_an_ack_for_a_proposal_never_made_is_a_protocol_violation() -> None:
    vm = VMCase(7).start().input().vm(close_input=False)
    vm.sys_input()
    vm.notify_input(encode_message(pb.ProposeRunCompletionAckMessage(completion_id=5)))
    with pytest.raises(VMError) as caught:
        vm.sys_run("x")
    assert caught.value.code == 571
    assert Output.of(vm).next(pb.ErrorMessage).code == 571


def test_a_journaled_run_is_replayed_not_executed() -> None:
    vm = (
        VMCase()
        .start()
        .input()
        .entry(pb.RunCommandMessage(result_completion_id=1, name="charge"))
        .entry(pb.RunCompletionNotificationMessage(completion_id=1, value=pb.Value(content=b"7")))
        .vm()
    )
    vm.sys_input()
    run = vm.sys_run("charge")
    assert run.replayed
    assert vm.do_progress(single(run.handle)) == ANY_COMPLETED
    assert vm.take_notification(run.handle) == b"7"


def test_a_journaled_run_without_result_executes_again_once_replay_is_over() -> None:
    vm = (
        VMCase()
        .start()
        .input()
        .entry(pb.RunCommandMessage(result_completion_id=1, name="charge"))
        .vm()
    )
    vm.sys_input()
    run = vm.sys_run("charge")
    assert not run.replayed and vm.is_processing
    assert vm.do_progress(single(run.handle)) == ExecuteRun(run.handle)
    vm.propose_run_completion(run.handle, b"1")
    # The input is closed: the result can only be confirmed by a new attempt.
    assert vm.do_progress(single(run.handle)) == SUSPENDED
    assert Output.of(vm).types == ["PROPOSE_RUN_COMPLETION", "SUSPENSION"]


def test_a_terminal_failure_is_proposed_as_the_result() -> None:
    vm = VMCase(6).start().input().vm(close_input=False)
    vm.sys_input()
    run = vm.sys_run("charge")
    vm.do_progress(single(run.handle))
    vm.propose_run_completion(run.handle, Failure(402, "declined", (("k", "v"),)))
    proposal = Output.of(vm).frames[1].decode()
    assert (proposal.failure.code, proposal.failure.message) == (402, "declined")
    assert [(m.key, m.value) for m in proposal.failure.metadata] == [("k", "v")]


def test_failure_metadata_needs_v6() -> None:
    vm = VMCase(5).start().input().vm(close_input=False)
    vm.sys_input()
    run = vm.sys_run("charge")
    vm.do_progress(single(run.handle))
    with pytest.raises(VMError) as caught:
        vm.propose_run_completion(run.handle, Failure(402, "declined", (("k", "v"),)))
    assert caught.value.code == 573
    assert "v6" in caught.value.message


def test_a_retryable_failure_fails_the_attempt_with_the_next_delay() -> None:
    vm = VMCase().start().input().vm(close_input=False)
    vm.sys_input()
    run = vm.sys_run("charge")
    vm.do_progress(single(run.handle))
    with pytest.raises(VMError):
        vm.propose_run_failure(
            run.handle,
            Failure(500, "ConnectionError: reset"),
            attempt_duration_ms=10,
            policy=RetryPolicy(initial_interval_ms=100, max_attempts=5),
        )
    error = Output.of(vm).frames[-1].decode()
    assert (error.code, error.message, error.next_retry_delay) == (
        500,
        "ConnectionError: reset",
        100,
    )
    assert (error.related_command_index, error.related_command_name) == (1, "charge")


def test_an_unbounded_policy_leaves_the_delay_to_the_server() -> None:
    vm = VMCase().start().input().vm(close_input=False)
    vm.sys_input()
    run = vm.sys_run("charge")
    vm.do_progress(single(run.handle))
    with pytest.raises(VMError):
        vm.propose_run_failure(
            run.handle, Failure(500, "x"), attempt_duration_ms=1, policy=RetryPolicy()
        )
    assert not Output.of(vm).frames[-1].decode().HasField("next_retry_delay")


def test_retries_counted_by_the_server_exhaust_the_policy() -> None:
    vm = (
        VMCase()
        .start(retry_count_since_last_stored_entry=2, duration_since_last_stored_entry=300)
        .input()
        .entry(pb.RunCommandMessage(result_completion_id=1, name="charge"))
        .vm(close_input=False)
    )
    vm.sys_input()
    run = vm.sys_run("charge")
    vm.do_progress(single(run.handle))
    vm.propose_run_failure(
        run.handle,
        Failure(500, "still failing"),
        attempt_duration_ms=5,
        policy=RetryPolicy(max_attempts=3),
    )
    proposal = Output.of(vm).next(pb.ProposeRunCompletionMessage)
    assert proposal.failure.message == "still failing"


def test_max_duration_counts_the_time_the_server_reported() -> None:
    vm = (
        VMCase()
        .start(retry_count_since_last_stored_entry=1, duration_since_last_stored_entry=900)
        .input()
        .entry(pb.RunCommandMessage(result_completion_id=1, name="charge"))
        .vm(close_input=False)
    )
    vm.sys_input()
    run = vm.sys_run("charge")
    vm.do_progress(single(run.handle))
    vm.propose_run_failure(
        run.handle,
        Failure(500, "slow"),
        attempt_duration_ms=200,
        policy=RetryPolicy(max_duration_ms=1000),
    )
    assert Output.of(vm).types == ["PROPOSE_RUN_COMPLETION"]


def test_pausing_when_retries_give_up_needs_v7() -> None:
    policy = RetryPolicy(max_attempts=1, on_max_attempts=GiveUp.PAUSE)
    for version, behavior_ok in ((6, False), (7, True)):
        vm = VMCase(version).start().input().vm(close_input=False)
        vm.sys_input()
        run = vm.sys_run("charge")
        vm.do_progress(single(run.handle))
        with pytest.raises(VMError) as caught:
            vm.propose_run_failure(
                run.handle, Failure(500, "x"), attempt_duration_ms=1, policy=policy
            )
        error = Output.of(vm).frames[-1].decode()
        if behavior_ok:
            assert error.behavior == pb.PAUSE
        else:
            assert caught.value.code == 573


def test_retry_policy_backoff_grows_and_is_capped() -> None:
    policy = RetryPolicy(initial_interval_ms=100, factor=3.0, max_interval_ms=500)
    delays = [policy.next_retry(attempts=n, elapsed_ms=0).delay_ms for n in (1, 2, 3, 4)]
    assert delays == [100, 300, 500, 500]
