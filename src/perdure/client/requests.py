"""Ingress and admin requests as plain values, and their answers parsed into results or errors.

Nothing here does I/O. Each builder returns a :class:`Call`: the HTTP request to make and the
function that reads its answer. ``Client`` and ``AsyncClient`` only move those values across
httpx, so the two cannot drift apart (the shape of httpx's own auth flows).

The paths are Restate's ingress API (restate ``crates/ingress-http/src/handler/``):

================================================  ======================================
``POST /{service}/{handler}``                     call; ``/{object}/{key}/{handler}`` keyed
``POST .../send?delay=PT5S``                      send (202 ``{"invocationId","status"}``)
``GET /restate/invocation/{id}/attach|output``    by invocation id
``GET /restate/invocation/{svc}[/{key}]/{handler}/{idempotency key}/attach|output``
``GET /restate/workflow/{name}/{key}/attach|output``
``POST /restate/awakeables/{id}/resolve|reject``  (202)
``POST {admin}/deployments``                      register a deployment (201)
================================================  ======================================
"""

from __future__ import annotations

import dataclasses
import datetime
import json
from collections.abc import Callable, Mapping
from typing import Any, Generic, Literal, TypeVar
from urllib.parse import quote

from perdure.client.errors import (
    ClientError,
    ConflictError,
    IngressError,
    InvocationFailedError,
    NotFoundError,
    NotReadyError,
    UnavailableError,
    UnreachableError,
    error_from_response,
    unreachable,
)
from perdure.sdk.serde import JsonSerde

__all__ = [
    "Call",
    "ClientError",
    "ConflictError",
    "Deployment",
    "HttpRequest",
    "HttpResponse",
    "IngressError",
    "InvocationFailedError",
    "NotFoundError",
    "NotReadyError",
    "SendReceipt",
    "UnavailableError",
    "UnreachableError",
    "attach",
    "call",
    "cancel_invocation",
    "decode_output",
    "delay_param",
    "encode_value",
    "error_from_response",
    "kill_invocation",
    "output",
    "register_deployment",
    "reject_awakeable",
    "resolve_awakeable",
    "send",
    "unreachable",
    "workflow_attach",
    "workflow_output",
]

T = TypeVar("T")
Target = Literal["ingress", "admin"]
JSON = "application/json"


@dataclasses.dataclass(frozen=True, slots=True)
class HttpRequest:
    """One HTTP request, relative to the ingress or the admin base URL.

    Example::

        HttpRequest("POST", "/Greeter/greet", body=b'"Ada"',
                    headers=(("content-type", "application/json"),))
    """

    method: str
    path: str
    target: Target = "ingress"
    headers: tuple[tuple[str, str], ...] = ()
    params: tuple[tuple[str, str], ...] = ()
    body: bytes = b""


@dataclasses.dataclass(frozen=True, slots=True)
class HttpResponse:
    """One HTTP answer; header names are lower case."""

    status: int
    headers: Mapping[str, str]
    body: bytes


@dataclasses.dataclass(frozen=True, slots=True)
class Call(Generic[T]):
    """A request and the reader of its answer: everything a client shell needs."""

    request: HttpRequest
    parse: Callable[[HttpResponse], T]


@dataclasses.dataclass(frozen=True, slots=True)
class SendReceipt:
    """The server's receipt for a send: the invocation it started (or had already started).

    Example::

        receipt = client.send("Greeter", "greet", "Ada")
        receipt.invocation_id      # 'inv_1gdJBtdVEcM9...'
        receipt.status             # 'Accepted' or 'PreviouslyAccepted'
    """

    invocation_id: str
    status: str
    execution_time: datetime.datetime | None = None

    @property
    def is_new(self) -> bool:
        """False when an idempotency key (or workflow key) matched an earlier send."""
        return self.status != "PreviouslyAccepted"


@dataclasses.dataclass(frozen=True, slots=True)
class Deployment:
    """A registered deployment, as the admin API describes it."""

    id: str
    services: tuple[str, ...]
    raw: Mapping[str, Any]


# -- reading answers ----------------------------------------------------------------------------


def _expect(read: Callable[[HttpResponse], T]) -> Callable[[HttpResponse], T]:
    def parse(response: HttpResponse) -> T:
        if not 200 <= response.status < 300:
            raise error_from_response(response)
        return read(response)

    return parse


def decode_output(response: HttpResponse) -> Any:
    """A handler's output without knowing its type: JSON when it says so, else bytes.

    An empty body (a handler that returns nothing) is ``None``.
    """
    if not response.body:
        return None
    content_type = response.headers.get("content-type", "")
    if "json" in content_type:
        return json.loads(response.body)
    return response.body


def encode_value(value: Any) -> tuple[bytes, str]:
    """A value as a request body: bytes go raw, anything else as JSON (``None`` is empty).

    Example::

        encode_value({"a": 1})   # (b'{"a":1}', 'application/json')
    """
    if isinstance(value, bytes | bytearray):
        return bytes(value), "application/octet-stream"
    return _JSON_SERDE.serialize(value), JSON


_JSON_SERDE = JsonSerde()


def _receipt(response: HttpResponse) -> SendReceipt:
    data = json.loads(response.body or b"{}")
    when = data.get("executionTime")
    execution_time = None
    if isinstance(when, str):
        try:
            execution_time = datetime.datetime.fromisoformat(when.replace("Z", "+00:00"))
        except ValueError:
            execution_time = None
    invocation_id = data.get("invocationId") or response.headers.get("x-restate-id", "")
    return SendReceipt(str(invocation_id), str(data.get("status", "Accepted")), execution_time)


def _deployment(response: HttpResponse) -> Deployment:
    data = json.loads(response.body)
    services = tuple(
        str(s.get("name", "")) for s in data.get("services", []) if isinstance(s, dict)
    )
    return Deployment(str(data.get("id", "")), services, data)


def _nothing(response: HttpResponse) -> None:
    return None


# -- building requests --------------------------------------------------------------------------


def _segment(value: str) -> str:
    # Keys are free text ("user/42", "a b"): escape everything, the ingress URL-decodes them.
    return quote(value, safe="")


def _target_path(service: str, handler: str, key: str | None) -> str:
    if key is None:
        return f"/{service}/{handler}"
    return f"/{service}/{_segment(key)}/{handler}"


def _headers(
    headers: Mapping[str, str] | None,
    *,
    content_type: str | None = None,
    idempotency_key: str | None = None,
) -> tuple[tuple[str, str], ...]:
    out: dict[str, str] = {}
    if content_type:
        out["content-type"] = content_type
    for name, value in (headers or {}).items():
        out[name.lower()] = value
    if idempotency_key is not None:
        if not idempotency_key:
            raise ValueError("an idempotency key must not be empty")
        out["idempotency-key"] = idempotency_key
    return tuple(out.items())


def delay_param(delay: datetime.timedelta) -> str:
    """A delay as the ISO 8601 duration the ingress reads (``?delay=PT1.5S``).

    Example::

        delay_param(timedelta(minutes=1, milliseconds=250))   # 'PT60.250S'
    """
    if delay < datetime.timedelta(0):
        raise ValueError(f"a send delay must not be negative, got {delay}")
    millis = delay // datetime.timedelta(milliseconds=1)
    seconds, rest = divmod(millis, 1000)
    return f"PT{seconds}.{rest:03d}S" if rest else f"PT{seconds}S"


def call(
    service: str,
    handler: str,
    body: bytes = b"",
    *,
    key: str | None = None,
    content_type: str | None = JSON,
    idempotency_key: str | None = None,
    headers: Mapping[str, str] | None = None,
    decode: Callable[[HttpResponse], Any] = decode_output,
) -> Call[Any]:
    """Call a handler and wait for its output.

    Example::

        call("Counter", "add", b"1", key="clicks")   # POST /Counter/clicks/add
    """
    request = HttpRequest(
        "POST",
        _target_path(service, handler, key),
        headers=_headers(
            headers,
            content_type=content_type if body else None,
            idempotency_key=idempotency_key,
        ),
        body=body,
    )
    return Call(request, _with_request(request, _expect(decode)))


def send(
    service: str,
    handler: str,
    body: bytes = b"",
    *,
    key: str | None = None,
    delay: datetime.timedelta | None = None,
    content_type: str | None = JSON,
    idempotency_key: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> Call[SendReceipt]:
    """Start a handler without waiting for it (optionally after ``delay``).

    Example::

        send("Greeter", "greet", b'"Ada"', delay=timedelta(hours=1))
        # POST /Greeter/greet/send?delay=PT3600S
    """
    request = HttpRequest(
        "POST",
        _target_path(service, handler, key) + "/send",
        headers=_headers(
            headers,
            content_type=content_type if body else None,
            idempotency_key=idempotency_key,
        ),
        params=(("delay", delay_param(delay)),) if delay is not None else (),
        body=body,
    )
    return Call(request, _with_request(request, _expect(_receipt)))


def attach(
    invocation_id: str | None = None,
    *,
    service: str | None = None,
    handler: str | None = None,
    idempotency_key: str | None = None,
    key: str | None = None,
    decode: Callable[[HttpResponse], Any] = decode_output,
) -> Call[Any]:
    """Wait for an invocation's output, by invocation id or by its idempotency key.

    Example::

        attach("inv_1gdJBtdVEcM9...")
        attach(service="Greeter", handler="greet", idempotency_key="order-7")
    """
    request = HttpRequest(
        "GET", _invocation_path(invocation_id, service, handler, idempotency_key, key) + "/attach"
    )
    return Call(request, _with_request(request, _expect(decode)))


def output(
    invocation_id: str | None = None,
    *,
    service: str | None = None,
    handler: str | None = None,
    idempotency_key: str | None = None,
    key: str | None = None,
    decode: Callable[[HttpResponse], Any] = decode_output,
) -> Call[Any]:
    """An invocation's output if it has finished; :class:`NotReadyError` (470) if not.

    Example::

        output("inv_1gdJBtdVEcM9...")
    """
    request = HttpRequest(
        "GET", _invocation_path(invocation_id, service, handler, idempotency_key, key) + "/output"
    )
    return Call(request, _with_request(request, _expect(decode)))


def _invocation_path(
    invocation_id: str | None,
    service: str | None,
    handler: str | None,
    idempotency_key: str | None,
    key: str | None,
) -> str:
    if invocation_id is not None:
        if service or handler or idempotency_key or key:
            raise ValueError("give either an invocation id or service/handler/idempotency_key")
        return f"/restate/invocation/{_segment(invocation_id)}"
    if not (service and handler and idempotency_key):
        raise ValueError(
            "give an invocation id, or service=, handler= and idempotency_key= (and key= for "
            "virtual objects)"
        )
    target = _target_path(service, handler, key)
    return f"/restate/invocation{target}/{_segment(idempotency_key)}"


def workflow_attach(
    workflow: str, key: str, *, decode: Callable[[HttpResponse], Any] = decode_output
) -> Call[Any]:
    """Wait for a workflow's run handler to finish and return its output.

    Example::

        workflow_attach("Signup", "ada@example.com")   # GET /restate/workflow/Signup/.../attach
    """
    request = HttpRequest("GET", f"/restate/workflow/{workflow}/{_segment(key)}/attach")
    return Call(request, _with_request(request, _expect(decode)))


def workflow_output(
    workflow: str, key: str, *, decode: Callable[[HttpResponse], Any] = decode_output
) -> Call[Any]:
    """A workflow's output if its run handler finished; :class:`NotReadyError` if not."""
    request = HttpRequest("GET", f"/restate/workflow/{workflow}/{_segment(key)}/output")
    return Call(request, _with_request(request, _expect(decode)))


def resolve_awakeable(
    awakeable_id: str, body: bytes = b"", *, content_type: str = JSON
) -> Call[None]:
    """Complete an awakeable (or signal) with a value.

    Example::

        resolve_awakeable("sign_1...", b'{"approved": true}')
    """
    request = HttpRequest(
        "POST",
        f"/restate/awakeables/{_segment(awakeable_id)}/resolve",
        headers=(("content-type", content_type),) if body else (),
        body=body,
    )
    return Call(request, _with_request(request, _expect(_nothing)))


def reject_awakeable(awakeable_id: str, reason: str) -> Call[None]:
    """Fail an awakeable: the waiting handler sees a terminal error carrying ``reason``."""
    request = HttpRequest(
        "POST",
        f"/restate/awakeables/{_segment(awakeable_id)}/reject",
        headers=(("content-type", "text/plain; charset=utf-8"),),
        body=reason.encode("utf-8"),
    )
    return Call(request, _with_request(request, _expect(_nothing)))


def register_deployment(
    uri: str,
    *,
    force: bool = False,
    use_http_11: bool = False,
    additional_headers: Mapping[str, str] | None = None,
) -> Call[Deployment]:
    """Register (discover) the deployment at ``uri`` with the admin API.

    Example::

        register_deployment("http://127.0.0.1:9080")   # POST {admin}/deployments
    """
    payload: dict[str, Any] = {"uri": uri, "force": force, "use_http_11": use_http_11}
    if additional_headers:
        payload["additional_headers"] = dict(additional_headers)
    request = HttpRequest(
        "POST",
        "/deployments",
        target="admin",
        headers=(("content-type", JSON),),
        body=json.dumps(payload).encode(),
    )
    return Call(request, _with_request(request, _expect(_deployment)))


def cancel_invocation(invocation_id: str) -> Call[None]:
    """Ask an invocation to stop: it sees InvocationCancelledError and may compensate.

    Example::

        cancel_invocation("inv_1gdJ...")   # PATCH {admin}/invocations/inv_1gdJ.../cancel
    """
    return _invocation_command(invocation_id, "cancel")


def kill_invocation(invocation_id: str) -> Call[None]:
    """Stop an invocation at once, without running its handler again (no compensation)."""
    return _invocation_command(invocation_id, "kill")


def _invocation_command(invocation_id: str, command: str) -> Call[None]:
    request = HttpRequest(
        "PATCH", f"/invocations/{_segment(invocation_id)}/{command}", target="admin"
    )
    return Call(request, _with_request(request, _expect(_nothing)))


def _with_request(
    request: HttpRequest, parse: Callable[[HttpResponse], T]
) -> Callable[[HttpResponse], T]:
    """Attach the request to any error, so messages say which call failed."""

    def read(response: HttpResponse) -> T:
        try:
            return parse(response)
        except ClientError as exc:
            exc.request = request
            raise

    return read
