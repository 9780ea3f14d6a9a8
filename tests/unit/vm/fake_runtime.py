"""A fake server for VM tests: it stores the journal and answers commands as Restate would.

Every completable command is answered at once (timers fire immediately, calls return what
``call_results`` says), ctx.run proposals are stored and acknowledged (V7: a small ack when
the SDK asks for one; before: the whole RunCompletionNotification), and awakeables or named
signals the handler waits on are completed from ``signals`` when nothing else is pending.
``hold`` lists command types the fake never answers, to make the SDK suspend.

``Session`` drives a VM against it synchronously, for handlers written against the VM.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from google.protobuf.message import Message

from perdure.protocol.framing import decode_frames, encode_message
from perdure.protocol.messages import MessageKind, MessageType, message_type_of
from perdure.protocol.pb import protocol_pb2 as pb
from perdure.sdk.vm import (
    ANY_COMPLETED,
    CANCEL_SIGNAL_RECEIVED,
    VM,
    ExecuteRun,
    Failure,
    FutureTree,
    Suspended,
    WaitExternalProgress,
    handles,
    single,
)
from perdure.sdk.vm.notifications import SignalId, SignalName

T = MessageType


def _default_call_result(call: pb.CallCommandMessage) -> pb.Value | pb.Failure:
    return pb.Value(content=call.parameter)


@dataclass
class FakeRuntime:
    version: int = 7
    state: dict[str, bytes] = field(default_factory=dict)
    promises: dict[str, bytes] = field(default_factory=dict)
    signals: dict[int | str, bytes] = field(default_factory=dict)
    call_results: Callable[[pb.CallCommandMessage], pb.Value | pb.Failure] = _default_call_result
    hold: frozenset[int] = frozenset()
    journal: list[Message] = field(default_factory=list)
    ended_with: Message | None = None
    _pending: list[Message] = field(default_factory=list)
    _children: int = 0

    # -- what the SDK sends ------------------------------------------------------------------

    def receive(self, data: bytes) -> None:
        """Take the SDK's output: journal commands, answer them (into the pending queue)."""
        for frame in decode_frames(data):
            msg = frame.decode()
            if frame.kind is MessageKind.COMMAND:
                self.journal.append(msg)
                if frame.message_type not in self.hold:
                    self._answer(frame.message_type, msg)
            elif frame.message_type == T.PROPOSE_RUN_COMPLETION:
                assert isinstance(msg, pb.ProposeRunCompletionMessage)
                self._store_run(msg, frame.requested_ack)
            elif frame.message_type in (T.END, T.SUSPENSION, T.ERROR):
                self.ended_with = msg

    def load(self, entries: Iterable[Message]) -> None:
        """Know a replayed journal prefix: answer what it left unanswered, except runs."""
        entries = list(entries)
        self.journal.extend(entries)
        answered = {
            getattr(m, "completion_id", None)
            for m in entries
            if not isinstance(m, pb.SignalNotificationMessage)
        }
        for msg in entries:
            kind = _command_type(msg)
            if kind is None or kind == T.RUN_COMMAND:
                continue
            before = len(self._pending)
            self._answer(kind, msg, record=False)
            fresh = [
                n
                for n in self._pending[before:]
                if getattr(n, "completion_id", None) not in answered
            ]
            self._pending[before:] = fresh
            self.journal.extend(fresh)

    # -- what the SDK receives ----------------------------------------------------------------

    def take_answers(self) -> list[Message]:
        answers, self._pending = self._pending, []
        return answers

    def take_signal(self, waiting: Iterable[int | str]) -> Message | None:
        for key in waiting:
            if key in self.signals:
                payload = self.signals.pop(key)
                msg = (
                    pb.SignalNotificationMessage(idx=key, value=pb.Value(content=payload))
                    if isinstance(key, int)
                    else pb.SignalNotificationMessage(name=key, value=pb.Value(content=payload))
                )
                self.journal.append(msg)
                return msg
        return None

    # -- answers ---------------------------------------------------------------------------

    def _notify(self, msg: Message, *, record: bool = True) -> None:
        if record:
            self.journal.append(msg)
        self._pending.append(msg)

    def _answer(self, kind: int, msg: Any, *, record: bool = True) -> None:
        if kind == T.GET_LAZY_STATE_COMMAND:
            value = self.state.get(msg.key.decode())
            answer = pb.GetLazyStateCompletionNotificationMessage(
                completion_id=msg.result_completion_id
            )
            if value is None:
                answer.void.SetInParent()
            else:
                answer.value.content = value
            self._notify(answer, record=record)
        elif kind == T.GET_LAZY_STATE_KEYS_COMMAND:
            keys = pb.StateKeys(keys=[k.encode() for k in sorted(self.state)])
            self._notify(
                pb.GetLazyStateKeysCompletionNotificationMessage(
                    completion_id=msg.result_completion_id, state_keys=keys
                ),
                record=record,
            )
        elif kind == T.SET_STATE_COMMAND:
            self.state[msg.key.decode()] = msg.value.content
        elif kind == T.CLEAR_STATE_COMMAND:
            self.state.pop(msg.key.decode(), None)
        elif kind == T.CLEAR_ALL_STATE_COMMAND:
            self.state.clear()
        elif kind == T.SLEEP_COMMAND:
            self._notify(
                pb.SleepCompletionNotificationMessage(
                    completion_id=msg.result_completion_id, void=pb.Void()
                ),
                record=record,
            )
        elif kind in (T.CALL_COMMAND, T.ONE_WAY_CALL_COMMAND):
            self._notify(
                pb.CallInvocationIdCompletionNotificationMessage(
                    completion_id=msg.invocation_id_notification_idx,
                    invocation_id=f"inv_child{msg.invocation_id_notification_idx}",
                ),
                record=record,
            )
            if kind == T.CALL_COMMAND:
                result = self.call_results(msg)
                answer = pb.CallCompletionNotificationMessage(
                    completion_id=msg.result_completion_id
                )
                if isinstance(result, pb.Failure):
                    answer.failure.CopyFrom(result)
                else:
                    answer.value.CopyFrom(result)
                self._notify(answer, record=record)
        elif kind == T.GET_PROMISE_COMMAND and msg.key in self.promises:
            self._notify(
                pb.GetPromiseCompletionNotificationMessage(
                    completion_id=msg.result_completion_id,
                    value=pb.Value(content=self.promises[msg.key]),
                ),
                record=record,
            )
        elif kind == T.PEEK_PROMISE_COMMAND:
            answer_peek = pb.PeekPromiseCompletionNotificationMessage(
                completion_id=msg.result_completion_id
            )
            if msg.key in self.promises:
                answer_peek.value.content = self.promises[msg.key]
            else:
                answer_peek.void.SetInParent()
            self._notify(answer_peek, record=record)
        elif kind == T.COMPLETE_PROMISE_COMMAND:
            self.promises.setdefault(msg.key, msg.completion_value.content)
            self._notify(
                pb.CompletePromiseCompletionNotificationMessage(
                    completion_id=msg.result_completion_id, void=pb.Void()
                ),
                record=record,
            )

    def _store_run(self, msg: pb.ProposeRunCompletionMessage, requested_ack: bool) -> None:
        stored = pb.RunCompletionNotificationMessage(completion_id=msg.result_completion_id)
        if msg.HasField("failure"):
            stored.failure.CopyFrom(msg.failure)
        else:
            stored.value.content = msg.value
        self.journal.append(stored)
        if requested_ack and self.version >= 7:
            self._pending.append(
                pb.ProposeRunCompletionAckMessage(completion_id=msg.result_completion_id)
            )
        else:
            self._pending.append(stored)


def _command_type(msg: Message) -> int | None:
    t = message_type_of(msg)
    return int(t) if 0x0400 <= t < 0x8000 else None


def commands(journal: Iterable[Message]) -> list[Message]:
    return [m for m in journal if _command_type(m) is not None]


class Stop(Exception):
    """The VM suspended or failed: the handler stops."""


class Cancelled(Exception):
    """The VM reported the cancellation signal."""


@dataclass
class Session:
    """Drives a VM against a FakeRuntime, synchronously."""

    vm: VM
    runtime: FakeRuntime
    runs: dict[int, Callable[[], bytes | Failure]] = field(default_factory=dict)

    def wait(self, tree: FutureTree | int) -> None:
        if isinstance(tree, int):
            tree = single(tree)
        while True:
            progress = self.vm.do_progress(tree)
            if progress is ANY_COMPLETED:
                return
            if progress is CANCEL_SIGNAL_RECEIVED:
                raise Cancelled
            if isinstance(progress, ExecuteRun):
                self.vm.propose_run_completion(progress.handle, self.runs[progress.handle]())
                continue
            if isinstance(progress, Suspended):
                raise Stop
            assert isinstance(progress, WaitExternalProgress)
            self.exchange(tree)

    def exchange(self, tree: FutureTree) -> None:
        """Send the VM's output to the runtime and its answers back; close input if none."""
        self.runtime.receive(self.vm.take_output())
        answers = self.runtime.take_answers()
        if not answers:
            waiting = self._signals_awaited(list(handles(tree)))
            signal = self.runtime.take_signal(waiting)
            if signal is not None:
                answers = [signal]
        if not answers:
            self.vm.notify_input_closed()
        for msg in answers:
            self.vm.notify_input(encode_message(msg))

    def _signals_awaited(self, handle_list: list[int]) -> list[int | str]:
        ids: list[int | str] = []
        for h in handle_list:
            nid = self.vm._results.id_of(h)
            if isinstance(nid, SignalId):
                ids.append(nid.index)
            elif isinstance(nid, SignalName):
                ids.append(nid.name)
        return ids

    def result(self, handle: int, run: Callable[[], bytes | Failure] | None = None) -> Any:
        if run is not None:
            self.runs[handle] = run
        self.wait(handle)
        return self.vm.take_notification(handle)

    def finish(self) -> None:
        self.runtime.receive(self.vm.take_output())
