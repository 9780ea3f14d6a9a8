"""The replay VM: one invocation attempt of the service protocol, as a sans-I/O state machine.

Bytes in (``notify_input``), bytes out (``take_output``). Between them user code, through the
SDK, issues *sys calls* that journal commands and return integer handles, asks
``do_progress(tree)`` what to do about an await point, and ``take_notification(handle)`` to
collect a result. No asyncio, clock or randomness lives here: the caller brings the time (wake
up times are absolute) and runs the ctx.run closures; the VM only decides.

Example, a handler that sleeps, on a journal that already recorded the sleep's completion::

    vm = VM(7)
    vm.notify_input(start_and_journal_bytes)
    vm.notify_input_closed()
    vm.sys_input()
    handle = vm.sys_sleep(wake_up_time_ms=1_700_000_000_000)
    assert vm.do_progress(single(handle)) == ANY_COMPLETED
    vm.take_notification(handle)        # None: a sleep completes without a value
    vm.sys_write_output(b'"done"'); vm.sys_end()
    vm.take_output()                    # OutputCommand + End frames
"""

from __future__ import annotations

from perdure.protocol.messages import suspension_message
from perdure.protocol.pb import protocol_pb2 as pb
from perdure.protocol.versions import has_awaiting_on_message, has_propose_run_ack
from perdure.sdk.vm import errors
from perdure.sdk.vm.errors import RelatedCommand, VMError
from perdure.sdk.vm.futures import (
    Combinator,
    Combined,
    FutureTree,
    Single,
    all_completed,
    all_succeeded,
    first_completed,
    first_succeeded,
    handles,
    single,
    to_pb,
    try_resolve,
    unknown,
)
from perdure.sdk.vm.journal import related_run
from perdure.sdk.vm.machine import Event, Phase
from perdure.sdk.vm.notifications import (
    CANCEL_HANDLE,
    CANCEL_SIGNAL_INDEX,
    NOT_READY,
    CompletionId,
    Failure,
    NotReady,
    Result,
    SignalId,
    SignalName,
)
from perdure.sdk.vm.runs import GiveUp, RetryPolicy
from perdure.sdk.vm.syscalls import SysCalls, awakeable_id
from perdure.sdk.vm.types import (
    ANY_COMPLETED,
    CANCEL_SIGNAL_RECEIVED,
    SUSPENDED,
    AnyCompleted,
    AwaitingOnPolicy,
    CallHandles,
    CancelSignalReceived,
    ExecuteRun,
    IdempotentRequestTarget,
    Input,
    InvocationTarget,
    Progress,
    RunHandle,
    Suspended,
    VMOptions,
    WaitExternalProgress,
    WorkflowTarget,
)

__all__ = [
    "ANY_COMPLETED",
    "CANCEL_HANDLE",
    "CANCEL_SIGNAL_RECEIVED",
    "NOT_READY",
    "SUSPENDED",
    "VM",
    "AnyCompleted",
    "AwaitingOnPolicy",
    "CallHandles",
    "CancelSignalReceived",
    "Combinator",
    "Combined",
    "ExecuteRun",
    "Failure",
    "FutureTree",
    "GiveUp",
    "IdempotentRequestTarget",
    "Input",
    "InvocationTarget",
    "NotReady",
    "Phase",
    "Progress",
    "RelatedCommand",
    "Result",
    "RetryPolicy",
    "RunHandle",
    "Single",
    "Suspended",
    "VMError",
    "VMOptions",
    "WaitExternalProgress",
    "WorkflowTarget",
    "all_completed",
    "all_succeeded",
    "awakeable_id",
    "first_completed",
    "first_succeeded",
    "handles",
    "single",
    "unknown",
]


class VM(SysCalls):
    """One attempt of one invocation. Create one per request stream; never reuse it.

    Every method raises VMError once the attempt has failed (the error is sticky, and the
    ErrorMessage describing it is already in the output). ``notify_input`` and
    ``notify_input_closed`` never raise: a bad stream fails the VM, and the next sys call or
    ``do_progress`` reports it.
    """

    # -- await points ------------------------------------------------------------------------

    def do_progress(self, tree: FutureTree) -> Progress:
        """What the SDK should do about user code awaiting ``tree``.

        With implicit cancellation (the default) every await also waits for the cancellation
        signal: when it arrives, the calls this invocation made are cancelled, the signal is
        consumed, and ``CANCEL_SIGNAL_RECEIVED`` is returned once; later awaits proceed
        normally, so that compensations can still run.
        """
        self._advance(Event.AWAITED, "awaiting")
        self._check_handles(tree)
        if not self.options.implicit_cancellation or self._cancel_consumed:
            return self._progress(tree)
        progress = self._progress(first_completed(tree, single(CANCEL_HANDLE)))
        if progress is ANY_COMPLETED and self._results.is_completed(CANCEL_HANDLE):
            return self._on_cancelled()
        return progress

    def is_completed(self, handle: int) -> bool:
        """Whether ``handle`` has a result to take (or had one, already taken)."""
        return self._results.is_completed(handle)

    def take_notification(self, handle: int) -> Result | NotReady:
        """The result of ``handle`` if ready (None is a void result), else ``NOT_READY``.

        Taking is destructive: the result is handed out once.
        """
        self._advance(Event.AWAITED, "taking a result")
        result = self._results.take(handle)
        if isinstance(result, str):
            for tracked in self._tracked_calls:
                if tracked.handle == handle:
                    tracked.invocation_id = result
        return result

    def _progress(self, tree: FutureTree) -> Progress:
        while True:
            rest = try_resolve(tree, self._results.outcome)
            if rest is None:
                return ANY_COMPLETED
            if not self._results.pop_queue():
                break
        if self._phase is Phase.REPLAYING:
            # Commands remain to replay, so the first run got past this await: the notification
            # it needed must be in the journal. It is not, hence the code changed.
            self._fail(errors.await_not_replayable(self._describe_awaiting(rest)))
        pending = list(handles(rest))
        run = self._runs.start_one(pending)
        if run is not None:
            return ExecuteRun(run)
        running = self._runs.any_executing(pending)
        if self._input_closed:
            if running:
                return WaitExternalProgress(waiting_input=False, waiting_run=True)
            self._suspend(rest)
            return SUSPENDED
        self._send_awaiting_on(rest)
        return WaitExternalProgress(waiting_input=True, waiting_run=running)

    def _on_cancelled(self) -> Progress:
        # Learn the invocation ids of the calls to cancel first; they may still be in flight.
        for tracked in self._tracked_calls:
            if tracked.invocation_id is None:
                progress = self._progress(single(tracked.handle))
                if progress is not ANY_COMPLETED:
                    return progress
                known = self._results.peek(tracked.handle)
                tracked.invocation_id = known if isinstance(known, str) else ""
        calls, self._tracked_calls = self._tracked_calls, []
        for tracked in calls:
            if tracked.invocation_id:
                self.sys_cancel_invocation(tracked.invocation_id)
        self._results.take(CANCEL_HANDLE)
        self._cancel_consumed = True
        return CANCEL_SIGNAL_RECEIVED

    def _suspend(self, rest: FutureTree) -> None:
        awaiting = to_pb(rest, self._results.id_of)
        self._write(suspension_message(awaiting, self.version))
        self._advance(Event.SUSPENDED)
        self._close_output()

    def _send_awaiting_on(self, rest: FutureTree) -> None:
        policy = self.options.awaiting_on
        if not has_awaiting_on_message(self.version) or policy is AwaitingOnPolicy.NEVER:
            return
        executing = self._runs.any_executing()
        if executing and policy is AwaitingOnPolicy.UNLESS_RUNNING:
            return
        awaiting = to_pb(rest, self._results.id_of)
        # A hint, not a command: say it once per await point rather than on every wake-up.
        if awaiting == self._last_awaiting_on:
            return
        self._last_awaiting_on = awaiting
        self._write(pb.AwaitingOnMessage(awaiting_on=awaiting, executing_side_effects=executing))

    def _check_handles(self, tree: FutureTree) -> None:
        for handle in handles(tree):
            if self._results.id_of(handle) is None and not self._results.is_completed(handle):
                self._fail(errors.invalid_argument(f"await on unknown handle {handle}"))

    def _describe_awaiting(self, tree: FutureTree) -> str:
        described = [self._describe_handle(h) for h in handles(tree)]
        return " or ".join(described) if described else "nothing"

    def _describe_handle(self, handle: int) -> str:
        run = self._runs.info(handle)
        if run is not None:
            return f"ctx.run {run[1]!r} (command #{run[0]})"
        nid = self._results.id_of(handle)
        if isinstance(nid, SignalId):
            if nid.index == CANCEL_SIGNAL_INDEX:
                return "the cancellation signal"
            assert self._start is not None
            return f"awakeable {awakeable_id(self._start.id, nid.index)}"
        if isinstance(nid, SignalName):
            return f"signal {nid.name!r}"
        if isinstance(nid, CompletionId):
            return f"completion {nid.id}"
        return f"handle {handle}"

    # -- ctx.run results ---------------------------------------------------------------------

    def propose_run_completion(self, handle: int, value: bytes | Failure) -> None:
        """The closure of ``handle`` returned ``value`` (or failed terminally): journal it.

        Ignored once the attempt ended (the closure outlived a suspension).
        """
        if self._error is not None:
            raise self._error
        if self._phase is not Phase.PROCESSING:
            return
        if isinstance(value, Failure):
            self._check_failure(value)
        self._runs.finish(handle)
        completion_id = self._run_completion_id(handle)
        msg = pb.ProposeRunCompletionMessage(result_completion_id=completion_id)
        if isinstance(value, Failure):
            msg.failure.CopyFrom(value.to_pb())
        else:
            msg.value = value
        if has_propose_run_ack(self.version):
            # V7+: ask for the small ack, and remember the result until it comes; before V7 the
            # server answers with the whole RunCompletionNotification instead.
            self._results.cache_run_proposal(completion_id, value)
            self._write(msg, requested_ack=True)
        else:
            self._write(msg)

    def propose_run_failure(
        self,
        handle: int,
        failure: Failure,
        *,
        attempt_duration_ms: int,
        policy: RetryPolicy,
        retry_after_ms: int | None = None,
        stacktrace: str = "",
    ) -> None:
        """The closure of ``handle`` failed with a retryable error; apply ``policy``.

        Either the attempt fails with an ErrorMessage naming the run and the retry delay (the
        server retries the invocation), or, when the policy gives up, the failure is journaled
        as the run's terminal result.
        """
        if self._error is not None:
            raise self._error
        if self._phase is not Phase.PROCESSING:
            return
        info = self._runs.info(handle)
        index, name = info if info is not None else (self._journal.command_index, "")
        attempts, elapsed = 0, 0
        if self._processing_first_entry and self._start is not None:
            # The run was replayed, not written now: the server counted the earlier failures.
            attempts = self._start.retry_count_since_last_stored_entry
            if attempts:
                elapsed = self._start.duration_since_last_stored_entry
        decision = policy.next_retry(
            attempts=attempts + 1, elapsed_ms=elapsed + max(attempt_duration_ms, 0)
        )
        if decision.give_up is GiveUp.FAIL:
            self.propose_run_completion(handle, failure)
            return
        behavior = pb.RETRY
        delay = retry_after_ms if retry_after_ms is not None else decision.delay_ms
        if decision.give_up is GiveUp.PAUSE:
            self._require_version("pausing an invocation when ctx.run gives up", 7)
            behavior, delay = pb.PAUSE, None
        self._runs.finish(handle)
        self._fail(
            VMError(
                failure.code,
                failure.message,
                related=related_run(index, name),
                stacktrace=stacktrace,
                next_retry_delay_ms=delay,
                behavior=behavior,
            )
        )

    def _run_completion_id(self, handle: int) -> int:
        nid = self._results.id_of(handle)
        if not isinstance(nid, CompletionId):
            self._fail(errors.invalid_argument(f"handle {handle} is not a ctx.run"))
        return nid.id

    # -- the end -------------------------------------------------------------------------------

    def sys_end(self) -> None:
        """End the invocation: writes EndMessage and closes the output (after the output)."""
        if self._error is not None:
            raise self._error
        if self._phase is Phase.REPLAYING:
            self._fail(
                errors.journal_too_long(
                    self._journal.command_index + 1, self._journal.describe_next_replayed()
                )
            )
        was_processing = self._phase is Phase.PROCESSING
        self._advance(Event.ENDED, "ending the invocation")
        if was_processing:
            self._write(pb.EndMessage())
            self._close_output()
