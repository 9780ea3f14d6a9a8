"""Tells the invoker which invocations the ingress accepts as one-way sends, and when.

The ingress hands its requests to the driver through `request(make)`. `SendAdmission` sits in
between: it looks at the event `make` builds, and for an immediate `/send` it tells the invoker
before the event reaches the driver, so that when the commit hands out the attempt the invoker
already knows it is one-way (it may wait behind calls, see `slots.py`), and so that the invoker
knows the ingress is busy accepting sends. Nothing here changes what is stored or answered.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from perdure.server.partition.effects import Reply
from perdure.server.partition.events import CallMode, Event, InvocationRequested


class RequestSink(Protocol):
    async def request(self, make: Callable[[int], Event]) -> Reply: ...


class SendListener(Protocol):
    def send_accepting(self, invocation_id: str) -> None: ...
    def send_answered(self, invocation_id: str) -> None: ...


class SendAdmission:
    """A `RequestSink` for the ingress that reports one-way sends to `listener`."""

    def __init__(self, sink: RequestSink, listener: SendListener) -> None:
        self._sink = sink
        self._listener = listener

    async def request(self, make: Callable[[int], Event]) -> Reply:
        sent: str | None = None

        def watched(request_id: int) -> Event:
            nonlocal sent
            event = make(request_id)
            if (
                isinstance(event, InvocationRequested)
                and event.mode is CallMode.SEND
                and event.execution_time is None
            ):
                sent = event.invocation_id
                self._listener.send_accepting(sent)
            return event

        try:
            return await self._sink.request(watched)
        finally:
            if sent is not None:
                self._listener.send_answered(sent)
