"""Deployments for the invoker transport tests: small ASGI apps served by hypercorn.

Run: python -m tests.integration.invoker_transport_app --port 9080 [--max-streams N]
     [--max-requests N] [--app restate] [--tls DIR]

HTTP/1.1 and h2c (prior knowledge) share the port, as with `restate.serve`. The test app:
  POST /echo[?late=1][&limit=N]  echoes each request chunk as soon as it arrives (late: the
                                 response starts only after the first chunk; limit: the
                                 response ends after N chunks while the request goes on)
  POST /sink                     reads the whole body, answers {"size", "sha256"}
  GET  /source?size=N            answers N bytes
  *    /status/{code}            answers that status with a short text body
  GET  /discover                 answers JSON naming the HTTP version and the accept header
  GET  /hang                     starts the response, then never ends it
  GET  /stats?tag=T              how many distinct HTTP/2 client connections sent x-test-tag T
With --app restate it serves the official Restate SDK (`restate.app`) with a greeter instead.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import signal
from collections import defaultdict
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qs

import restate
from hypercorn.asyncio import serve
from hypercorn.config import Config

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_clients_by_tag: dict[str, set[tuple[str, int]]] = defaultdict(set)


async def _start(send: Send, status: int = 200, content_type: bytes = b"text/plain") -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", content_type)],
        }
    )


async def _body(send: Send, data: bytes, more: bool = False) -> None:
    await send({"type": "http.response.body", "body": data, "more_body": more})


async def _read_all(receive: Receive) -> bytes:
    parts = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        parts.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(parts)


async def _echo(receive: Receive, send: Send, query: dict[str, list[str]]) -> None:
    late = "late" in query
    limit = int(query["limit"][0]) if "limit" in query else None
    started = False
    if not late:
        await _start(send, content_type=b"application/octet-stream")
        started = True
    count = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return
        if not started:
            await _start(send, content_type=b"application/octet-stream")
            started = True
        chunk = message.get("body", b"")
        if chunk:
            await _body(send, chunk, more=True)
            count += 1
        if not message.get("more_body", False) or (limit is not None and count >= limit):
            break
    if not started:
        await _start(send, content_type=b"application/octet-stream")
    await _body(send, b"")


async def test_app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    headers = {k.decode(): v.decode() for k, v in scope["headers"]}
    tag = headers.get("x-test-tag")
    if tag and scope["http_version"] == "2":
        _clients_by_tag[tag].add(tuple(scope["client"]))
    path: str = scope["path"]
    query = parse_qs(scope["query_string"].decode())
    if path == "/echo":
        await _echo(receive, send, query)
    elif path == "/sink":
        body = await _read_all(receive)
        await _start(send, content_type=b"application/json")
        digest = hashlib.sha256(body).hexdigest()
        await _body(send, json.dumps({"size": len(body), "sha256": digest}).encode())
    elif path == "/source":
        await _read_all(receive)
        await _start(send, content_type=b"application/octet-stream")
        size = int(query["size"][0])
        block = bytes(range(256)) * 256
        while size > 0:
            await _body(send, block[: min(size, len(block))], more=True)
            size -= len(block)
        await _body(send, b"")
    elif path.startswith("/status/"):
        await _read_all(receive)
        status = int(path.rsplit("/", 1)[1])
        await _start(send, status)
        await _body(send, f"status {status} from the transport test app".encode())
    elif path == "/discover":
        await _read_all(receive)
        await _start(send, content_type=b"application/json")
        answer = {"http_version": scope["http_version"], "accept": headers.get("accept")}
        await _body(send, json.dumps(answer).encode())
    elif path == "/hang":
        await _start(send)
        await _body(send, b"started", more=True)
        await asyncio.Event().wait()
    elif path == "/stats":
        await _read_all(receive)
        await _start(send, content_type=b"application/json")
        count = len(_clients_by_tag.get(query["tag"][0], ()))
        await _body(send, json.dumps({"connections": count}).encode())
    else:
        await _read_all(receive)
        await _start(send, 404)
        await _body(send, b"no such path in the transport test app")


greeter = restate.Service("Greeter")


@greeter.handler()
async def greet(ctx: restate.Context, name: str) -> str:
    return f"Hello {name}!"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--max-streams", type=int, default=None)
    parser.add_argument("--max-requests", type=int, default=None)
    parser.add_argument("--app", choices=["test", "restate"], default="test")
    parser.add_argument("--tls", default=None, help="directory holding cert.pem and key.pem")
    args = parser.parse_args()
    config = Config()
    config.bind = [f"127.0.0.1:{args.port}"]
    config.accesslog = None
    if args.max_streams is not None:
        config.h2_max_concurrent_streams = args.max_streams
    if args.max_requests is not None:
        config.keep_alive_max_requests = args.max_requests
    if args.tls is not None:
        config.certfile = f"{args.tls}/cert.pem"
        config.keyfile = f"{args.tls}/key.pem"
    app = restate.app([greeter]) if args.app == "restate" else test_app

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGINT, stop.set)
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        await serve(app, config, shutdown_trigger=stop.wait)  # type: ignore[arg-type]

    asyncio.run(run())


if __name__ == "__main__":
    main()
