"""The sys calls: each journals one command (or matches it on replay) and returns a handle.

Completion ids are allocated in the same order as sdk-shared-core allocates them (a state read
takes one even when it is answered eagerly; a call takes two), so that the ids in a journal
do not depend on which SDK wrote it.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable, Sequence
from typing import Any

from google.protobuf.message import Message

from perdure.protocol.messages import MessageType, message_type_of
from perdure.protocol.pb import protocol_pb2 as pb
from perdure.protocol.versions import has_failure_metadata, has_random_seed
from perdure.sdk.vm import errors
from perdure.sdk.vm.core import TrackedCall, VMCore
from perdure.sdk.vm.errors import RelatedCommand, VMError
from perdure.sdk.vm.journal import describe, matches
from perdure.sdk.vm.machine import Event, Phase
from perdure.sdk.vm.notifications import (
    CANCEL_SIGNAL_INDEX,
    CompletionId,
    Failure,
    Result,
    SignalId,
    SignalName,
)
from perdure.sdk.vm.types import (
    CallHandles,
    IdempotentRequestTarget,
    Input,
    InvocationTarget,
    RunHandle,
    WorkflowTarget,
)

__all__ = ["SysCalls", "awakeable_id"]

T = MessageType
_AWAKEABLE_PREFIX = "sign_1"


def awakeable_id(raw_invocation_id: bytes, signal_index: int) -> str:
    """``sign_1`` + URL-safe base64 (unpadded) of the invocation id and the u32 BE index.

    The protocol document says ``prom_1``; Restate's server and SDKs use ``sign_1`` for
    awakeables addressed by signal index (``prom_1`` names the older entry-index kind).

    >>> awakeable_id(b"abc", 17)
    'sign_1YWJjAAAAEQ'
    """
    raw = raw_invocation_id + signal_index.to_bytes(4, "big")
    return _AWAKEABLE_PREFIX + base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def random_seed_for(raw_invocation_id: bytes) -> int:
    """The seed used when the server sends none (before V6): SHA-256 of the id, first 8 bytes.

    Matches sdk-shared-core's ``sha2_random_seed`` feature, which the official Python SDK
    enables, so both SDKs draw the same numbers for the same invocation.
    """
    return int.from_bytes(hashlib.sha256(raw_invocation_id).digest()[:8], "big")


class SysCalls(VMCore):
    """Commands, one method each; see the service protocol for what each one means."""

    # -- input and output ------------------------------------------------------------------

    def sys_input(self) -> Input:
        """The invocation's input: the first command of every journal."""
        self._advance(Event.COMMAND_ISSUED, "reading the input")
        if self._phase is not Phase.REPLAYING or self._journal.replay_remaining == 0:
            self._fail(errors.unexpected_operation("reading the input twice", self._phase.value))
        self._journal.record(T.INPUT_COMMAND)
        msg = self._journal.pop_replayed_any(pb.InputCommandMessage(), (T.INPUT_COMMAND,))
        self._after_replayed_command()
        assert isinstance(msg, pb.InputCommandMessage) and self._start is not None
        start = self._start
        v7 = self.version >= 7
        return Input(
            invocation_id=start.debug_id,
            raw_id=start.id,
            key=start.key,
            headers=tuple((h.key, h.value) for h in msg.headers),
            body=msg.value.content,
            random_seed=(
                start.random_seed if has_random_seed(self.version) else random_seed_for(start.id)
            ),
            scope=start.scope if v7 and start.HasField("scope") else None,
            limit_key=start.limit_key if v7 and start.HasField("limit_key") else None,
            idempotency_key=(
                start.idempotency_key if v7 and start.HasField("idempotency_key") else None
            ),
        )

    def sys_write_output(self, value: bytes | Failure) -> None:
        """The invocation's result (a value or a terminal failure). Follow with ``sys_end``."""
        msg = pb.OutputCommandMessage()
        if isinstance(value, Failure):
            self._check_failure(value)
            msg.failure.CopyFrom(value.to_pb())
        else:
            msg.value.content = value
        self._issue(msg, "writing the output")

    # -- state -----------------------------------------------------------------------------

    def sys_state_get(self, key: str) -> int:
        """Read a state key: answered at once from the eager state when it is known."""
        completion_id = self._journal.next_completion_id()
        lazy = pb.GetLazyStateCommandMessage(key=key.encode(), result_completion_id=completion_id)
        if self._advance_issue("reading state") is Phase.PROCESSING:
            known, value = self._eager.get(key)
            if not known:
                return self._write_completable(lazy, completion_id)
            eager = pb.GetEagerStateCommandMessage(key=key.encode())
            if value is None:
                eager.void.SetInParent()
            else:
                eager.value.content = value
            return self._write_eager(eager, completion_id, value)
        eager_form = pb.GetEagerStateCommandMessage(key=key.encode())
        return self._replay_read(lazy, eager_form, completion_id, _eager_state_result)

    def sys_state_get_keys(self) -> int:
        """List the state keys: answered at once when the eager state is complete."""
        completion_id = self._journal.next_completion_id()
        lazy = pb.GetLazyStateKeysCommandMessage(result_completion_id=completion_id)
        if self._advance_issue("listing state keys") is Phase.PROCESSING:
            keys = self._eager.keys()
            if keys is None:
                return self._write_completable(lazy, completion_id)
            eager = pb.GetEagerStateKeysCommandMessage()
            eager.value.keys.extend(k.encode() for k in keys)
            return self._write_eager(eager, completion_id, keys)
        eager_form = pb.GetEagerStateKeysCommandMessage()
        return self._replay_read(lazy, eager_form, completion_id, _eager_keys_result)

    def sys_state_set(self, key: str, value: bytes) -> None:
        self._eager.set(key, value)
        self._issue(pb.SetStateCommandMessage(key=key.encode(), value=pb.Value(content=value)))

    def sys_state_clear(self, key: str) -> None:
        self._eager.clear(key)
        self._issue(pb.ClearStateCommandMessage(key=key.encode()))

    def sys_state_clear_all(self) -> None:
        self._eager.clear_all()
        self._issue(pb.ClearAllStateCommandMessage())

    # -- timers, calls, sends ----------------------------------------------------------------

    def sys_sleep(self, wake_up_time_ms: int, name: str = "") -> int:
        """A durable timer firing at ``wake_up_time_ms`` (milliseconds since the Unix epoch)."""
        completion_id = self._journal.next_completion_id()
        return self._completable(
            pb.SleepCommandMessage(
                wake_up_time=max(wake_up_time_ms, 0),
                result_completion_id=completion_id,
                name=name,
            ),
            completion_id,
        )

    def sys_call(
        self,
        service: str,
        handler: str,
        parameter: bytes,
        *,
        key: str | None = None,
        idempotency_key: str | None = None,
        headers: Sequence[tuple[str, str]] = (),
        name: str = "",
        scope: str | None = None,
        limit_key: str | None = None,
    ) -> CallHandles:
        """Call a handler and (later) get its result."""
        self._check_target(idempotency_key, scope, limit_key)
        id_completion = self._journal.next_completion_id()
        result_completion = self._journal.next_completion_id()
        msg = pb.CallCommandMessage(
            service_name=service,
            handler_name=handler,
            parameter=parameter,
            headers=[pb.Header(key=k, value=v) for k, v in headers],
            key=key or "",
            invocation_id_notification_idx=id_completion,
            result_completion_id=result_completion,
            name=name,
        )
        _set_optional(msg, idempotency_key=idempotency_key, scope=scope, limit_key=limit_key)
        self._issue(msg)
        id_handle = self._results.new_handle(CompletionId(id_completion))
        result_handle = self._results.new_handle(CompletionId(result_completion))
        if self.options.cancel_child_calls:
            self._tracked_calls.append(TrackedCall(id_handle))
        return CallHandles(id_handle, result_handle)

    def sys_send(
        self,
        service: str,
        handler: str,
        parameter: bytes,
        *,
        key: str | None = None,
        invoke_time_ms: int = 0,
        idempotency_key: str | None = None,
        headers: Sequence[tuple[str, str]] = (),
        name: str = "",
        scope: str | None = None,
        limit_key: str | None = None,
    ) -> int:
        """Send a one-way call, at ``invoke_time_ms`` if given; returns the invocation-id handle."""
        self._check_target(idempotency_key, scope, limit_key)
        id_completion = self._journal.next_completion_id()
        msg = pb.OneWayCallCommandMessage(
            service_name=service,
            handler_name=handler,
            parameter=parameter,
            invoke_time=max(invoke_time_ms, 0),
            headers=[pb.Header(key=k, value=v) for k, v in headers],
            key=key or "",
            invocation_id_notification_idx=id_completion,
            name=name,
        )
        _set_optional(msg, idempotency_key=idempotency_key, scope=scope, limit_key=limit_key)
        handle = self._completable(msg, id_completion)
        if self.options.cancel_child_sends:
            self._tracked_calls.append(TrackedCall(handle))
        return handle

    def sys_cancel_invocation(self, invocation_id: str) -> None:
        """Cancel another invocation (the CANCEL built-in signal)."""
        msg = pb.SendSignalCommandMessage(
            target_invocation_id=invocation_id, idx=CANCEL_SIGNAL_INDEX
        )
        msg.void.SetInParent()
        self._issue(msg, "cancelling an invocation")

    def sys_attach_invocation(self, target: InvocationTarget) -> int:
        """Wait for another invocation's result."""
        completion_id = self._journal.next_completion_id()
        msg = pb.AttachInvocationCommandMessage(result_completion_id=completion_id)
        self._set_target(msg, target)
        return self._completable(msg, completion_id)

    def sys_get_invocation_output(self, target: InvocationTarget) -> int:
        """Another invocation's result if it has one already (void otherwise)."""
        completion_id = self._journal.next_completion_id()
        msg = pb.GetInvocationOutputCommandMessage(result_completion_id=completion_id)
        self._set_target(msg, target)
        return self._completable(msg, completion_id)

    # -- awakeables and signals --------------------------------------------------------------

    def sys_awakeable(self) -> tuple[str, int]:
        """A new awakeable: its id (to hand to whoever completes it) and its handle."""
        self._advance(Event.HANDLE_CREATED, "creating an awakeable")
        index = self._journal.next_signal_index()
        assert self._start is not None
        handle = self._results.new_handle(SignalId(index))
        return awakeable_id(self._start.id, index), handle

    def sys_complete_awakeable(self, awakeable: str, value: bytes | Failure) -> None:
        msg = pb.CompleteAwakeableCommandMessage(awakeable_id=awakeable)
        if isinstance(value, Failure):
            self._check_failure(value)
            msg.failure.CopyFrom(value.to_pb())
        else:
            msg.value.content = value
        self._issue(msg, "completing an awakeable")

    def sys_signal(self, name: str) -> int:
        """A handle on the named signal ``name`` of this invocation."""
        self._advance(Event.HANDLE_CREATED, "awaiting a named signal")
        return self._results.new_handle(SignalName(name))

    def sys_complete_signal(self, invocation_id: str, name: str, value: bytes | Failure) -> None:
        """Send the named signal ``name`` to another invocation."""
        msg = pb.SendSignalCommandMessage(target_invocation_id=invocation_id, name=name)
        if isinstance(value, Failure):
            self._check_failure(value)
            msg.failure.CopyFrom(value.to_pb())
        else:
            msg.value.content = value
        self._issue(msg, "sending a signal")

    # -- workflow promises -------------------------------------------------------------------

    def sys_get_promise(self, key: str) -> int:
        completion_id = self._journal.next_completion_id()
        return self._completable(
            pb.GetPromiseCommandMessage(key=key, result_completion_id=completion_id), completion_id
        )

    def sys_peek_promise(self, key: str) -> int:
        completion_id = self._journal.next_completion_id()
        return self._completable(
            pb.PeekPromiseCommandMessage(key=key, result_completion_id=completion_id), completion_id
        )

    def sys_complete_promise(self, key: str, value: bytes | Failure) -> int:
        completion_id = self._journal.next_completion_id()
        msg = pb.CompletePromiseCommandMessage(key=key, result_completion_id=completion_id)
        if isinstance(value, Failure):
            self._check_failure(value)
            msg.completion_failure.CopyFrom(value.to_pb())
        else:
            msg.completion_value.content = value
        return self._completable(msg, completion_id)

    # -- ctx.run -------------------------------------------------------------------------------

    def sys_run(self, name: str = "") -> RunHandle:
        """Journal a ctx.run; ``replayed`` says its result is known and it must not execute."""
        completion_id = self._journal.next_completion_id()
        handle = self._completable(
            pb.RunCommandMessage(result_completion_id=completion_id, name=name), completion_id
        )
        # Found anywhere in what arrived (replayed prefix, or later), the closure already ran.
        if self._results.knows(CompletionId(completion_id)):
            return RunHandle(handle, replayed=True)
        self._runs.add(handle, self._journal.command_index, name)
        return RunHandle(handle, replayed=False)

    # -- helpers -------------------------------------------------------------------------------

    def _advance_issue(self, operation: str) -> Phase:
        self._advance(Event.COMMAND_ISSUED, operation)
        return self._phase

    def _completable(self, msg: Message, completion_id: int) -> int:
        self._issue(msg)
        return self._results.new_handle(CompletionId(completion_id))

    def _write_completable(self, msg: Message, completion_id: int) -> int:
        self._journal.record(_type_of(msg))
        self._processing_first_entry = False
        self._write(msg)
        return self._results.new_handle(CompletionId(completion_id))

    def _write_eager(self, msg: Message, completion_id: int, result: Result) -> int:
        handle = self._write_completable(msg, completion_id)
        self._results.insert_ready(CompletionId(completion_id), result)
        return handle

    def _replay_read(
        self,
        lazy: Message,
        eager_form: Message,
        completion_id: int,
        eager_result: Callable[[Any], Result],
    ) -> int:
        """Replays a read that may have been journaled lazily or eagerly."""
        related = self._journal.record(_type_of(lazy))
        accepted = (_type_of(lazy), _type_of(eager_form))
        try:
            actual = self._journal.pop_replayed_any(lazy, accepted)
            self._journal.last = RelatedCommand(related.index, _type_of(actual))
            journal_form = lazy if type(actual) is type(lazy) else eager_form
            if not matches(actual, journal_form):
                raise errors.command_mismatch(related.index, describe(actual), describe(lazy))
        except VMError as exc:
            self._fail(exc.with_related(related))
        handle = self._results.new_handle(CompletionId(completion_id))
        if type(actual) is type(eager_form):
            self._results.insert_ready(CompletionId(completion_id), eager_result(actual))
        self._after_replayed_command()
        return handle

    def _check_failure(self, failure: Failure) -> None:
        if failure.metadata and not has_failure_metadata(self.version):
            self._require_version("terminal error metadata", 6)

    def _check_target(
        self, idempotency_key: str | None, scope: str | None, limit_key: str | None
    ) -> None:
        for what, value in (
            ("idempotency key", idempotency_key),
            ("scope", scope),
            ("limit key", limit_key),
        ):
            if value is not None and not value:
                self._fail(errors.invalid_argument(f"an empty {what}; pass None for none"))
        if scope is not None:
            self._require_version("call scopes", 7)
        if limit_key is not None:
            self._require_version("call limit keys", 7)

    def _set_target(
        self,
        msg: pb.AttachInvocationCommandMessage | pb.GetInvocationOutputCommandMessage,
        target: InvocationTarget,
    ) -> None:
        if isinstance(target, str):
            msg.invocation_id = target
            return
        if target.scope is not None:
            if not target.scope:
                self._fail(errors.invalid_argument("an empty scope; pass None for none"))
            self._require_version("call scopes", 7)
        if isinstance(target, WorkflowTarget):
            msg.workflow_target.workflow_name = target.workflow_name
            msg.workflow_target.workflow_key = target.workflow_key
            if target.scope is not None:
                msg.workflow_target.scope = target.scope
        elif isinstance(target, IdempotentRequestTarget):
            t = msg.idempotent_request_target
            t.service_name = target.service_name
            t.handler_name = target.handler_name
            t.idempotency_key = target.idempotency_key
            if target.service_key is not None:
                t.service_key = target.service_key
            if target.scope is not None:
                t.scope = target.scope


def _type_of(msg: Message) -> MessageType:
    return message_type_of(msg)


def _set_optional(msg: Message, **fields: str | None) -> None:
    for name, value in fields.items():
        if value is not None:
            setattr(msg, name, value)


def _eager_state_result(msg: pb.GetEagerStateCommandMessage) -> Result:
    return msg.value.content if msg.HasField("value") else None


def _eager_keys_result(msg: pb.GetEagerStateKeysCommandMessage) -> Result:
    return tuple(k.decode("utf-8", "replace") for k in msg.value.keys)
