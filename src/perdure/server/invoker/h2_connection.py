"""One HTTP/2 client connection: its reader task, its full-duplex streams, flow control both ways.

The reader task is the only code that reads the socket and feeds the `h2` state machine; callers
of a stream's methods touch that state machine only between awaits, so no lock is needed.
Output from every stream is coalesced into one socket write per event-loop turn.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable
from types import TracebackType

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.settings

from perdure.server.invoker.transport import (
    ConnectError,
    ConnectionLost,
    Headers,
    StreamReset,
    Target,
    TransportError,
    checked_headers,
)

# Receive windows. Restate's pool uses 2 MiB per stream (service-client/src/pool/config.rs) so
# a deployment can write a big journal entry without waiting for us. The connection window is
# much larger than one stream's so that a single slow reader cannot stall its neighbours.
STREAM_WINDOW = 2 * 1024 * 1024
CONNECTION_WINDOW = 32 * 1024 * 1024
# `send()` returns at once while less than this waits for the peer's flow-control window; past
# it the sender waits, which is the backpressure a full-duplex stream needs.
SEND_BUFFER_LIMIT = 1024 * 1024
READ_SIZE = 256 * 1024

log = logging.getLogger("perdure.invoker")

_CANCEL = h2.errors.ErrorCodes.CANCEL
_NO_ERROR = h2.errors.ErrorCodes.NO_ERROR
_MAX_STREAMS = h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS
_INITIAL_WINDOW = h2.settings.SettingCodes.INITIAL_WINDOW_SIZE


def _code_name(code: int | None) -> str:
    try:
        return h2.errors.ErrorCodes(code or 0).name
    except ValueError:
        return f"error code {code}"


class ConnectionFull(Exception):
    """This connection cannot take another stream; the pool tries the next one."""


class H2Stream:
    """One full-duplex HTTP/2 exchange; see `transport.Stream` for the contract."""

    __slots__ = (
        "_chunks",
        "_conn",
        "_drained",
        "_end_requested",
        "_error",
        "_headers",
        "_local_ended",
        "_pending",
        "_remote_ended",
        "_sends_dropped",
        "_unacked",
        "_waiter",
        "stream_id",
        "url",
    )

    def __init__(self, conn: H2Connection, stream_id: int, url: str) -> None:
        self.url = url
        self.stream_id = stream_id
        self._conn = conn
        self._headers: asyncio.Future[tuple[int, Headers]] = conn.loop.create_future()
        self._chunks: deque[bytes] = deque()
        self._unacked = 0  # flow-controlled bytes queued here, acknowledged once consumed
        self._waiter: asyncio.Future[None] | None = None  # a receive() waiting for data
        self._remote_ended = False
        self._error: TransportError | None = None
        self._pending = bytearray()  # request bytes waiting for the peer's window
        self._drained: asyncio.Event | None = None  # set when senders may go on
        self._end_requested = False
        self._local_ended = False  # END_STREAM is in h2's output buffer
        self._sends_dropped = False  # the peer finished and asked us to stop sending

    async def __aenter__(self) -> H2Stream:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def send(self, data: bytes) -> None:
        if self._end_requested:
            raise RuntimeError(f"send() after end() on the stream to {self.url}")
        if self._error is not None:
            raise self._error
        if self._sends_dropped or not data:
            return
        conn = self._conn
        if self._pending:
            self._pending += data
        else:
            sent = conn.push(self, data)
            if sent < len(data):
                self._pending += memoryview(data)[sent:]
                conn.blocked[self.stream_id] = self
        conn.schedule_flush()
        if len(self._pending) > SEND_BUFFER_LIMIT:
            # An Event, not one future: two tasks may send on a stream (the invoker's first
            # frames and its forwarder), and each must be woken.
            if self._drained is None:
                self._drained = asyncio.Event()
            self._drained.clear()
            await self._drained.wait()
            if self._error is not None:
                raise self._error
        elif conn.is_write_buffer_full():
            await conn.drain()

    async def end(self) -> None:
        if self._end_requested:
            return
        self._end_requested = True
        if self._error is None and not self._sends_dropped and not self._pending:
            self._conn.end_local(self)
        # With data still pending, the connection sends END_STREAM after its last byte.

    async def response_headers(self) -> tuple[int, Headers]:
        if self._headers.done():
            return self._headers.result()
        # Shielded: a caller's timeout must not cancel the future other calls wait on.
        return await asyncio.shield(self._headers)

    async def receive(self) -> bytes | None:
        while True:
            chunks = self._chunks
            if chunks:
                data = chunks.popleft() if len(chunks) == 1 else b"".join(chunks)
                chunks.clear()
                unacked, self._unacked = self._unacked, 0
                self._conn.consumed(self.stream_id, unacked)
                return data
            if self._remote_ended:
                return None
            if self._error is not None:
                raise self._error
            if self._waiter is not None:
                raise RuntimeError(f"two tasks receive() on the stream to {self.url} at once")
            self._waiter = self._conn.loop.create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None

    async def read_all(self) -> bytes:
        """The rest of the response body."""
        parts = []
        while (chunk := await self.receive()) is not None:
            parts.append(chunk)
        return b"".join(parts)

    async def reset(self) -> None:
        self._conn.reset_local(self)

    async def aclose(self) -> None:
        if self._error is None and not (self._local_ended and self._remote_ended):
            self._conn.reset_local(self)
        elif self._unacked:
            unacked, self._unacked = self._unacked, 0
            self._chunks.clear()
            self._conn.consumed(self.stream_id, unacked)

    # --- called by the connection (its reader task, or a method a caller ran) --------------

    def on_headers(self, raw: list[tuple[bytes, bytes]]) -> None:
        if self._headers.done():
            return
        status = 0
        headers: Headers = []
        for key, value in raw:
            if key == b":status":
                status = int(value)
            elif key[:1] != b":":
                headers.append((key.decode("ascii", "replace"), value.decode("utf-8", "replace")))
        self._headers.set_result((status, headers))

    def on_data(self, data: bytes, flow_length: int) -> None:
        self._chunks.append(data)
        self._unacked += flow_length
        self._wake()

    def on_end(self) -> None:
        self._remote_ended = True
        self._wake()

    def on_peer_done(self) -> None:
        """The response ended (or the peer closed the stream): later sends are dropped."""
        self._sends_dropped = True
        self._pending.clear()
        self._wake_sender()

    def fail(self, error: TransportError) -> None:
        if self._error is None:
            self._error = error
        self._pending.clear()
        if not self._headers.done():
            self._headers.set_exception(error)
            self._headers.exception()  # nobody may ever ask for the headers: mark it seen
        self._wake()
        self._wake_sender()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _wake_sender(self) -> None:
        if self._drained is not None:
            self._drained.set()


class H2Connection:
    """One HTTP/2 connection. Its reader task is the only code that reads the socket; callers
    touch the h2 state machine only between awaits, so nothing needs a lock."""

    def __init__(
        self,
        target: Target,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        stream_limit: int,
        request_limit: int,
        on_closed: Callable[[H2Connection], None],
    ) -> None:
        self.loop = asyncio.get_running_loop()
        self.target = target
        self.reader = reader
        self.writer = writer
        self.h2 = h2.connection.H2Connection(
            h2.config.H2Configuration(
                client_side=True, header_encoding=None, validate_outbound_headers=False
            )
        )
        self.streams: dict[int, H2Stream] = {}
        self.blocked: dict[int, H2Stream] = {}  # streams with data waiting for window
        self.stream_limit = stream_limit  # ours, lowered to the peer's once its SETTINGS come
        self.closed: str | None = None  # why, once the connection is unusable
        self.draining = False  # no new streams: retired once the open ones are done
        self.requests_left = request_limit
        self.ready: asyncio.Future[None] = self.loop.create_future()
        self._on_closed = on_closed
        self._flush_scheduled = False
        self._reader_task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.h2.initiate_connection()
        self.h2.update_settings(
            {_INITIAL_WINDOW: STREAM_WINDOW, h2.settings.SettingCodes.ENABLE_PUSH: 0}
        )
        self.h2.increment_flow_control_window(CONNECTION_WINDOW - 65_535)
        self.flush()
        self._reader_task = self.loop.create_task(self._read_loop())

    @property
    def has_capacity(self) -> bool:
        return self.closed is None and not self.draining and len(self.streams) < self.stream_limit

    # --- output ----------------------------------------------------------------------------

    def flush(self) -> None:
        self._flush_scheduled = False
        data = self.h2.data_to_send()
        if data and self.closed is None and not self.writer.is_closing():
            self.writer.write(data)

    def schedule_flush(self) -> None:
        # Everything written in one event-loop turn (many streams' sends, acks) goes out in
        # one write: one syscall instead of one per frame.
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self.loop.call_soon(self.flush)

    def is_write_buffer_full(self) -> bool:
        # Flow control bounds what the peer has not acknowledged, but a peer advertising huge
        # windows while not reading could still make the socket buffer grow without bound.
        return self.writer.transport.get_write_buffer_size() > SEND_BUFFER_LIMIT

    async def drain(self) -> None:
        # A broken socket is the reader task's to report: it fails every stream.
        with contextlib.suppress(OSError):
            await self.writer.drain()

    def open(self, method: str, path: str, headers: Headers, url: str, end: bool) -> H2Stream:
        if not self.has_capacity:
            raise ConnectionFull
        try:
            stream_id = self.h2.get_next_available_stream_id()
        except h2.exceptions.NoAvailableStreamIDError as exc:
            self.draining = True  # 2^31 streams later: the pool opens a fresh connection
            raise ConnectionFull from exc
        target = self.target
        all_headers = [
            (":method", method),
            (":scheme", target.scheme),
            (":authority", target.authority),
            (":path", path or "/"),
            *checked_headers(headers, url),
        ]
        try:
            self.h2.send_headers(stream_id, all_headers, end_stream=end)
        except h2.exceptions.TooManyStreamsError as exc:
            self.stream_limit = len(self.streams)
            raise ConnectionFull from exc
        self.requests_left -= 1
        if self.requests_left <= 0:
            self.draining = True
        stream = H2Stream(self, stream_id, url)
        stream._end_requested = stream._local_ended = end
        self.streams[stream_id] = stream
        self.schedule_flush()
        return stream

    def push(self, stream: H2Stream, data: bytes | bytearray) -> int:
        """Hands h2 as much of `data` as the windows allow; returns how much it took."""
        h = self.h2
        stream_id = stream.stream_id
        total = len(data)
        max_frame = h.max_outbound_frame_size
        try:
            window = h.local_flow_control_window(stream_id)
            if total <= window and total <= max_frame:  # the common case: one small frame
                h.send_data(stream_id, data if isinstance(data, bytes) else bytes(data))
                return total
            sent = 0
            with memoryview(data) as view:
                while sent < total and window > 0:
                    size = min(window, max_frame, total - sent)
                    # A copy, because h2 may hold the frame while `data` (a bytearray) shrinks.
                    h.send_data(stream_id, bytes(view[sent : sent + size]))
                    sent += size
                    window -= size
            return sent
        except h2.exceptions.StreamClosedError:
            stream.on_peer_done()  # the peer closed the stream meanwhile
            return total

    def end_local(self, stream: H2Stream) -> None:
        with contextlib.suppress(h2.exceptions.StreamClosedError):
            self.h2.end_stream(stream.stream_id)
        stream._local_ended = True
        if stream._remote_ended:
            self._release(stream)
        self.schedule_flush()

    def reset_local(self, stream: H2Stream) -> None:
        if self.streams.get(stream.stream_id) is stream:
            with contextlib.suppress(h2.exceptions.StreamClosedError):
                self.h2.reset_stream(stream.stream_id, _CANCEL)
            self._release(stream)
            self.schedule_flush()
        stream.fail(StreamReset(f"the stream to {stream.url} was closed locally", url=stream.url))
        if stream._unacked:
            unacked, stream._unacked = stream._unacked, 0
            stream._chunks.clear()
            self.consumed(stream.stream_id, unacked)

    def consumed(self, stream_id: int, size: int) -> None:
        # Acknowledging only what the reader has taken is what lets a slow consumer push
        # back on the deployment; h2 batches the WINDOW_UPDATEs (at half a window).
        if size and self.closed is None:
            self.h2.acknowledge_received_data(size, stream_id)
            self.schedule_flush()

    def _release(self, stream: H2Stream) -> None:
        self.streams.pop(stream.stream_id, None)
        self.blocked.pop(stream.stream_id, None)
        if self.draining and not self.streams:
            self.retire()

    def _push_blocked(self, only: int | None = None) -> None:
        for stream_id, stream in list(self.blocked.items()):
            if only is not None and stream_id != only:
                continue
            pending = stream._pending
            sent = self.push(stream, pending) if pending else 0
            del pending[:sent]
            # Still waiting: to the back of the line, so one big body cannot take every
            # connection-level WINDOW_UPDATE while smaller streams starve.
            self.blocked.pop(stream_id, None)
            if pending:
                self.blocked[stream_id] = stream
            elif stream._end_requested and not stream._sends_dropped:
                self.end_local(stream)
            if len(pending) <= SEND_BUFFER_LIMIT:
                stream._wake_sender()
            if self.h2.outbound_flow_control_window <= 0:
                break

    # --- input: the reader task ------------------------------------------------------------

    async def _read_loop(self) -> None:
        why = "the deployment closed the connection"
        try:
            first = True
            while True:
                data = await self.reader.read(READ_SIZE)
                if not data:
                    break
                if first and data.startswith(b"HTTP/1."):
                    why = (
                        "the deployment answered in HTTP/1.1; if it does not speak HTTP/2, "
                        "register it with use_http_11"
                    )
                    break
                first = False
                try:
                    events = self.h2.receive_data(data)
                except h2.exceptions.ProtocolError as exc:
                    why = f"the deployment broke the HTTP/2 protocol ({exc})"
                    self.flush()  # h2 queued a GOAWAY saying why
                    break
                for event in events:
                    self._on_event(event)
                if self.closed is not None:
                    return
                self.flush()
        except OSError as exc:
            why = f"the connection broke ({exc.strerror or exc})"
        except Exception as exc:  # a bug here must fail the streams, never leave them hanging
            log.exception("HTTP/2 reader for %s crashed", self.target.base)
            why = f"the invoker's HTTP/2 reader crashed ({exc!r})"
        self.close(why)

    def _on_event(self, event: h2.events.Event) -> None:
        # isinstance (not a dict of handlers) so mypy narrows; the common events come first.
        if isinstance(event, h2.events.DataReceived):
            stream = self.streams.get(event.stream_id)
            if stream is not None and event.data:
                stream.on_data(event.data, event.flow_controlled_length)
            elif event.flow_controlled_length:
                # Nobody will consume it (padding, or a stream we let go): free the window now.
                self.h2.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
        elif isinstance(event, h2.events.WindowUpdated):
            if self.blocked:
                self._push_blocked(only=event.stream_id or None)
        elif isinstance(event, h2.events.ResponseReceived):
            stream = self.streams.get(event.stream_id)
            if stream is not None:
                stream.on_headers(event.headers)
        elif isinstance(event, h2.events.StreamEnded):
            stream = self.streams.get(event.stream_id)
            if stream is not None:
                stream.on_end()
                if not stream._local_ended:
                    self._finish_early(stream)
                self._release(stream)
        elif isinstance(event, h2.events.StreamReset):
            self._on_reset(event)
        elif isinstance(event, h2.events.RemoteSettingsChanged):
            self._on_settings(event)
        elif isinstance(event, h2.events.ConnectionTerminated):
            # h2 accepts no frame after a GOAWAY, so even the streams the peer would finish
            # fail here; the invoker retries them.
            extra = event.additional_data or b""
            detail = f", {extra.decode('utf-8', 'replace')}" if extra else ""
            self.close(
                f"the deployment sent GOAWAY ({_code_name(event.error_code)}{detail}): it is "
                "shutting down or retiring the connection"
            )

    def _finish_early(self, stream: H2Stream) -> None:
        # The response ended while our request is open. Once a deployment ends its response
        # the attempt is over, so whatever we would still send is moot: close our side with
        # RST_STREAM(NO_ERROR), which RFC 9113 §8.1 allows after a complete response. Not with
        # END_STREAM: hypercorn has already forgotten the stream and drops the whole
        # connection (KeyError) on any DATA frame for it, even an empty one.
        with contextlib.suppress(h2.exceptions.StreamClosedError):
            self.h2.reset_stream(stream.stream_id, _NO_ERROR)
        stream.on_peer_done()

    def _on_reset(self, event: h2.events.StreamReset) -> None:
        stream = self.streams.get(event.stream_id)
        if stream is None:
            return
        # Streams whose response ended are released already, so a reset here always cuts a
        # response short (a RST_STREAM(NO_ERROR) after a complete response never gets here).
        self._release(stream)
        name = _code_name(event.error_code)
        if not event.remote_reset:
            what = f"the deployment's response on {stream.url} broke HTTP/2 rules ({name})"
            hint = "check the deployment's HTTP server"
        else:
            what = f"the deployment reset the stream to {stream.url} ({name})"
            hint = (
                "it did not process the request, so retrying is safe"
                if event.error_code == h2.errors.ErrorCodes.REFUSED_STREAM
                else "its logs should say why"
            )
        code = int(event.error_code)
        stream.fail(StreamReset(f"{what}; {hint}", url=stream.url, error_code=code))

    def _on_settings(self, event: h2.events.RemoteSettingsChanged) -> None:
        changed = event.changed_settings
        if _MAX_STREAMS in changed:
            self.stream_limit = min(self.stream_limit, changed[_MAX_STREAMS].new_value)
        if _INITIAL_WINDOW in changed and self.blocked:
            self._push_blocked()
        if not self.ready.done():
            self.ready.set_result(None)

    # --- the end ---------------------------------------------------------------------------

    def close(self, why: str) -> None:
        """Marks the connection dead, fails its streams and closes the socket."""
        if self.closed is not None:
            return
        self.closed = why
        base = self.target.base
        for stream in list(self.streams.values()):
            stream.fail(
                ConnectionLost(
                    f"the connection to the deployment at {base} was lost while the request "
                    f"to {stream.url} was open: {why}; check that the deployment is running "
                    "and look at its logs",
                    url=stream.url,
                )
            )
        self.streams.clear()
        self.blocked.clear()
        if not self.ready.done():
            self.ready.set_exception(
                ConnectError(
                    f"the deployment at {base} did not complete the HTTP/2 handshake: {why}",
                    url=base,
                )
            )
            self.ready.exception()  # the connecting task may be gone: mark it seen
        self.writer.close()
        self._on_closed(self)

    def retire(self) -> None:
        """Closes a connection that has no stream left, politely (GOAWAY first)."""
        with contextlib.suppress(h2.exceptions.ProtocolError):
            self.h2.close_connection()
        self.flush()
        self.close("it was retired")

    async def aclose(self) -> None:
        if self.closed is None:
            with contextlib.suppress(h2.exceptions.ProtocolError):
                self.h2.close_connection()
            self.flush()
        self.close("the server is shutting down its connections")
        task = self._reader_task
        if task is not None and task is not asyncio.current_task():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        with contextlib.suppress(OSError, TimeoutError):
            async with asyncio.timeout(1.0):
                await self.writer.wait_closed()
