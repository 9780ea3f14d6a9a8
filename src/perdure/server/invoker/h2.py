"""HTTP/2 transport to deployments: a pool of connections per origin, full-duplex streams."""

from __future__ import annotations

import asyncio
import ssl

from perdure.server.invoker.h2_connection import ConnectionFull, H2Connection, H2Stream
from perdure.server.invoker.transport import (
    CONNECT_TIMEOUT_S,
    ConnectError,
    Headers,
    Response,
    Target,
    TransportTimeout,
    open_socket,
    parse_url,
    tls_context,
)

__all__ = ["H2Stream", "H2Transport"]

# Restate caps streams per connection at 128 as well: L4 balancers spread connections, not
# streams, and a peer's advertised limit (hypercorn: 100) lowers it further.
MAX_STREAMS_PER_CONNECTION = 128
# hypercorn (which serves the Python SDKs) ends a connection with GOAWAY after 1000 requests
# (`keep_alive_max_requests`), and its streams in flight die with it. Retiring our connections
# a little earlier, once their streams are done, costs one handshake per 900 streams.
MAX_REQUESTS_PER_CONNECTION = 900


class H2Transport:
    """HTTP/2 to deployments: h2c with prior knowledge for http://, TLS with ALPN h2 for https://.

        transport = H2Transport()
        stream = await transport.open_stream(f"{uri}/invoke/Greeter/greet", headers)
        ...
        await transport.close()

    Connections are pooled per (scheme, host, port); a new one is opened when every pooled
    connection is at its stream limit, and a dead one leaves the pool at once.
    """

    def __init__(
        self,
        *,
        connect_timeout: float = CONNECT_TIMEOUT_S,
        max_streams_per_connection: int = MAX_STREAMS_PER_CONNECTION,
        max_requests_per_connection: int = MAX_REQUESTS_PER_CONNECTION,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.connect_timeout = connect_timeout
        self.max_streams_per_connection = max_streams_per_connection
        self.max_requests_per_connection = max_requests_per_connection
        self._ssl_context = ssl_context
        self._alpn_set = False
        self._pools: dict[tuple[str, str, int], list[H2Connection]] = {}
        self._connecting: dict[tuple[str, str, int], asyncio.Task[H2Connection]] = {}

    def connection_count(self, url: str) -> int:
        """How many live connections the pool holds to the origin of `url`."""
        return len(self._pools.get(parse_url(url).origin, ()))

    async def open_stream(self, url: str, headers: Headers) -> H2Stream:
        return await self._open("POST", url, headers, end=False)

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
                stream = await self._open(method, url, headers, end=not body)
                try:
                    if body:
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
        for task in list(self._connecting.values()):
            task.cancel()
        connections = [c for pool in self._pools.values() for c in pool]
        self._pools.clear()
        for conn in connections:
            await conn.aclose()

    async def _open(self, method: str, url: str, headers: Headers, *, end: bool) -> H2Stream:
        target = parse_url(url)
        while True:
            conn = await self._connection(target, url)
            try:
                return conn.open(method, target.path, headers, url, end)
            except ConnectionFull:
                continue  # the stream limit was lower than we knew: look again

    async def _connection(self, target: Target, url: str) -> H2Connection:
        origin = target.origin
        while True:
            for conn in self._pools.get(origin, ()):
                if conn.has_capacity:
                    return conn
            task = self._connecting.get(origin)
            if task is None:
                # The connect runs in its own task, so that a caller cancelled meanwhile
                # (its own timeout) does not fail the others waiting for the same connection.
                task = asyncio.create_task(self._connect(target))
                self._connecting[origin] = task
                task.add_done_callback(_mark_seen)
            try:
                await asyncio.shield(task)
            except ConnectError as exc:
                raise ConnectError(str(exc), url=url) from None
            except asyncio.CancelledError:
                if task.cancelled() and not _current_task_cancelling():
                    raise ConnectError(
                        f"the connection to {target.base} was abandoned: the transport closed",
                        url=url,
                    ) from None
                raise

    async def _connect(self, target: Target) -> H2Connection:
        conn: H2Connection | None = None
        try:
            async with asyncio.timeout(self.connect_timeout):
                reader, writer = await open_socket(target, target.base, self._tls(target))
                if target.scheme == "https":
                    _require_h2_alpn(writer, target)
                conn = H2Connection(
                    target,
                    reader,
                    writer,
                    stream_limit=self.max_streams_per_connection,
                    request_limit=self.max_requests_per_connection,
                    on_closed=self._forget,
                )
                conn.start()
                # Its SETTINGS tell us the stream limit, and that it speaks HTTP/2 at all.
                await conn.ready
        except BaseException as exc:
            if conn is not None:
                conn.close("the connection attempt was abandoned")
            if isinstance(exc, TimeoutError):
                raise ConnectError(
                    f"the deployment at {target.base} did not complete an HTTP/2 handshake "
                    f"within {self.connect_timeout:g}s; check that it is running and speaks "
                    "HTTP/2 (if it only speaks HTTP/1.1, register it with use_http_11)",
                    url=target.base,
                ) from exc
            raise
        finally:
            self._connecting.pop(target.origin, None)
        if conn.stream_limit <= 0:
            await conn.aclose()
            raise ConnectError(
                f"the deployment at {target.base} accepts no streams (MAX_CONCURRENT_STREAMS "
                "is 0); check its HTTP/2 settings",
                url=target.base,
            )
        self._pools.setdefault(target.origin, []).append(conn)
        return conn

    def _tls(self, target: Target) -> ssl.SSLContext | None:
        if target.scheme != "https":
            return None
        if self._ssl_context is None:
            self._ssl_context = tls_context("h2")
        elif not self._alpn_set:
            self._ssl_context.set_alpn_protocols(["h2"])  # a caller's context: offer h2 only
        self._alpn_set = True
        return self._ssl_context

    def _forget(self, conn: H2Connection) -> None:
        pool = self._pools.get(conn.target.origin)
        if pool is not None and conn in pool:
            pool.remove(conn)


def _require_h2_alpn(writer: asyncio.StreamWriter, target: Target) -> None:
    tls = writer.get_extra_info("ssl_object")
    chosen = tls.selected_alpn_protocol() if tls is not None else None
    if chosen != "h2":
        writer.close()
        raise ConnectError(
            f"the deployment at {target.base} did not agree to HTTP/2 over TLS (ALPN chose "
            f"{chosen or 'nothing'}); register it with use_http_11 if it only speaks HTTP/1.1",
            url=target.base,
        )


def _mark_seen(task: asyncio.Task[H2Connection]) -> None:
    # A connect nobody waits for any more must not log "exception was never retrieved".
    if not task.cancelled():
        task.exception()


def _current_task_cancelling() -> bool:
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0
