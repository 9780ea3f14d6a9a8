"""Typed errors for ingress and admin answers, and the one function that picks them."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from perdure.client.requests import HttpRequest, HttpResponse

__all__ = [
    "ClientError",
    "ConflictError",
    "IngressError",
    "InvocationFailedError",
    "NotFoundError",
    "NotReadyError",
    "UnavailableError",
    "UnreachableError",
    "error_from_response",
    "unreachable",
]


class ClientError(Exception):
    """An answer that is not the result asked for.

    ::

        ClientError                 every failed request; .status, .code, .message, .body
         ├─ UnreachableError        no answer at all: the server is not running or not there
         ├─ IngressError            the server refused the request itself (source "ingress")
         │   ├─ NotFoundError       404: unknown service, handler or invocation
         │   ├─ ConflictError       409
         │   ├─ NotReadyError       470: the invocation exists but has not finished
         │   └─ UnavailableError    429/503: overloaded or starting; safe to retry later
         └─ InvocationFailedError   the handler ended with a terminal error (.code is its code)
    """

    def __init__(
        self,
        message: str,
        *,
        status: int = 0,
        code: int | None = None,
        body: bytes = b"",
        request: HttpRequest | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code if code is not None else status
        self.body = body
        self.request = request

    def __str__(self) -> str:
        where = f"{self.request.method} {self.request.path}: " if self.request else ""
        status = f"{self.status} " if self.status else ""
        return f"{where}{status}{self.message}"


class UnreachableError(ClientError):
    """The request got no answer (connection refused, timed out, reset)."""


class IngressError(ClientError):
    """The server refused the request before (or instead of) running a handler."""


class NotFoundError(IngressError):
    """404: the service, handler, invocation or workflow does not exist (or is not registered)."""


class ConflictError(IngressError):
    """409: the request conflicts with what the server holds."""


class NotReadyError(IngressError):
    """470: the invocation exists but has no output yet; attach to wait for it instead."""


class UnavailableError(IngressError):
    """429 or 503: the server cannot take the request now; retrying later is safe."""


class InvocationFailedError(ClientError):
    """The handler failed for good (a TerminalError); ``code`` is the status it chose."""


_INGRESS_ERRORS: dict[int, type[IngressError]] = {
    404: NotFoundError,
    409: ConflictError,
    470: NotReadyError,
    429: UnavailableError,
    503: UnavailableError,
}


def error_from_response(response: HttpResponse, request: HttpRequest | None = None) -> ClientError:
    """The typed error for a non-2xx answer.

    Restate says who failed in ``x-restate-error-source`` (``ingress`` or ``invocation``).
    Servers that do not send it are read by status: the codes the ingress itself uses are
    ingress errors, any other code came from the handler.

    Example::

        error_from_response(HttpResponse(470, {}, b'{"code":470,"message":"not ready"}'))
        # NotReadyError('not ready')
    """
    message, code = _error_body(response)
    source = response.headers.get("x-restate-error-source")
    if source is None:
        source = (
            "ingress"
            if response.status in _INGRESS_ERRORS
            or response.status in (400, 401, 403, 405, 413, 415)
            else "invocation"
        )
    kind: type[ClientError]
    if source == "invocation":
        kind = InvocationFailedError
    else:
        kind = _INGRESS_ERRORS.get(response.status, IngressError)
    return kind(message, status=response.status, code=code, body=response.body, request=request)


def _error_body(response: HttpResponse) -> tuple[str, int | None]:
    text = response.body.decode("utf-8", "replace").strip()
    try:
        data = json.loads(text) if text else None
    except json.JSONDecodeError:
        data = None
    if isinstance(data, dict) and isinstance(data.get("message"), str):
        code = data.get("code")
        message = data["message"]
        if isinstance(data.get("description"), str) and data["description"]:
            message = f"{message} ({data['description']})"
        return message, code if isinstance(code, int) else None
    return text or _REASONS.get(response.status, "request failed"), None


_REASONS = {470: "the invocation has not completed yet", 404: "not found"}


def unreachable(request: HttpRequest, base_url: str, exc: Exception) -> UnreachableError:
    """The error for a request that got no answer, naming where it went."""
    what = "admin API" if request.target == "admin" else "ingress"
    return UnreachableError(
        f"no answer from the {what} at {base_url} ({type(exc).__name__}: {exc}); is the "
        "server running there? (`perdure dev` starts one)",
        request=request,
    )
