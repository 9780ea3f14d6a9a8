"""A deployment that misbehaves on demand: the official SDK app behind a fault injector.

Run: python -m tests.crash.faulty_deployment --port P

It serves the services of `tests.services.crash_app` (official `restate-sdk`, hypercorn, h2c
and HTTP/1.1 on one port). ``POST /fault {"mode": M, "count": N}`` makes the next N requests
of the kind the mode names misbehave, after which the SDK answers them again:

- ``stall``: an invoke gets response headers, then nothing (no frame, no end) until dropped;
- ``silent``: an invoke gets no answer at all, not even headers;
- ``garbage``: an invoke is answered 200 with bytes that are not Restate frames;
- ``truncate``: an invoke is answered 200 with half a frame, then the stream ends;
- ``http500`` / ``http503``: an invoke is answered with that status and a short text;
- ``discovery-stall``: ``/discover`` never answers.

``GET /fault`` answers how many requests misbehaved so far, by mode.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections import Counter
from typing import Any

import restate
from tests.services.crash_app import SERVICES

Scope = dict[str, Any]
Receive = Any
Send = Any


class FaultInjector:
    def __init__(self, app: Any) -> None:
        self.app = app
        self.mode: str | None = None
        self.remaining = 0
        self.injected: Counter[str] = Counter()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        if path == "/fault":
            await self._control(scope, receive, send)
            return
        mode = self._take(path)
        if mode is None:
            await self.app(scope, receive, send)
            return
        self.injected[mode] += 1
        await _misbehave(mode, scope, send)

    def _take(self, path: str) -> str | None:
        if self.remaining <= 0 or self.mode is None:
            return None
        is_discovery = path.endswith("/discover")
        if is_discovery != (self.mode == "discovery-stall"):
            return None
        self.remaining -= 1
        return self.mode

    async def _control(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] == "POST":
            body = b""
            while True:
                message = await receive()
                body += message.get("body", b"")
                if not message.get("more_body"):
                    break
            order = json.loads(body)
            self.mode, self.remaining = order["mode"], int(order["count"])
        answer = json.dumps(dict(self.injected)).encode()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": answer})


def _content_type(scope: Scope) -> bytes:
    for name, value in scope["headers"]:
        if name == b"content-type":
            return bytes(value)
    return b"application/vnd.restate.invocation.v5"


async def _misbehave(mode: str, scope: Scope, send: Send) -> None:
    ctype = _content_type(scope)
    if mode in ("silent", "discovery-stall"):
        await asyncio.sleep(3600)  # until the caller gives up and drops the stream
    elif mode == "stall":
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"content-type", ctype)]}
        )
        await asyncio.sleep(3600)
    elif mode == "garbage":
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"content-type", ctype)]}
        )
        await send({"type": "http.response.body", "body": b"\xde\xad\xbe\xef" * 16})
    elif mode == "truncate":
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"content-type", ctype)]}
        )
        # A frame header announcing 1000 bytes (type 0x0000 Start... any type), then 10 of them.
        await send(
            {"type": "http.response.body", "body": b"\x00\x00\x00\x00\x00\x00\x03\xe8" + b"x" * 10}
        )
    else:
        status = 500 if mode == "http500" else 503
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"text/plain")],
            }
        )
        await send({"type": "http.response.body", "body": f"injected {status}".encode()})


def main() -> None:
    from hypercorn.asyncio import serve
    from hypercorn.config import Config

    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    config = Config()
    config.bind = [f"127.0.0.1:{args.port}"]
    config.h2_max_concurrent_streams = 2**31 - 1
    config.keep_alive_timeout = 3600
    config.accesslog = None
    app = FaultInjector(restate.app(SERVICES))
    asyncio.run(serve(app, config))  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
