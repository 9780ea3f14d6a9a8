"""HTTP/1.1 client for deployments: request/response exchanges on keep-alive connections (h11)."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from types import TracebackType

import h11

from perdure.server.invoker.transport import (
    CONNECT_TIMEOUT_S,
    ConnectError,
    ConnectionLost,
    Headers,
    Response,
    StreamReset,
    Target,
    TransportError,
    TransportTimeout,
    open_socket,
    parse_url,
    request_headers,
    tls_context,
)

READ_SIZE = 256 * 1024
# Idle connections kept per origin: enough for the invoker's usual concurrency; more are
# closed rather than kept, since hypercorn and most servers drop idle ones after seconds anyway.
MAX_IDLE_PER_ORIGIN = 64
# Below this, the request head and body go out in one write (one syscall); above, the copy
# that joining them costs is worse than a second write.
JOIN_LIMIT = 64 * 1024
# The response head is bounded like h11's default (and node's, tomcat's) so that a peer that
# never ends its headers cannot grow our memory.
MAX_HEAD_SIZE = 64 * 1024


class _Connection:
    __slots__ = ("h11", "reader", "reused", "target", "writer")

    def __init__(
        self, target: Target, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.target = target
        self.reader = reader
        self.writer = writer
        self.h11 = h11.Connection(h11.CLIENT, max_incomplete_event_size=MAX_HEAD_SIZE)
        self.reused = False

    @property
    def is_usable(self) -> bool:
        # An idle connection the server closed shows EOF here (the loop saw its FIN); using
        # it would fail the next request for nothing.
        return not self.writer.is_closing() and not self.reader.at_eof()

    def close(self) -> None:
        self.writer.close()


class H1Stream:
    """One HTTP/1.1 request/response; the request body is buffered and sent at `end()`."""

    def __init__(
        self,
        transport: H1Transport,
        target: Target,
        method: str,
        headers: Headers,
        url: str,
        conn: _Connection,
    ) -> None:
        self.url = url
        self._transport = transport
        self._target = target
        self._method = method
        self._headers = headers
        self._conn: _Connection | None = conn
        self._body: list[bytes] = []
        self._end_requested = False
        self._head: tuple[int, Headers] | None = None
        self._finished = False
        self._error: TransportError | None = None
        self._got_response_bytes = False
        self._retried = False

    async def __aenter__(self) -> H1Stream:
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
        if data:
            self._body.append(data)

    async def end(self) -> None:
        if self._end_requested:
            return
        self._end_requested = True
        body = b"".join(self._body)
        self._body = [body]  # kept for one resend on a stale keep-alive connection
        conn = self._live_conn()
        try:
            await self._write_request(conn, body)
        except ConnectionLost:
            await self._retry_on_fresh_connection(conn)

    async def response_headers(self) -> tuple[int, Headers]:
        if self._head is None:
            if not self._end_requested:
                await self.end()  # over HTTP/1.1 nothing can come back before the request
            conn = self._live_conn()
            try:
                self._head = await self._read_head(conn)
            except ConnectionLost:
                conn = await self._retry_on_fresh_connection(conn)
                self._head = await self._read_head(conn)
        return self._head

    async def _retry_on_fresh_connection(self, stale: _Connection) -> _Connection:
        # A server may close an idle keep-alive connection just as we reuse it. If nothing
        # came back on it, nothing was processed: send the request once more, on a new one.
        if not stale.reused or self._got_response_bytes or self._retried:
            assert self._error is not None
            raise self._error
        self._retried = True
        try:
            conn = await self._transport._connect(self._target, self.url)
        except TransportError as exc:
            self._error = exc
            raise
        self._error, self._conn = None, conn
        await self._write_request(conn, self._body[0])
        return conn

    async def receive(self) -> bytes | None:
        if self._finished:
            return None
        await self.response_headers()
        conn = self._live_conn()
        parts: list[bytes] = []
        while True:
            event = self._next_event_nowait(conn)
            if isinstance(event, h11.Data):
                parts.append(bytes(event.data))
            elif isinstance(event, h11.EndOfMessage):
                self._finished = True
                return b"".join(parts) if parts else None
            elif event is h11.NEED_DATA:
                if parts:
                    return b"".join(parts)
                await self._read_more(conn)
            else:
                raise self._lost(f"it sent an unexpected {type(event).__name__}")

    async def read_all(self) -> bytes:
        """The rest of the response body."""
        parts = []
        while (chunk := await self.receive()) is not None:
            parts.append(chunk)
        return b"".join(parts)

    async def reset(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()
        if self._error is None:
            self._error = StreamReset(f"the request to {self.url} was closed locally", url=self.url)

    async def aclose(self) -> None:
        conn = self._conn
        if conn is None:
            return
        self._conn = None
        h = conn.h11
        if h.our_state is h11.DONE and h.their_state is h11.DONE:
            h.start_next_cycle()
            conn.reused = True
            self._transport._checkin(conn)
        else:
            conn.close()  # half-read or broken: the bytes on it can no longer be framed
        if self._error is None:
            self._error = StreamReset(f"the request to {self.url} was closed locally", url=self.url)

    # --- internals -------------------------------------------------------------------------

    def _live_conn(self) -> _Connection:
        if self._error is not None:
            raise self._error
        assert self._conn is not None  # a stream without a connection has an error set
        return self._conn

    async def _write_request(self, conn: _Connection, body: bytes) -> None:
        h = conn.h11
        headers = [("host", self._target.authority), *request_headers(self._headers)]
        if body or self._method not in ("GET", "HEAD", "DELETE", "OPTIONS"):
            headers.append(("content-length", str(len(body))))
        try:
            request = h11.Request(method=self._method, target=self._target.path, headers=headers)
            out = h.send_with_data_passthrough(request) or []
            if body:  # content-length framing: h11 passes the body through without a copy
                out += h.send_with_data_passthrough(h11.Data(data=body)) or []
            out += h.send_with_data_passthrough(h11.EndOfMessage()) or []
        except h11.LocalProtocolError as exc:
            self._error = ConnectError(
                f"cannot send the request to {self.url}: {exc}; check the deployment's "
                "additional headers",
                url=self.url,
            )
            raise self._error from exc
        if len(body) <= JOIN_LIMIT:
            conn.writer.write(b"".join(out))
        else:
            for piece in out:
                conn.writer.write(piece)
        try:
            await conn.writer.drain()
        except OSError as exc:
            raise self._lost(f"writing failed ({exc.strerror or exc})") from exc

    async def _read_head(self, conn: _Connection) -> tuple[int, Headers]:
        while True:
            event = self._next_event_nowait(conn)
            if event is h11.NEED_DATA:
                await self._read_more(conn)
            elif isinstance(event, h11.Response):
                headers = [
                    (k.decode("ascii", "replace"), v.decode("utf-8", "replace"))
                    for k, v in event.headers
                ]
                return event.status_code, headers
            elif not isinstance(event, h11.InformationalResponse):
                raise self._lost(f"it sent an unexpected {type(event).__name__}")

    def _next_event_nowait(self, conn: _Connection) -> h11.Event | type[h11.NEED_DATA]:
        try:
            event = conn.h11.next_event()
        except h11.RemoteProtocolError as exc:
            raise self._lost(f"its HTTP/1.1 response was malformed or cut short ({exc})") from exc
        if event is h11.PAUSED or isinstance(event, h11.ConnectionClosed):
            raise self._lost("it closed the connection before the response ended")
        return event  # type: ignore[return-value]  # NEED_DATA is a sentinel class

    async def _read_more(self, conn: _Connection) -> None:
        try:
            data = await conn.reader.read(READ_SIZE)
        except OSError as exc:
            raise self._lost(f"the connection broke ({exc.strerror or exc})") from exc
        if data:
            self._got_response_bytes = True
        conn.h11.receive_data(data)  # b"" tells h11 the peer closed

    def _lost(self, why: str) -> ConnectionLost:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()
        error = ConnectionLost(
            f"the exchange with the deployment at {self._target.base} for {self.url} broke: "
            f"{why}; check that the deployment is running and look at its logs",
            url=self.url,
        )
        self._error = error
        return error


class H1Transport:
    """HTTP/1.1 to deployments (Restate's `use_http_11`), with idle keep-alive connections.

        transport = H1Transport()
        response = await transport.request("GET", f"{uri}/discover", [("accept", manifest)])
        await transport.close()

    Streams are request/response only: the request body goes out whole, with a
    content-length, when `end()` is called (the invoker knows the whole body by then).
    """

    def __init__(
        self,
        *,
        connect_timeout: float = CONNECT_TIMEOUT_S,
        max_idle_per_origin: int = MAX_IDLE_PER_ORIGIN,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.connect_timeout = connect_timeout
        self.max_idle_per_origin = max_idle_per_origin
        self._ssl_context = ssl_context
        self._idle: dict[tuple[str, str, int], list[_Connection]] = {}

    def idle_count(self, url: str) -> int:
        """How many idle keep-alive connections the pool holds to the origin of `url`."""
        return len(self._idle.get(parse_url(url).origin, ()))

    async def open_stream(self, url: str, headers: Headers) -> H1Stream:
        return await self._open("POST", url, headers)

    async def request(
        self,
        method: str,
        url: str,
        headers: Headers,
        body: bytes = b"",
        timeout: float = 30.0,
    ) -> Response:
        try:
            async with asyncio.timeout(timeout):
                stream = await self._open(method, url, headers)
                try:
                    await stream.send(body)
                    await stream.end()
                    status, response_headers = await stream.response_headers()
                    return Response(status, response_headers, await stream.read_all(), url)
                finally:
                    await stream.aclose()
        except TimeoutError as exc:
            raise TransportTimeout(
                f"{method} {url} got no complete answer within {timeout:g}s; check that the "
                "deployment is healthy and not overloaded",
                url=url,
            ) from exc

    async def close(self) -> None:
        idle = [c for pool in self._idle.values() for c in pool]
        self._idle.clear()
        for conn in idle:
            conn.close()
        for conn in idle:
            with contextlib.suppress(OSError, TimeoutError):
                async with asyncio.timeout(1.0):
                    await conn.writer.wait_closed()

    async def _open(self, method: str, url: str, headers: Headers) -> H1Stream:
        target = parse_url(url)
        conn = self._checkout(target) or await self._connect(target, url)
        return H1Stream(self, target, method, list(headers), url, conn)

    def _checkout(self, target: Target) -> _Connection | None:
        idle = self._idle.get(target.origin)
        while idle:
            conn = idle.pop()  # the most recently used is the least likely to have timed out
            if conn.is_usable:
                return conn
            conn.close()
        return None

    def _checkin(self, conn: _Connection) -> None:
        idle = self._idle.setdefault(conn.target.origin, [])
        if conn.is_usable and len(idle) < self.max_idle_per_origin:
            idle.append(conn)
        else:
            conn.close()

    async def _connect(self, target: Target, url: str) -> _Connection:
        context = None
        if target.scheme == "https":
            if self._ssl_context is None:
                self._ssl_context = tls_context("http/1.1")
            else:  # a caller's context: make sure the server cannot pick h2
                self._ssl_context.set_alpn_protocols(["http/1.1"])
            context = self._ssl_context
        try:
            async with asyncio.timeout(self.connect_timeout):
                reader, writer = await open_socket(target, url, context)
        except TimeoutError as exc:
            raise ConnectError(
                f"cannot connect to the deployment at {target.base} within "
                f"{self.connect_timeout:g}s; check that it is running and reachable",
                url=url,
            ) from exc
        return _Connection(target, reader, writer)
