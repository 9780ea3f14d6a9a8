"""VMCase: feed a VM a StartMessage and a journal, run handler code, read its output back.

Shaped after sdk-shared-core's ``VMTestCase``: a test reads like the protocol.

    out = (VMCase(version=7)
           .start(key="k")
           .input(b'"Till"')
           .entry(pb.SleepCommandMessage(result_completion_id=1))
           .run(lambda vm: ...))
    out.next(pb.SuspensionMessage)
    out.done()
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from google.protobuf.message import Message

from perdure.protocol.framing import decode_frames, encode_message
from perdure.protocol.messages import Frame, MessageType, type_name
from perdure.protocol.pb import protocol_pb2 as pb
from perdure.sdk.vm import (
    ANY_COMPLETED,
    VM,
    ExecuteRun,
    Failure,
    FutureTree,
    Suspended,
    VMOptions,
    WaitExternalProgress,
    single,
)

M = TypeVar("M", bound=Message)

START_ID = b"\x01" * 24
DEBUG_ID = "inv_1test"


def start_message(known_entries: int, **fields: Any) -> pb.StartMessage:
    values: dict[str, Any] = {
        "id": START_ID,
        "debug_id": DEBUG_ID,
        "known_entries": known_entries,
        "partial_state": True,
    }
    values.update(fields)
    return pb.StartMessage(**values)


def input_command(body: bytes = b"", headers: Sequence[tuple[str, str]] = ()) -> Message:
    return pb.InputCommandMessage(
        value=pb.Value(content=body), headers=[pb.Header(key=k, value=v) for k, v in headers]
    )


def value(content: bytes) -> pb.Value:
    return pb.Value(content=content)


def failure(code: int, message: str) -> pb.Failure:
    return pb.Failure(code=code, message=message)


def cancel_signal() -> pb.SignalNotificationMessage:
    return pb.SignalNotificationMessage(idx=1, void=pb.Void())


class Output:
    """The frames a VM wrote, decoded, read front to back."""

    def __init__(self, frames: list[Frame]) -> None:
        self.frames = frames
        self._pos = 0

    @classmethod
    def of(cls, vm: VM) -> Output:
        return cls(decode_frames(vm.take_output()))

    @property
    def types(self) -> list[str]:
        return [f.name for f in self.frames]

    @property
    def messages(self) -> list[Message]:
        return [f.decode() for f in self.frames]

    def next(self, cls: type[M]) -> M:
        assert self._pos < len(self.frames), f"expected a {cls.__name__}, but output ended"
        frame = self.frames[self._pos]
        self._pos += 1
        return frame.decode_as(cls)

    def next_frame(self) -> Frame:
        frame = self.frames[self._pos]
        self._pos += 1
        return frame

    def done(self) -> None:
        rest = [f.name for f in self.frames[self._pos :]]
        assert not rest, f"unexpected output: {rest}"


@dataclass
class VMCase:
    """A StartMessage and journal for a fresh VM, then handler code run against it."""

    version: int = 7
    options: VMOptions | None = None
    _start_fields: dict[str, Any] = field(default_factory=dict)
    _known: int | None = None
    _entries: list[bytes] = field(default_factory=list)
    _late: list[bytes] = field(default_factory=list)

    def start(self, known_entries: int | None = None, **fields: Any) -> VMCase:
        self._known = known_entries
        self._start_fields = fields
        return self

    def input(self, body: bytes = b"", headers: Sequence[tuple[str, str]] = ()) -> VMCase:
        return self.entry(input_command(body, headers))

    def entry(self, msg: Message) -> VMCase:
        """A journal entry the server replays (counted in known_entries)."""
        self._entries.append(encode_message(msg))
        return self

    def entries(self, msgs: Sequence[Message]) -> VMCase:
        for msg in msgs:
            self.entry(msg)
        return self

    def later(self, msg: Message, *, requested_ack: bool = False) -> VMCase:
        """A message the server sends after the replayed journal (not counted)."""
        self._late.append(encode_message(msg, requested_ack=requested_ack))
        return self

    def vm(self, *, close_input: bool = True) -> VM:
        vm = VM(self.version, self.options)
        known = self._known if self._known is not None else len(self._entries)
        vm.notify_input(encode_message(start_message(known, **self._start_fields)))
        for data in self._entries + self._late:
            vm.notify_input(data)
        if close_input:
            vm.notify_input_closed()
        return vm

    def run(self, handler: Callable[[VM], object], *, close_input: bool = True) -> Output:
        vm = self.vm(close_input=close_input)
        assert vm.is_ready_to_execute()
        handler(vm)
        return Output.of(vm)


# --- A tiny synchronous driver, for handlers written against the VM directly -----------------


class Stop(Exception):
    """The VM suspended (or needs input that a test does not give): the handler stops here."""


Runs = dict[int, Callable[[], bytes | Failure]]


def wait(vm: VM, tree: FutureTree | int, runs: Runs | None = None) -> None:
    """Drive ``do_progress`` until ``tree`` can make progress, executing runs synchronously."""
    if isinstance(tree, int):
        tree = single(tree)
    while True:
        progress = vm.do_progress(tree)
        if progress is ANY_COMPLETED:
            return
        if isinstance(progress, ExecuteRun):
            closure = (runs or {})[progress.handle]
            vm.propose_run_completion(progress.handle, closure())
            continue
        if isinstance(progress, Suspended | WaitExternalProgress):
            raise Stop(progress)
        raise AssertionError(f"unexpected progress {progress!r}")


def await_result(vm: VM, handle: int, runs: Runs | None = None) -> Any:
    wait(vm, handle, runs)
    return vm.take_notification(handle)


def message_names(msgs: Sequence[Message]) -> list[str]:
    from perdure.protocol.messages import message_type_of

    return [type_name(message_type_of(m)) for m in msgs]


__all__ = [
    "DEBUG_ID",
    "START_ID",
    "MessageType",
    "Output",
    "Stop",
    "VMCase",
    "await_result",
    "cancel_signal",
    "failure",
    "input_command",
    "message_names",
    "start_message",
    "value",
    "wait",
]
