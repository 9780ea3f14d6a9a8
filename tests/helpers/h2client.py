"""A small full-duplex HTTP/2 (h2c, prior knowledge) client for tests, on `h2` and asyncio.

httpx sends a whole request body before it reads the response, but a Restate invocation
stream is a conversation: the SDK answers while the server is still sending. This client
keeps both directions of a stream open at once.

    async with await H2Client.connect("127.0.0.1", port) as client:
        stream = await client.request("POST", "/invoke/Greeter/greet", {"content-type": ...})
        await stream.send(frames)
        status, headers = await stream.response_headers()
        chunk = await stream.receive()  # None once the server ended the stream
"""

from __future__ import annotations

import asyncio
import contextlib
from types import TracebackType

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings


class H2StreamError(Exception):
    """The server reset the stream or the connection went away."""


class H2Stream:
    """One request/response exchange; both halves stay open until each side ends its own."""

    def __init__(self, client: H2Client, stream_id: int) -> None:
        self._client = client
        self.stream_id = stream_id
        self._headers: asyncio.Future[tuple[int, dict[str, str]]] = (
            asyncio.get_running_loop().create_future()
        )
        self._data: asyncio.Queue[bytes | BaseException | None] = asyncio.Queue()
        self._ended = False

    async def send(self, data: bytes, *, end_stream: bool = False) -> None:
        await self._client._send_data(self.stream_id, data, end_stream=end_stream)

    async def end(self) -> None:
        """Ends our half of the stream (the request body)."""
        await self._client._end_stream(self.stream_id)

    async def response_headers(self) -> tuple[int, dict[str, str]]:
        return await self._headers

    async def receive(self) -> bytes | None:
        """The next chunk of the response body, or None when the server ended the stream."""
        if self._ended:
            return None
        item = await self._data.get()
        if isinstance(item, BaseException):
            self._ended = True
            raise item
        if item is None:
            self._ended = True
        return item

    async def read_all(self) -> bytes:
        body = b""
        while (chunk := await self.receive()) is not None:
            body += chunk
        return body

    # Called by the client's reader task.
    def _on_headers(self, headers: list[tuple[bytes, bytes]]) -> None:
        decoded = {k.decode(): v.decode() for k, v in headers}
        if not self._headers.done():
            self._headers.set_result((int(decoded.get(":status", "0")), decoded))

    def _on_data(self, data: bytes) -> None:
        self._data.put_nowait(data)

    def _on_end(self) -> None:
        self._data.put_nowait(None)

    def _on_error(self, error: BaseException) -> None:
        if not self._headers.done():
            self._headers.set_exception(error)
            self._headers.exception()  # mark retrieved: a test may never ask for headers
        self._data.put_nowait(error)


class H2Client:
    """One HTTP/2 connection with a reader task that routes frames to streams."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        config = h2.config.H2Configuration(client_side=True, header_encoding=None)
        self._conn = h2.connection.H2Connection(config=config)
        self._streams: dict[int, H2Stream] = {}
        self._window_open = asyncio.Event()
        self._lock = asyncio.Lock()
        self._reader_task: asyncio.Task[None] | None = None
        self._authority = ""

    @classmethod
    async def connect(cls, host: str, port: int, timeout: float = 10.0) -> H2Client:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
        client = cls(reader, writer)
        client._authority = f"{host}:{port}"
        client._conn.initiate_connection()
        # A large receive window so that a test never stalls on flow control.
        client._conn.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 2**24})
        client._conn.increment_flow_control_window(2**30)
        await client._flush()
        client._reader_task = asyncio.create_task(client._read_loop())
        return client

    async def __aenter__(self) -> H2Client:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def request(
        self, method: str, path: str, headers: dict[str, str], *, end_stream: bool = False
    ) -> H2Stream:
        async with self._lock:
            stream_id = self._conn.get_next_available_stream_id()
            stream = H2Stream(self, stream_id)
            self._streams[stream_id] = stream
            pseudo = [
                (":method", method),
                (":scheme", "http"),
                (":authority", self._authority),
                (":path", path),
            ]
            self._conn.send_headers(stream_id, [*pseudo, *headers.items()], end_stream=end_stream)
            await self._flush_locked()
        return stream

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            async with self._lock:
                self._conn.close_connection()
                await self._flush_locked()
        if self._reader_task is not None:
            self._reader_task.cancel()
            with contextlib.suppress(BaseException):
                await self._reader_task
        self._writer.close()
        with contextlib.suppress(Exception):
            await self._writer.wait_closed()

    async def _send_data(self, stream_id: int, data: bytes, *, end_stream: bool) -> None:
        view = memoryview(data)
        while True:
            async with self._lock:
                window = min(
                    self._conn.local_flow_control_window(stream_id),
                    self._conn.max_outbound_frame_size,
                )
                if window > 0 or not view:
                    chunk, view = view[:window], view[window:]
                    last = end_stream and not view
                    self._conn.send_data(stream_id, bytes(chunk), end_stream=last)
                    await self._flush_locked()
                    if not view:
                        return
                    continue
                self._window_open.clear()
            await self._window_open.wait()

    async def _end_stream(self, stream_id: int) -> None:
        async with self._lock:
            self._conn.end_stream(stream_id)
            await self._flush_locked()

    async def _flush(self) -> None:
        async with self._lock:
            await self._flush_locked()

    async def _flush_locked(self) -> None:
        data = self._conn.data_to_send()
        if data:
            self._writer.write(data)
            await self._writer.drain()

    async def _read_loop(self) -> None:
        error: BaseException = H2StreamError("the server closed the connection")
        try:
            while True:
                data = await self._reader.read(65536)
                if not data:
                    break
                async with self._lock:
                    events = self._conn.receive_data(data)
                    for event in events:
                        self._dispatch(event)
                    await self._flush_locked()
        except (ConnectionError, h2.exceptions.ProtocolError) as exc:
            error = H2StreamError(f"the connection failed: {exc!r}")
        finally:
            for stream in self._streams.values():
                stream._on_error(error)

    def _dispatch(self, event: h2.events.Event) -> None:
        stream = self._streams.get(getattr(event, "stream_id", 0) or 0)
        if isinstance(event, h2.events.ResponseReceived) and stream is not None:
            stream._on_headers(event.headers or [])
        elif isinstance(event, h2.events.DataReceived) and stream is not None:
            if event.flow_controlled_length:
                self._conn.acknowledge_received_data(event.flow_controlled_length, stream.stream_id)
            stream._on_data(event.data or b"")
        elif isinstance(event, h2.events.StreamEnded) and stream is not None:
            stream._on_end()
            self._streams.pop(stream.stream_id, None)
        elif isinstance(event, h2.events.StreamReset) and stream is not None:
            stream._on_error(
                H2StreamError(f"the server reset the stream (code {event.error_code})")
            )
            self._streams.pop(stream.stream_id, None)
        elif isinstance(event, h2.events.WindowUpdated | h2.events.RemoteSettingsChanged):
            self._window_open.set()
        elif isinstance(event, h2.events.ConnectionTerminated):
            for s in self._streams.values():
                s._on_error(H2StreamError(f"the server ended the connection ({event.error_code})"))
            self._streams.clear()
