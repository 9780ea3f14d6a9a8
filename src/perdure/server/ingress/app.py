"""The ingress as a plain ASGI app: route, read the body, submit an event, answer the Reply.

    request --routes.parse_request--> Invoke | GetOutput | CompleteAwakeable | ...
            --read_body (limit)--> InvocationRequested / AttachRequested / AwakeableCompleted
            --driver.request--> Reply --reply_response--> HTTP

Only the driver talks to the engine, and it answers only after the commit (rule 1), so an
"Accepted" here is durable. A client that disconnects while waiting stops the wait, never the
invocation: the event is already committed and the invocation runs to completion.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Protocol

from perdure.server import errors as E
from perdure.server.asgi import (
    ClientGone,
    Receive,
    Scope,
    Send,
    header,
    headers_of,
    path_of,
    query_params,
    read_body,
    respond,
    respond_error,
    respond_json,
    wait_for_disconnect,
)
from perdure.server.config import DEFAULT_MAX_BODY_BYTES, Config
from perdure.server.errors import INVOCATION_ID_HEADER, Api, PerdureError
from perdure.server.ingress import bearer, payloads, routes
from perdure.server.ingress.routes import (
    CompleteAwakeable,
    GetOutput,
    GetOutputByBody,
    Health,
    Invoke,
    Lookup,
)
from perdure.server.partition.effects import Reply, ReplyKind
from perdure.server.partition.events import (
    AttachRequested,
    AwakeableCompleted,
    CallMode,
    Event,
    InvocationRequested,
)
from perdure.server.registry import HandlerInfo, Registry
from perdure.server.storage.api import Failure, Outcome, Target

log = logging.getLogger("perdure.ingress")

# Open without a token, like Restate's: load balancers and probes carry no credentials, and the
# answer (the names of the registered services) is what `perdure dev` prints anyway.
HEALTH_PATH = "/restate/health"

# Restate rejects an awakeable with this code (codes::INTERNAL); the body is the reason.
AWAKEABLE_REJECT_CODE = 500


class RequestSink(Protocol):
    """What the app needs from the driver: submit an event built with a request id, await."""

    async def request(self, make: Callable[[int], Event]) -> Reply: ...


class InvocationIds(Protocol):
    def invocation_id(self, target: Target, idempotency_key: str | None) -> str: ...


TargetLookup = Callable[[str], Target | None]


class IngressApp:
    """Restate's ingress HTTP API over a `RequestSink`.

    Example (in-process, as the tests do)::

        app = IngressApp(driver, lambda: registry, RandomIds(), config)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app)) as client:
            await client.post("http://ingress/Greeter/greet", json="Ada")
    """

    def __init__(
        self,
        driver: RequestSink,
        get_registry: Callable[[], Registry],
        ids: InvocationIds,
        config: Config | None = None,
        *,
        target_of: TargetLookup | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._driver = driver
        self._registry = get_registry
        self._ids = ids
        self._max_body = config.max_body_bytes if config is not None else DEFAULT_MAX_BODY_BYTES
        host, port = config.admin_bind if config is not None else ("localhost", 9070)
        shown = "localhost" if host in ("0.0.0.0", "::") else host
        # Named in the "service not found" hint; set it again once port 0 is resolved.
        self.admin_address = f"{shown}:{port}" if port else f"{shown}:<admin port>"
        # Bearer tokens (config.py): this port's, and the admin's to spot a mix-up.
        self._token = config.ingress_token if config is not None else None
        self._other_token = config.admin_token if config is not None else None
        # Where attach-by-id learns the handler, for the output's content-type (optional).
        self._target_of = target_of
        self._clock = clock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        try:
            if self._token is not None and path_of(scope) != HEALTH_PATH:
                refused = bearer.refusal(
                    scope["headers"], self._token, api=Api.INGRESS, other=self._other_token
                )
                if refused is not None:
                    raise refused
            await self._handle(scope, receive, send)
        except ClientGone:
            return
        except PerdureError as error:
            await respond_error(send, error, Api.INGRESS)
        except Exception as exc:
            log.exception("ingress request %s %s failed", scope.get("method"), scope.get("path"))
            await respond_error(
                send, PerdureError(E.INTERNAL, f"The request failed: {exc!r}."), Api.INGRESS
            )

    async def _handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        registry = self._registry()
        headers = headers_of(scope)
        request = routes.parse_request(
            scope["method"],
            path_of(scope),
            query_params(scope),
            headers,
            registry,
            admin_address=self.admin_address,
        )
        if isinstance(request, PerdureError):
            raise request
        if isinstance(request, Invoke):
            await self._invoke(request, scope, headers, receive, send)
        elif isinstance(request, GetOutput):
            await self._output(request, registry, receive, send)
        elif isinstance(request, CompleteAwakeable):
            await self._awakeable(request, scope, receive, send)
        elif isinstance(request, GetOutputByBody | Lookup):
            body = await read_body(receive, self._max_body, header(scope, b"content-length"))
            wait = request.wait if isinstance(request, GetOutputByBody) else False
            target = routes.parse_target_body(body, wait, registry)
            if isinstance(target, PerdureError):
                raise target
            if isinstance(request, Lookup):
                await respond_json(send, 200, {"invocationId": routes.lookup_id(target)})
            else:
                await self._output(target, registry, receive, send)
        elif isinstance(request, Health):
            await respond_json(send, 200, {"services": registry.service_names()})

    # --- call / send --------------------------------------------------------------------------

    async def _invoke(
        self,
        request: Invoke,
        scope: Scope,
        headers: list[tuple[str, str]],
        receive: Receive,
        send: Send,
    ) -> None:
        body = await read_body(receive, self._max_body, header(scope, b"content-length"))
        rejected = payloads.check_input(
            request.handler, request.target.service, header(scope, b"content-type"), body
        )
        if rejected is not None:
            raise rejected
        target = request.target
        invocation_id = self._ids.invocation_id(target, request.idempotency_key)
        query = scope.get("query_string", b"").decode("latin-1")
        forwarded = routes.forwarded_headers(
            headers, path_of(scope) + (f"?{query}" if query else "")
        )
        execution_time = None
        if request.delay_ms:
            execution_time = int(self._clock() * 1000) + request.delay_ms

        def make(request_id: int) -> Event:
            return InvocationRequested(
                request_id=request_id,
                invocation_id=invocation_id,
                target=target,
                payload=body,
                headers=forwarded,
                mode=request.mode,
                idempotency_key=request.idempotency_key,
                execution_time=execution_time,
            )

        if request.mode is CallMode.SEND:
            reply = await self._driver.request(make)
            if reply.kind is ReplyKind.ACCEPTED:
                await _accepted(send, reply, invocation_id, execution_time)
                return
        else:
            waited = await self._wait(make, receive)
            if waited is None:
                return  # the client left; the invocation carries on
            reply = waited
        await self._answer(send, reply, request.handler)

    async def _wait(self, make: Callable[[int], Event], receive: Receive) -> Reply | None:
        """The Reply, or None if the client disconnects first (only the wait is dropped).

        One watcher task reads `receive` (which returns only on disconnect once the body is
        read) and cancels this task if the client goes; a cancellation from anyone else still
        propagates (`uncancel` tells them apart).
        """
        task = asyncio.current_task()
        assert task is not None
        left = False

        def on_gone(watcher: asyncio.Future[None]) -> None:
            nonlocal left
            if not watcher.cancelled():
                watcher.exception()  # a broken receive counts as gone; mark it retrieved
                left = True
                task.cancel()

        gone = asyncio.ensure_future(wait_for_disconnect(receive))
        gone.add_done_callback(on_gone)
        try:
            return await self._driver.request(make)
        except asyncio.CancelledError:
            if left and task.uncancel() == 0:
                return None
            raise
        finally:
            gone.remove_done_callback(on_gone)
            gone.cancel()

    # --- attach / output --------------------------------------------------------------------

    async def _output(
        self, request: GetOutput, registry: Registry, receive: Receive, send: Send
    ) -> None:
        def make(request_id: int) -> Event:
            return AttachRequested(
                request_id=request_id,
                by=request.by,
                wait=request.wait,
                invocation_id=request.invocation_id,
                target=request.target,
                idempotency_key=request.idempotency_key,
            )

        if request.wait:
            reply = await self._wait(make, receive)
            if reply is None:
                return
        else:
            reply = await self._driver.request(make)
        target = request.target
        if target is None and reply.invocation_id is not None and self._target_of is not None:
            target = self._target_of(reply.invocation_id)
        handler = registry.handler(target.service, target.handler) if target else None
        await self._answer(send, reply, handler)

    # --- awakeables -------------------------------------------------------------------------

    async def _awakeable(
        self, request: CompleteAwakeable, scope: Scope, receive: Receive, send: Send
    ) -> None:
        body = await read_body(receive, self._max_body, header(scope, b"content-length"))
        if request.resolve:
            outcome = Outcome(value=body)
        else:
            reason = body.decode("utf-8", "replace")
            outcome = Outcome(failure=Failure(AWAKEABLE_REJECT_CODE, reason))

        def make(request_id: int) -> Event:
            return AwakeableCompleted(request_id, request.invocation_id, request.index, outcome)

        reply = await self._driver.request(make)
        if reply.kind is ReplyKind.ERROR:
            raise engine_error(reply)
        await respond(send, 202)

    # --- replies ----------------------------------------------------------------------------

    async def _answer(self, send: Send, reply: Reply, handler: HandlerInfo | None) -> None:
        if reply.kind is ReplyKind.OUTPUT and reply.outcome is not None:
            outcome = reply.outcome
            if outcome.failure is not None:
                status, headers, body = E.failure_response(outcome.failure, reply.invocation_id)
                await respond(send, status, body, headers)
                return
            value = outcome.value or b""
            out: list[tuple[bytes, bytes]] = []
            if reply.invocation_id is not None:
                out.append((INVOCATION_ID_HEADER, reply.invocation_id.encode()))
            if reply.expires_at is not None:  # an idempotent invocation: when its key expires
                out.append((b"idempotency-expires", _rfc3339(reply.expires_at).encode()))
            content_type = payloads.output_content_type(handler, not value)
            if content_type is not None:
                out.append((b"content-type", content_type.encode("latin-1")))
            await respond(send, 200, value, out)
        elif reply.kind is ReplyKind.ACCEPTED and reply.invocation_id is not None:
            await _accepted(send, reply, reply.invocation_id, None)
        elif reply.kind is ReplyKind.NOT_READY:
            raise PerdureError(E.NOT_READY, "The invocation exists but has not completed yet.")
        else:
            raise engine_error(reply)


def engine_error(reply: Reply) -> PerdureError:
    """A refusal from the engine (partition or driver): its status and sentence, kept."""
    kind = {
        404: E.INVOCATION_NOT_FOUND,
        409: E.CONFLICT,
        470: E.NOT_READY,
        500: E.INTERNAL,
        503: E.UNAVAILABLE,
    }.get(reply.status, E.REQUEST_FAILED)
    message = reply.message or kind.summary
    if not message.endswith("."):
        message += "."
    # The engine's sentences already say what to do; only the generic kinds add a hint.
    hint = None if kind in (E.UNAVAILABLE, E.INTERNAL) else ""
    return PerdureError(kind, message[:1].upper() + message[1:], hint=hint, status=reply.status)


async def _accepted(
    send: Send, reply: Reply, invocation_id: str, execution_time: int | None
) -> None:
    document: dict[str, object] = {
        "invocationId": reply.invocation_id or invocation_id,
        "status": "PreviouslyAccepted" if reply.previously_accepted else "Accepted",
    }
    if execution_time is not None and not reply.previously_accepted:
        document["executionTime"] = _rfc3339(execution_time)
    await respond_json(
        send, 202, document, [(INVOCATION_ID_HEADER, str(document["invocationId"]).encode())]
    )


def _rfc3339(ms: int) -> str:
    seconds, millis = divmod(ms, 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{millis:03d}Z"


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


__all__ = ["IngressApp", "RequestSink", "engine_error"]
