"""The invoker: runs attempts against deployments and turns what they send into events.

One asyncio task per running attempt. It opens the stream (HTTP/2 full duplex for
BIDI_STREAM deployments, request/response otherwise), writes the Start message and the
journal, forwards the notifications the partition sends while it runs, and feeds every frame it
reads back to the driver as `FramesReceived`. Anything that ends the stream without End,
Suspension or Error becomes `AttemptFailed`, and the partition decides about retries. The
invoker never decides anything about the invocation itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from perdure.protocol.errors import ProtocolError
from perdure.protocol.framing import FrameDecoder
from perdure.protocol.messages import MessageType as T
from perdure.protocol.versions import content_type_for
from perdure.server.invoker.slots import (
    DEFAULT_ONE_WAY_LIMIT,
    DEFAULT_ONE_WAY_SHARE,
    AttemptSlots,
)
from perdure.server.invoker.transport import Stream, Transport, TransportError
from perdure.server.partition.effects import AbortAttempt, SendToAttempt, StartAttempt
from perdure.server.partition.events import AttemptFailed, Event, FramesReceived
from perdure.server.registry import Registry
from perdure.server.storage.api import DeploymentRow

log = logging.getLogger("perdure.invoker")

TERMINAL = frozenset({int(T.END), int(T.SUSPENSION), int(T.ERROR)})

# Restate's codes for attempts that fail on the server side of the stream.
CODE_UNREACHABLE = 503
CODE_STREAM_ENDED = 571
CODE_TIMEOUT = 408

HeaderSource = Callable[[DeploymentRow, str], list[tuple[str, str]]]


# The ingress is busy accepting sends while at least BUSY_SENDS of them wait for their commit (a
# few clients sending now and then never make it busy), and until QUIET_S after that; while a
# one-way attempt waits only because the ingress is busy, the invoker looks again every QUIET_S.
BUSY_SENDS = 16
QUIET_S = 0.05
# A one-way attempt counts against the one-way lane for this long at most; after that it holds
# only its slot under the concurrency limit (if any). Most sends finish well within it; one that
# waits (a workflow on its promise until the inactivity timeout suspends it) must not keep a
# lane slot for a minute, or 128 such runs would hold every later send back.
LANE_HOLD_S = 1.0


@dataclass(slots=True)
class _Running:
    attempt: int
    task: asyncio.Task[None]
    outbox: asyncio.Queue[bytes]
    one_way: bool


@dataclass(slots=True)
class _Queued:
    effect: StartAttempt
    outbox: asyncio.Queue[bytes] = field(default_factory=asyncio.Queue)


class Invoker:
    """Opens attempts, at most `concurrency_limit` at once (None: no limit).

    Attempts over the limit wait in `AttemptSlots` (first in, first out; calls before one-way
    sends); a waiting attempt keeps the notifications sent to it and gets them after its Start.
    While the ingress is busy accepting sends (`BUSY_SENDS`), one-way attempts are kept to a
    small share (see `slots.py`).
    """

    def __init__(
        self,
        submit: Callable[[Event], None],
        registry: Callable[[], Registry],
        h2: Transport,
        h1: Transport,
        extra_headers: HeaderSource | None = None,
        *,
        concurrency_limit: int | None = None,
        one_way_share: int = DEFAULT_ONE_WAY_SHARE,
        one_way_limit: int = DEFAULT_ONE_WAY_LIMIT,
    ) -> None:
        self._submit = submit
        self._registry = registry
        self._h2 = h2
        self._h1 = h1
        self._extra_headers = extra_headers
        self._running: dict[str, _Running] = {}
        self._slots: AttemptSlots[_Queued] = AttemptSlots(
            concurrency_limit, one_way_share=one_way_share, one_way_limit=one_way_limit
        )
        self._one_way: set[str] = set()
        self._sends_in_flight = 0
        self._last_busy = float("-inf")
        self._recheck: asyncio.TimerHandle | None = None
        self.started = 0
        self.most_open = 0  # the most attempts open at once so far (tests, status)
        self._closed = False

    def __len__(self) -> int:
        return len(self._running)

    @property
    def waiting(self) -> int:
        """How many attempts wait for a slot."""
        return len(self._slots)

    def is_waiting(self, invocation_id: str) -> bool:
        """True while the invocation's attempt waits for a slot (its stream is not open)."""
        return invocation_id in self._slots

    # --- what the ingress tells (admission.py) ------------------------------------------------

    def send_accepting(self, invocation_id: str) -> None:
        """The ingress is admitting this one-way invocation: its first attempt may wait."""
        self._one_way.add(invocation_id)
        self._sends_in_flight += 1

    def send_answered(self, invocation_id: str) -> None:
        self._one_way.discard(invocation_id)
        if self._sends_in_flight >= BUSY_SENDS:
            self._last_busy = asyncio.get_running_loop().time()
        self._sends_in_flight -= 1

    def _busy(self) -> bool:
        if self._sends_in_flight >= BUSY_SENDS:
            return True
        return asyncio.get_running_loop().time() - self._last_busy < QUIET_S

    # --- effects -----------------------------------------------------------------------------

    def start(self, effect: StartAttempt) -> None:
        if self._closed:
            return
        inv = effect.invocation_id
        self._stop(inv)
        one_way = inv in self._one_way
        self._one_way.discard(inv)
        queued = _Queued(effect)
        if self._slots.admit(one_way=one_way, busy=self._busy()):
            self._launch(queued, one_way)
        else:
            self._slots.push(inv, queued, one_way=one_way)
            self._fill()

    def send(self, effect: SendToAttempt) -> None:
        running = self._running.get(effect.invocation_id)
        if running is not None:
            if running.attempt == effect.attempt:
                running.outbox.put_nowait(effect.frames)
            return
        queued = self._slots.get(effect.invocation_id)
        if queued is not None and queued.effect.attempt == effect.attempt:
            queued.outbox.put_nowait(effect.frames)

    def abort(self, effect: AbortAttempt) -> None:
        running = self._running.get(effect.invocation_id)
        if running is not None:
            if running.attempt == effect.attempt:
                self._stop(effect.invocation_id)
            return
        queued = self._slots.get(effect.invocation_id)
        if queued is not None and queued.effect.attempt == effect.attempt:
            self._slots.remove(effect.invocation_id)

    def _stop(self, invocation_id: str) -> None:
        self._slots.remove(invocation_id)
        running = self._running.pop(invocation_id, None)
        if running is not None:
            self._slots.finished(one_way=running.one_way)
            if not running.task.done():
                running.task.cancel()
            self._fill()

    def _launch(self, queued: _Queued, one_way: bool) -> None:
        effect = queued.effect
        task = asyncio.create_task(self._run(effect, queued.outbox))
        self._running[effect.invocation_id] = _Running(effect.attempt, task, queued.outbox, one_way)
        if one_way:
            asyncio.get_running_loop().call_later(
                LANE_HOLD_S, self._leave_lane, effect.invocation_id, task
            )
        self.started += 1
        self.most_open = max(self.most_open, len(self._running))

    def _leave_lane(self, invocation_id: str, task: asyncio.Task[None]) -> None:
        running = self._running.get(invocation_id)
        if running is not None and running.task is task and running.one_way:
            running.one_way = False
            self._slots.leave_lane()
            self._fill()

    def _fill(self) -> None:
        """Opens waiting attempts while slots are free."""
        busy = self._busy()
        while (ready := self._slots.pop_ready(busy=busy)) is not None:
            _, queued, one_way = ready
            self._launch(queued, one_way)
        if self._recheck is None and self._slots.held_back(busy=busy):
            self._recheck = asyncio.get_running_loop().call_later(QUIET_S, self._rechecked)

    def _rechecked(self) -> None:
        self._recheck = None
        self._fill()

    async def close(self) -> None:
        if self._recheck is not None:
            self._recheck.cancel()
            self._recheck = None
        self._closed = True
        self._slots.clear()  # the restart starts every running invocation again
        tasks = [r.task for r in self._running.values()]
        self._running.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # --- one attempt -------------------------------------------------------------------------

    async def _run(self, effect: StartAttempt, outbox: asyncio.Queue[bytes]) -> None:
        inv, attempt = effect.invocation_id, effect.attempt
        try:
            failure = await self._attempt(effect, outbox)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug here must not kill the server: fail the attempt
            log.exception("attempt %s of %s crashed", attempt, inv)
            failure = (500, f"internal error in the invoker: {exc}")
        finally:
            current = self._running.get(inv)
            if (
                current is not None
                and current.attempt == attempt
                and current.task is asyncio.current_task()
            ):
                del self._running[inv]
                self._slots.finished(one_way=current.one_way)
                self._fill()
        if failure is not None:
            code, message = failure
            log.warning("attempt %s of %s failed: %s", attempt, inv, message)
            self._submit(AttemptFailed(inv, attempt, code, message))

    async def _attempt(
        self, effect: StartAttempt, outbox: asyncio.Queue[bytes]
    ) -> tuple[int, str] | None:
        deployment = self._registry().deployment(effect.deployment_id)
        if deployment is None:
            return CODE_UNREACHABLE, f"deployment {effect.deployment_id} is no longer registered"
        info = self._registry().handler(effect.service, effect.handler)
        defaults = self._registry().defaults
        inactivity = (info.inactivity_timeout_ms if info else defaults.inactivity_timeout_ms) / 1000
        abort_after = (info.abort_timeout_ms if info else defaults.abort_timeout_ms) / 1000
        bidi = deployment.protocol_mode == "BIDI_STREAM"
        transport = self._h1 if deployment.use_http_11 else self._h2
        url = f"{deployment.uri.rstrip('/')}/invoke/{effect.service}/{effect.handler}"
        ctype = content_type_for(effect.protocol_version)
        headers = [("content-type", ctype), ("accept", ctype), *deployment.additional_headers]
        if self._extra_headers is not None:
            headers.extend(self._extra_headers(deployment, url))
        try:
            stream = await transport.open_stream(url, headers)
        except TransportError as exc:
            return CODE_UNREACHABLE, str(exc)
        try:
            return await self._pump(effect, stream, outbox, bidi, inactivity, abort_after)
        except TransportError as exc:
            return CODE_UNREACHABLE, str(exc)
        finally:
            with contextlib.suppress(Exception):
                await stream.aclose()

    async def _pump(
        self,
        effect: StartAttempt,
        stream: Stream,
        outbox: asyncio.Queue[bytes],
        bidi: bool,
        inactivity: float,
        abort_after: float,
    ) -> tuple[int, str] | None:
        await stream.send(effect.frames)
        writer: asyncio.Task[None] | None = None
        if bidi:
            writer = asyncio.create_task(_forward(outbox, stream))
        else:
            await stream.end()
        try:
            try:
                status, _ = await asyncio.wait_for(stream.response_headers(), timeout=abort_after)
            except TimeoutError:
                return CODE_TIMEOUT, (
                    f"the deployment sent no response headers for {abort_after:.0f}s; the "
                    "attempt was aborted and will be retried"
                )
            if status != 200:
                body = await _read_some(stream)
                return status if status >= 400 else 500, (
                    f"the deployment answered HTTP {status} to /invoke/{effect.service}/"
                    f"{effect.handler}: {body!r}"
                )
            decoder = FrameDecoder()
            timeout = inactivity
            asked_to_suspend = False
            while True:
                try:
                    chunk = await asyncio.wait_for(stream.receive(), timeout=timeout)
                except TimeoutError:
                    if not asked_to_suspend:
                        # Ask the SDK to suspend by closing our side (a request/response
                        # attempt's side is closed already), then give it time to end.
                        asked_to_suspend = True
                        if bidi:
                            if writer is not None:
                                writer.cancel()
                                writer = None
                            await stream.end()
                        timeout = abort_after
                        continue
                    return CODE_TIMEOUT, (
                        f"the deployment sent nothing for {timeout:.0f}s; the attempt was "
                        "aborted and will be retried"
                    )
                if chunk is None:
                    return CODE_STREAM_ENDED, (
                        "the deployment closed the stream without End, Suspension or Error"
                    )
                try:
                    frames = decoder.feed(chunk)
                except ProtocolError as exc:
                    return CODE_STREAM_ENDED, f"the deployment sent a bad frame: {exc}"
                if not frames:
                    continue
                batch = tuple(
                    (int(f.message_type), f.requested_ack, bytes(f.payload)) for f in frames
                )
                self._submit(FramesReceived(effect.invocation_id, effect.attempt, batch))
                if any(f[0] in TERMINAL for f in batch):
                    await stream.end()  # the SDK holds its side open until ours ends
                    return None
        finally:
            if writer is not None:
                writer.cancel()
                with contextlib.suppress(BaseException):
                    await writer


async def _forward(outbox: asyncio.Queue[bytes], stream: Stream) -> None:
    while True:
        data = await outbox.get()
        while not outbox.empty():
            data += outbox.get_nowait()
        await stream.send(data)


async def _read_some(stream: Stream, limit: int = 512) -> bytes:
    body = b""
    with contextlib.suppress(Exception):
        while len(body) < limit:
            chunk = await asyncio.wait_for(stream.receive(), timeout=2)
            if chunk is None:
                break
            body += chunk
    return body[:limit]
