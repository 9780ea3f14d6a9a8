"""The ASGI endpoint a server talks to: GET /discover and POST /invoke/{service}/{handler}.

Theory of operation. ``GET .../discover`` answers with the manifest of the hosted services, in
the newest manifest version the ``Accept`` header allows. ``POST .../invoke/{service}/{handler}``
carries one invocation attempt: the request body is the server's stream of protocol frames, the
response body ours. In BIDI_STREAM mode (HTTP/2) both bodies are open at once, so the runtime
reads frames while it writes; in REQUEST_RESPONSE mode (HTTP/1.1) the whole request body is
read first. When the runtime is done, the endpoint waits (briefly) for the server to close its
side before closing ours, because hypercorn forgets a stream as soon as the app ends it. If the
server goes away mid-attempt, the attempt is cancelled: the journal lives on the server, and it
retries with a fresh attempt.
"""

from __future__ import annotations

import asyncio
import dataclasses
import importlib
import logging
from collections.abc import Awaitable, Callable, Coroutine, Iterable, MutableMapping, Sequence
from typing import Any, Literal

from perdure.protocol import discovery as pd
from perdure.protocol import versions
from perdure.protocol.errors import UnsupportedVersion
from perdure.sdk.discovery import DiscoveryError, build_manifest, discovery_answer
from perdure.sdk.handler import Handler
from perdure.sdk.identity import IdentityError, IdentityVerifier
from perdure.sdk.serde import SerdeError
from perdure.sdk.service import Definition

__all__ = ["Endpoint", "ProtocolModeName", "Runtime", "app"]

logger = logging.getLogger("perdure.sdk")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ProtocolModeName = Literal["bidi", "request_response"]
Runtime = Callable[..., Coroutine[Any, Any, None]]
"""``run_invocation(spec, *, protocol_version, receive, send, request_response, headers)``."""

SDK_NAME = "perdure-sdk-python"
# After the runtime has said its last word, the server closes its side of the stream; if it
# never does (a proxy keeping the stream open), stop waiting after this many seconds.
INPUT_CLOSE_GRACE_SECONDS = 30.0
# Discovery and error requests are small; an error answer drains at most this much of a body
# so that an HTTP/1.1 connection stays reusable, and drops the connection beyond it.
MAX_DRAIN_BYTES = 1 << 20


def _sdk_version() -> str:
    from perdure import __version__

    return __version__


@dataclasses.dataclass(frozen=True, slots=True)
class _Route:
    kind: Literal["discover", "invoke", "health", "unknown"]
    service: str = ""
    handler: str = ""


def parse_route(path: str) -> _Route:
    """Route by the path's tail: the endpoint may be mounted under any prefix."""
    parts = path.rstrip("/").split("/")
    if len(parts) >= 4 and parts[-3] == "invoke":
        return _Route("invoke", parts[-2], parts[-1])
    if parts[-1] in ("discover", "discovery"):
        return _Route("discover")
    if parts[-1] == "health":
        return _Route("health")
    return _Route("unknown")


class Endpoint:
    """An ASGI application serving Perdure services to a Restate or Perdure server.

    Build it with :func:`perdure.app`; serve it with :func:`perdure.serve` or any ASGI server
    that speaks HTTP/2 (hypercorn) for the bidirectional mode.

    Example::

        endpoint = perdure.app([greeter, counter])
        # hypercorn module:endpoint --bind 127.0.0.1:9080
    """

    def __init__(
        self,
        definitions: Iterable[Definition],
        *,
        protocol_mode: ProtocolModeName | None = None,
        identity_keys: Sequence[str] = (),
        runtime: Runtime | None = None,
    ) -> None:
        if protocol_mode not in (None, "bidi", "request_response"):
            raise ValueError(
                f"protocol_mode is 'bidi' or 'request_response', not {protocol_mode!r}"
            )
        self.definitions = tuple(definitions)
        self.protocol_mode = protocol_mode
        self._handlers: dict[str, dict[str, Handler]] = {
            d.name: dict(d.handlers) for d in self.definitions
        }
        supported = sorted(versions.SDK_VERSIONS)
        self.manifest: pd.Endpoint = build_manifest(
            self.definitions,
            min_protocol_version=int(supported[0]),
            max_protocol_version=int(supported[-1]),
        )
        self._verifier = IdentityVerifier(identity_keys)
        self._runtime = runtime
        self._specs: dict[tuple[str, str], Any] = {}
        self._attempts: set[_Attempt] = set()
        self._server_header = (b"x-restate-server", f"{SDK_NAME}/{_sdk_version()}".encode())

    def __repr__(self) -> str:
        return f"Endpoint(services={[d.name for d in self.definitions]})"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return  # websockets and the like: not ours; the server closes them
        route = parse_route(scope["path"])
        if route.kind == "health":
            await self._answer(receive, send, 200, b'{"status":"ok"}', "application/json")
            return
        headers = _header_dict(scope)
        try:
            self._verifier.verify(headers, scope["path"])
        except IdentityError as exc:
            await self._answer(receive, send, 401, str(exc))
            return
        if route.kind == "discover":
            await self._discover(scope, receive, send, headers)
        elif route.kind == "invoke":
            await self._invoke(scope, receive, send, route, headers)
        else:
            await self._answer(receive, send, 404, self._not_found_message(scope["path"]))

    # -- discovery --------------------------------------------------------------------------

    async def _discover(
        self, scope: Scope, receive: Receive, send: Send, headers: dict[str, str]
    ) -> None:
        if scope["method"] not in ("GET", "HEAD"):
            await self._answer(receive, send, 405, "use GET to discover this endpoint")
            return
        try:
            content_type, body = discovery_answer(
                self.manifest, headers.get("accept"), self._discovered_mode(scope)
            )
        except DiscoveryError as exc:
            await self._answer(receive, send, exc.status, exc.message)
            return
        await self._answer(receive, send, 200, body, content_type)

    def _discovered_mode(self, scope: Scope) -> Literal["BIDI_STREAM", "REQUEST_RESPONSE"]:
        if self.protocol_mode is not None:
            return "BIDI_STREAM" if self.protocol_mode == "bidi" else "REQUEST_RESPONSE"
        # Asked over HTTP/1.x, answer REQUEST_RESPONSE: full duplex is not reliable there.
        return "REQUEST_RESPONSE" if _is_http1(scope) else "BIDI_STREAM"

    # -- invocation -------------------------------------------------------------------------

    async def _invoke(
        self, scope: Scope, receive: Receive, send: Send, route: _Route, headers: dict[str, str]
    ) -> None:
        if scope["method"] != "POST":
            await self._answer(receive, send, 405, "invocations are POSTed by the server")
            return
        handler = self._handlers.get(route.service, {}).get(route.handler)
        if handler is None:
            await self._answer(receive, send, 404, self._unknown_handler(route))
            return
        try:
            version = versions.require_version(headers.get("content-type"))
        except UnsupportedVersion as exc:
            await self._answer(receive, send, 415, str(exc))
            return
        runtime = self._runtime or _default_runtime()
        if runtime is None:
            await self._answer(
                receive,
                send,
                500,
                "the invocation runtime (perdure.sdk.invocation) is missing from this install",
            )
            return
        request_response = self.protocol_mode == "request_response" or (
            self.protocol_mode is None and _is_http1(scope)
        )
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", version.content_type.encode()), self._server_header],
            }
        )
        attempt = _Attempt(receive, send)
        self._attempts.add(attempt)
        try:
            await attempt.run(
                runtime,
                self._spec(handler),
                protocol_version=int(version),
                request_response=request_response,
                headers=list(headers.items()),
            )
        finally:
            self._attempts.discard(attempt)

    def cut_attempts(self) -> int:
        """End every running attempt now, closing its stream; returns how many there were.

        For shutting down: the server sees each stream end early and retries the attempt
        from its journal (on this endpoint's successor), so nothing is lost. Call it from
        the loop that serves the endpoint.

        Example::

            loop.call_later(10.0, endpoint.cut_attempts)   # after a grace period
        """
        attempts = list(self._attempts)
        for attempt in attempts:
            attempt.cut()
        if attempts:
            logger.info(
                "shutting down: cut %d running attempt(s); the server retries them", len(attempts)
            )
        return len(attempts)

    def _spec(self, handler: Handler) -> Any:
        key = (handler.service_name, handler.name)
        spec = self._specs.get(key)
        if spec is None:
            spec = self._specs[key] = handler_spec(handler)
        return spec

    # -- plain answers ----------------------------------------------------------------------

    async def _answer(
        self,
        receive: Receive,
        send: Send,
        status: int,
        body: bytes | str,
        content_type: str = "text/plain; charset=utf-8",
    ) -> None:
        data = body.encode("utf-8") if isinstance(body, str) else body
        if status >= 400:
            logger.info("answering %d: %s", status, data.decode("utf-8", "replace"))
        await _drain(receive)
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", content_type.encode()),
                    (b"content-length", str(len(data)).encode()),
                    self._server_header,
                ],
            }
        )
        await send({"type": "http.response.body", "body": data, "more_body": False})

    def _not_found_message(self, path: str) -> str:
        return (
            f"{path!r} is not a path of this endpoint. It is a Restate service endpoint: the "
            "server GETs /discover and POSTs /invoke/{service}/{handler}. To call a handler, go "
            "through the server's ingress instead (e.g. POST http://127.0.0.1:8080/Service/handler)."
        )

    def _unknown_handler(self, route: _Route) -> str:
        handlers = self._handlers.get(route.service)
        if handlers is None:
            known = ", ".join(self._handlers) or "none"
            return (
                f"service {route.service!r} is not served here (services: {known}); the server "
                "may hold an old registration: re-register this deployment"
            )
        return (
            f"service {route.service!r} has no handler {route.handler!r} (handlers: "
            f"{', '.join(handlers)}); re-register this deployment if it changed"
        )


def app(
    services: Iterable[Definition],
    *,
    protocol_mode: ProtocolModeName | None = None,
    identity_keys: Sequence[str] = (),
    runtime: Runtime | None = None,
) -> Endpoint:
    """Build the ASGI app that serves ``services`` to a Restate or Perdure server.

    ``protocol_mode`` forces the mode announced at discovery; by default it follows the HTTP
    version of the discovery request (HTTP/2: ``bidi``, HTTP/1.1: ``request_response``).
    ``identity_keys`` (``publickeyv1_...``) make the endpoint refuse requests not signed by
    one of those server keys. ``runtime`` replaces the invocation runtime (for tests).

    Example::

        application = perdure.app([greeter, counter], identity_keys=["publickeyv1_..."])
    """
    return Endpoint(
        services, protocol_mode=protocol_mode, identity_keys=identity_keys, runtime=runtime
    )


def handler_spec(handler: Handler) -> Any:
    """The runtime's ``HandlerSpec`` for a handler: names, function, and payload codecs."""
    spec_type = _invocation_attr("HandlerSpec") or _PendingHandlerSpec
    return spec_type(
        service_name=handler.service_name,
        handler_name=handler.name,
        service_type=handler.service_type,
        handler_type=handler.handler_type,
        fn=handler.fn,
        decode_input=_input_decoder(handler),
        encode_output=handler.output.serde.serialize,
    )


@dataclasses.dataclass(frozen=True, slots=True)
class _PendingHandlerSpec:
    """Stands in for ``perdure.sdk.invocation.HandlerSpec`` until that module is installed."""

    service_name: str
    handler_name: str
    service_type: str
    handler_type: str | None
    fn: Callable[..., Awaitable[Any]]
    decode_input: Callable[[bytes], Any]
    encode_output: Callable[[Any], bytes]


def _input_decoder(handler: Handler) -> Callable[[bytes], Any]:
    deserialize = handler.input.serde.deserialize
    where = f"{handler.service_name}.{handler.name}"

    def decode(data: bytes) -> Any:
        try:
            return deserialize(data)
        except SerdeError as exc:
            # Retrying cannot fix bad input: fail the invocation for good, with a 400.
            raise _terminal_error(f"cannot read the input of {where}: {exc}", 400) from exc

    return decode


def _terminal_error(message: str, status: int) -> Exception:
    errors = _optional_module("perdure.sdk.errors")
    terminal = getattr(errors, "TerminalError", None)
    if terminal is None:
        return SerdeError(message)
    return terminal(message, status_code=status)  # type: ignore[no-any-return]


def _optional_module(name: str) -> Any:
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name != name:
            raise  # the module exists but something it imports does not: a real bug
        return None


def _invocation_attr(name: str) -> Any:
    return getattr(_optional_module("perdure.sdk.invocation"), name, None)


def _default_runtime() -> Runtime | None:
    runtime: Runtime | None = _invocation_attr("run_invocation")
    return runtime


def _header_dict(scope: Scope) -> dict[str, str]:
    # Later duplicates win; Restate sends each of the headers we read once.
    return {
        name.decode("latin-1").lower(): value.decode("latin-1")
        for name, value in scope.get("headers", ())
    }


def _is_http1(scope: Scope) -> bool:
    return str(scope.get("http_version", "1.1")).startswith("1")


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def _drain(receive: Receive) -> None:
    """Read (and drop) a request body before answering, so the connection stays usable."""
    seen = 0
    while seen <= MAX_DRAIN_BYTES:
        message = await receive()
        if message["type"] != "http.request":
            return
        seen += len(message.get("body", b""))
        if not message.get("more_body", False):
            return


class _Attempt:
    """One invocation attempt: the server's stream in, ours out, and the runtime between.

    A reader task owns ``receive()``: it queues the request body and keeps listening after the
    body ends, so a server that goes away is noticed even while the handler is busy.
    """

    def __init__(self, receive: Receive, send: Send) -> None:
        self._receive = receive
        self._send = send
        self._chunks: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._input_complete = asyncio.Event()
        self._input_read = False
        self._gone = asyncio.Event()
        self._cut = asyncio.Event()

    def cut(self) -> None:
        """Stop the attempt and end our side of the stream (the endpoint is shutting down)."""
        self._cut.set()

    async def run(self, runtime: Runtime, spec: Any, **options: Any) -> None:
        where = f"{spec.service_name}/{spec.handler_name}"
        reader = asyncio.create_task(self._read_request())
        gone = asyncio.create_task(self._gone.wait())
        cut = asyncio.create_task(self._cut.wait())
        task: asyncio.Task[None] | None = None
        try:
            if options["request_response"]:
                # REQUEST_RESPONSE: the server sends all it has, then waits for our answer.
                complete = asyncio.create_task(self._input_complete.wait())
                await asyncio.wait({complete, gone, cut}, return_when=asyncio.FIRST_COMPLETED)
                complete.cancel()
                if self._gone.is_set() or self._cut.is_set():
                    await self._end_output()
                    return
            task = asyncio.create_task(
                runtime(spec, receive=self.read, send=self.write, **options),
                name=f"perdure invocation {where}",
            )
            await asyncio.wait({task, gone, cut}, return_when=asyncio.FIRST_COMPLETED)
            if not task.done():
                if self._cut.is_set():
                    logger.info("%s: attempt cut short by the shutdown", where)
                    task.cancel()
                    await asyncio.gather(task, return_exceptions=True)
                    await self._end_output()
                else:
                    logger.info("%s: the server went away; attempt cancelled", where)
                return
            exc = task.exception()
            if exc is not None:
                logger.error("%s: the invocation runtime failed", where, exc_info=exc)
            await self._close_output()
        finally:
            pending = [t for t in (task, gone, cut, reader) if t is not None]
            for t in pending:
                t.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    async def _read_request(self) -> None:
        while True:
            message = await self._receive()
            if message["type"] == "http.disconnect":
                self._gone.set()
                self._end_input()
                return
            body = message.get("body", b"")
            if body:
                self._chunks.put_nowait(bytes(body))
            if not message.get("more_body", False):
                self._end_input()
                # Keep listening: the next message can only be http.disconnect.

    def _end_input(self) -> None:
        if not self._input_complete.is_set():
            self._input_complete.set()
            self._chunks.put_nowait(None)

    async def read(self) -> bytes | None:
        """The next chunk of the server's stream, or ``None`` once it has ended."""
        if self._input_read:
            return None
        chunk = await self._chunks.get()
        if chunk is None:
            self._input_read = True
        return chunk

    async def write(self, data: bytes) -> None:
        """Send one chunk of our stream to the server."""
        if self._gone.is_set():
            return
        try:
            await self._send({"type": "http.response.body", "body": data, "more_body": True})
        except Exception:  # the ASGI server's way of saying the peer left differs per server
            self._gone.set()

    async def _end_output(self) -> None:
        """End our stream at once, without waiting for the server to end its side."""
        if self._gone.is_set():
            return
        try:
            await self._send({"type": "http.response.body", "body": b"", "more_body": False})
        except Exception:  # the peer left already
            self._gone.set()

    async def _close_output(self) -> None:
        if self._gone.is_set():
            return
        if not self._input_complete.is_set():
            try:
                async with asyncio.timeout(INPUT_CLOSE_GRACE_SECONDS):
                    await self._input_complete.wait()
            except TimeoutError:
                logger.warning("the server kept its side of the stream open; closing ours")
        try:
            await self._send({"type": "http.response.body", "body": b"", "more_body": False})
        except Exception:  # the peer left between our last two messages
            self._gone.set()
