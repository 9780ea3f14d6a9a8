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


@dataclass(slots=True)
class _Running:
    attempt: int
    task: asyncio.Task[None]
    outbox: asyncio.Queue[bytes] = field(default_factory=asyncio.Queue)


class Invoker:
    def __init__(
        self,
        submit: Callable[[Event], None],
        registry: Callable[[], Registry],
        h2: Transport,
        h1: Transport,
        extra_headers: HeaderSource | None = None,
    ) -> None:
        self._submit = submit
        self._registry = registry
        self._h2 = h2
        self._h1 = h1
        self._extra_headers = extra_headers
        self._running: dict[str, _Running] = {}
        self.started = 0

    def __len__(self) -> int:
        return len(self._running)

    def start(self, effect: StartAttempt) -> None:
        self._stop(effect.invocation_id)
        outbox: asyncio.Queue[bytes] = asyncio.Queue()
        task = asyncio.create_task(self._run(effect, outbox))
        self._running[effect.invocation_id] = _Running(effect.attempt, task, outbox)
        self.started += 1

    def send(self, effect: SendToAttempt) -> None:
        running = self._running.get(effect.invocation_id)
        if running is not None and running.attempt == effect.attempt:
            running.outbox.put_nowait(effect.frames)

    def abort(self, effect: AbortAttempt) -> None:
        running = self._running.get(effect.invocation_id)
        if running is not None and running.attempt == effect.attempt:
            self._stop(effect.invocation_id)

    def _stop(self, invocation_id: str) -> None:
        running = self._running.pop(invocation_id, None)
        if running is not None and not running.task.done():
            running.task.cancel()

    async def close(self) -> None:
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
