"""An in-memory server for invocation-loop tests: it replays a journal to run_invocation and
answers its commands through the VM tests' FakeRuntime."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

from google.protobuf.message import Message
from tests.unit.vm.fake_runtime import FakeRuntime
from tests.unit.vm.harness import start_message

from perdure.protocol.framing import decode_frames, encode_message
from perdure.protocol.messages import Frame, MessageType
from perdure.protocol.pb import protocol_pb2 as pb
from perdure.sdk.invocation import HandlerSpec, run_invocation

T = MessageType


def spec(
    fn: Callable[..., Awaitable[Any]],
    service_type: str = "SERVICE",
    handler_type: str | None = None,
) -> HandlerSpec:
    return HandlerSpec(
        service_name="Svc",
        handler_name=fn.__name__,
        service_type=service_type,
        handler_type=handler_type,
        fn=fn,
        decode_input=lambda b: json.loads(b) if b else None,
        encode_output=lambda v: b"" if v is None else json.dumps(v).encode(),
    )


class Server:
    """Plays the server's side of one attempt: the journal to replay, then live answers."""

    def __init__(
        self,
        runtime: FakeRuntime | None = None,
        *,
        version: int = 7,
        request_response: bool = False,
        **start: Any,
    ) -> None:
        self.runtime = runtime or FakeRuntime(version=version)
        self.runtime.version = version
        self.version = version
        self.request_response = request_response
        self.start = start
        self.inbox: asyncio.Queue[bytes | None] = asyncio.Queue()
        self.frames: list[Frame] = []
        self._closed = False

    async def receive(self) -> bytes | None:
        return await self.inbox.get()

    async def send(self, data: bytes) -> None:
        self.frames.extend(decode_frames(data))
        self.runtime.receive(data)
        if self.request_response:
            return
        for answer in self.runtime.take_answers():
            self.inbox.put_nowait(encode_message(answer))
        if self.runtime.ended_with is not None:
            self.close()

    def deliver(self, msg: Message) -> None:
        self.inbox.put_nowait(encode_message(msg))

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self.inbox.put_nowait(None)

    async def invoke(
        self,
        handler: HandlerSpec,
        body: Any = None,
        journal: list[Message] = (),  # type: ignore[assignment]
    ) -> list[Frame]:
        """Invoke ``handler`` with ``body``, replaying ``journal`` after the input command."""
        entries = [pb.InputCommandMessage(value=pb.Value(content=_json(body))), *journal]
        return await self.resume(handler, entries)

    async def resume(self, handler: HandlerSpec, entries: list[Message]) -> list[Frame]:
        """Run an attempt that replays ``entries`` (a whole journal prefix, input first)."""
        self.runtime.load(entries)
        self.inbox.put_nowait(
            encode_message(start_message(len(entries), **self.start))
            + b"".join(encode_message(m) for m in entries)
        )
        if not self.request_response:
            # What the server already knows about the replayed commands follows the journal.
            for answer in self.runtime.take_answers():
                self.inbox.put_nowait(encode_message(answer))
        else:
            self.close()
        await asyncio.wait_for(
            run_invocation(
                handler,
                protocol_version=self.version,
                receive=self.receive,
                send=self.send,
                request_response=self.request_response,
                headers=[("x-attempt", "1")],
            ),
            timeout=10,
        )
        return self.frames

    def names(self, *, hints: bool = False) -> list[str]:
        """The frame types the SDK sent; AwaitingOn hints only when asked for."""
        return [f.name for f in self.frames if hints or f.name != "AWAITING_ON"]

    def last(self, cls: type[Any]) -> Any:
        for frame in reversed(self.frames):
            if frame.message_type == _TYPE_OF[cls]:
                return frame.decode()
        raise AssertionError(f"no {cls.__name__} in {self.names()}")


_TYPE_OF = {
    pb.OutputCommandMessage: T.OUTPUT_COMMAND,
    pb.ErrorMessage: T.ERROR,
    pb.SuspensionMessage: T.SUSPENSION,
    pb.ProposeRunCompletionMessage: T.PROPOSE_RUN_COMPLETION,
    pb.SetStateCommandMessage: T.SET_STATE_COMMAND,
    pb.CallCommandMessage: T.CALL_COMMAND,
    pb.OneWayCallCommandMessage: T.ONE_WAY_CALL_COMMAND,
    pb.SendSignalCommandMessage: T.SEND_SIGNAL_COMMAND,
    pb.AwaitingOnMessage: T.AWAITING_ON,
}


def _json(value: Any) -> bytes:
    return b"" if value is None else json.dumps(value).encode()


def output_value(server: Server) -> Any:
    out = server.last(pb.OutputCommandMessage)
    assert out.HasField("value"), out
    return json.loads(out.value.content) if out.value.content else None
