"""A small keep-alive HTTP/1.1 client for the bench's own load generators (soak, scale).

httpx costs several times the CPU per request; on a 2-core machine a sender that waits for a
core shows up as server latency. 127.0.0.1 only, plain HTTP, JSON bodies.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any
from urllib.parse import urlsplit


class Answer:
    """The parts of an HTTP answer the sender reads."""

    __slots__ = ("body", "status_code")

    def __init__(self, status_code: int, body: bytes) -> None:
        self.status_code, self.body = status_code, body

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def json(self) -> Any:
        return json.loads(self.body)


class _ClosedBeforeAnswer(ConnectionResetError):
    """The connection ended before a status line came back."""


IDLE_REUSE_S = 20.0

# What a failed exchange raises: a refused or reset connection, a timeout (an OSError too), or
# an answer cut short.
TRANSPORT_ERRORS = (OSError, asyncio.IncompleteReadError, ValueError)


class Http1Client:
    """A small keep-alive HTTP/1.1 client for load generators: a pool of `size` connections.

    httpx costs several times the CPU per request, and on a busy 2-core machine a sender that
    waits for a core shows up as server latency. This one does only what the soak needs:
    JSON bodies, and answers with a content-length or chunked.
    """

    def __init__(self, base_url: str, size: int, timeout: float = 120.0) -> None:
        parts = urlsplit(base_url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.timeout = timeout
        # (reader, writer, when it was last used): most recently used last.
        self._idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter, float]] = []
        self._slots = asyncio.Semaphore(size)

    async def aclose(self) -> None:
        for _, writer, _ in self._idle:
            writer.close()
        self._idle.clear()

    async def post(
        self, path: str, json: Any = None, headers: dict[str, str] | None = None
    ) -> Answer:
        body = b"" if json is None else _json_bytes(json)
        return await self.request("POST", path, body, headers or {})

    async def get(self, path: str) -> Answer:
        return await self.request("GET", path, b"", {})

    async def request(self, method: str, path: str, body: bytes, headers: dict[str, str]) -> Answer:
        async with self._slots:
            reader, writer, reused = await self._connection()
            try:
                answer, keep = await asyncio.wait_for(
                    self._exchange(reader, writer, method, path, body, headers), self.timeout
                )
            except _ClosedBeforeAnswer:
                writer.close()
                if not reused:
                    raise
                # The server closed an idle connection as the request went out, before reading
                # it (nothing was answered, so nothing was done): once more on a new one.
                reader, writer = await asyncio.open_connection(self.host, self.port)
                answer, keep = await asyncio.wait_for(
                    self._exchange(reader, writer, method, path, body, headers), self.timeout
                )
            except BaseException:
                writer.close()
                raise
            if keep:
                self._idle.append((reader, writer, time.monotonic()))
            else:
                writer.close()
            return answer

    async def _connection(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, bool]:
        while self._idle:
            reader, writer, used = self._idle.pop()
            # Well inside the server's keep-alive (75 s), so it rarely closes one under us.
            if time.monotonic() - used < IDLE_REUSE_S and not reader.at_eof():
                return reader, writer, True
            writer.close()
        reader, writer = await asyncio.open_connection(self.host, self.port)
        return reader, writer, False

    async def _exchange(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        method: str,
        path: str,
        body: bytes,
        headers: dict[str, str],
    ) -> tuple[Answer, bool]:
        head = f"{method} {path} HTTP/1.1\r\nhost: {self.host}\r\n"
        if body:
            head += f"content-type: application/json\r\ncontent-length: {len(body)}\r\n"
        head += "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        writer.write(head.encode("latin-1") + b"\r\n" + body)
        try:
            status_line = await reader.readline()
        except ConnectionResetError:
            status_line = b""
        if not status_line:
            raise _ClosedBeforeAnswer("the server closed the connection before answering")
        status = int(status_line.split(b" ", 2)[1])
        length, keep, chunked = 0, True, False
        while (line := await reader.readline()) not in (b"\r\n", b"\n", b""):
            name, _, value = line.partition(b":")
            name, value = name.strip().lower(), value.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"connection" and value == b"close":
                keep = False
            elif name == b"transfer-encoding" and b"chunked" in value:
                chunked = True
        if chunked:  # restate-server's ingress answers some requests this way
            parts = []
            while (size := int((await reader.readline()).split(b";")[0], 16)) > 0:
                parts.append((await reader.readexactly(size + 2))[:-2])
            await reader.readline()
            return Answer(status, b"".join(parts)), keep
        return Answer(status, await reader.readexactly(length) if length else b""), keep


def _json_bytes(value: Any) -> bytes:
    return json.dumps(value).encode()
