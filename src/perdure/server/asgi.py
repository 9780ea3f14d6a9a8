"""Plain-ASGI plumbing shared by the ingress and admin apps: bodies with a limit, answers.

No framework: the apps are `async def __call__(scope, receive, send)` objects, and these few
functions are all they need around it. Kept free of per-request allocation beyond what the
answer itself needs, because every request goes through them.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qsl

from perdure.server.errors import (
    JSON,
    Api,
    Headers,
    PerdureError,
    body_too_large,
    to_response,
)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class ClientGone(Exception):
    """The client disconnected before its request was read whole; nobody to answer."""


def header(scope: Scope, name: bytes) -> str | None:
    """The first value of header `name` (lower case), decoded as latin-1, or None."""
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


def headers_of(scope: Scope) -> list[tuple[str, str]]:
    return [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]]


def query_params(scope: Scope) -> list[tuple[str, str]]:
    raw = scope.get("query_string", b"")
    if not raw:
        return []
    return parse_qsl(raw.decode("latin-1"), keep_blank_values=True)


def path_of(scope: Scope) -> str:
    """The path as sent, still percent-encoded: keys are decoded segment by segment later."""
    raw = scope.get("raw_path")
    if raw:
        return str(raw.decode("latin-1")).partition("?")[0]
    return str(scope["path"])


async def read_body(receive: Receive, limit: int, declared: str | None = None) -> bytes:
    """The whole request body; a 413 `PerdureError` as soon as it would pass `limit`.

    A declared Content-Length over the limit is refused before anything is read, and a
    streamed body is never buffered past the limit.
    """
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise body_too_large(limit)
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone()
        chunk = message.get("body", b"")
        if chunk:
            size += len(chunk)
            if size > limit:
                raise body_too_large(limit)
            chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def wait_for_disconnect(receive: Receive) -> None:
    """Returns when the client goes away (call only once the body has been read)."""
    while (await receive())["type"] != "http.disconnect":
        pass


async def respond(
    send: Send, status: int, body: bytes = b"", headers: Headers | None = None
) -> None:
    out = list(headers) if headers else []
    out.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": out})
    await send({"type": "http.response.body", "body": body})


async def respond_json(
    send: Send, status: int, document: object, headers: Headers | None = None
) -> None:
    await respond(send, status, json.dumps(document).encode(), [JSON, *(headers or [])])


async def respond_error(send: Send, error: PerdureError, api: Api) -> None:
    status, out, body = to_response(error, api)
    await respond(send, status, body, out)
