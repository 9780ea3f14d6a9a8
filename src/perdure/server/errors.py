"""The server's error catalog (ingress and admin): stable code, HTTP status, message, hint.

Every refusal the server's HTTP edges can give is a `PerdureError` built from one `ErrorKind`
below. `to_response` is the one function that turns it into an HTTP answer; both ASGI apps
call it, so status codes and body shapes are decided in exactly one place (Restate keeps the
same discipline in `ingress-http/src/handler/error.rs`: one enum, one `status_code()`).

Codes are stable strings, ``PD-<family><number>``, safe to grep for and to document:

    PD-1xxx  ingress requests (paths, keys, delays, idempotency, ids, inputs, outputs)
    PD-2xxx  admin requests (deployments, services, invocations, API versions)
    PD-3xxx  discovery of a deployment (reaching it, its answer, its manifest)
    PD-9xxx  any endpoint (unknown path, method, body size, storage, internal errors)

Body shapes, kept compatible with what Restate's clients parse:

- ingress: ``{"code": <status>, "message": ..., "source": "ingress"}`` with the header
  ``x-restate-error-source: ingress`` (Restate 1.7), plus ``perdure_code`` and ``hint``;
- admin: Restate's ``ErrorDescriptionResponse`` ``{"message": ..., "restate_code": ...}``,
  plus ``code``, ``perdure_code`` and ``hint``;
- a handler's terminal failure (not a Perdure refusal): ``failure_response`` renders
  Restate's ``InvocationError`` ``{"code", "message", "metadata"?}`` with source
  ``invocation``.

The ``message`` field always carries the hint too, because most clients show nothing else.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass

from perdure.server.storage.api import Failure

Headers = list[tuple[bytes, bytes]]

JSON = (b"content-type", b"application/json")
ERROR_SOURCE_HEADER = b"x-restate-error-source"
INVOCATION_ID_HEADER = b"x-restate-id"


class Api(enum.Enum):
    """Which HTTP API answers; it decides the body shape, never the status."""

    INGRESS = "ingress"
    ADMIN = "admin"


@dataclass(frozen=True, slots=True)
class ErrorKind:
    """One entry of the catalog: what went wrong, in general, and the default fix."""

    code: str
    name: str
    status: int
    summary: str
    hint: str = ""
    restate_code: str | None = None  # the META code Restate's admin API gives the same error


CATALOG: dict[str, ErrorKind] = {}


def _kind(
    code: str, name: str, status: int, summary: str, hint: str = "", restate: str | None = None
) -> ErrorKind:
    kind = ErrorKind(code, name, status, summary, hint, restate)
    assert code not in CATALOG, code
    CATALOG[code] = kind
    return kind


# --- ingress ------------------------------------------------------------------------------

SERVICE_NOT_FOUND = _kind("PD-1001", "service_not_found", 404, "No such service is registered.")
HANDLER_NOT_FOUND = _kind(
    "PD-1002",
    "handler_not_found",
    404,
    "The service exists but has no such handler.",
    "Check the handler name, or register the deployment version that has it.",
)
BAD_SERVICE_PATH = _kind(
    "PD-1003",
    "bad_service_path",
    400,
    "The path does not fit the service's type.",
    "Call a service as POST /{service}/{handler}, a virtual object or workflow as "
    "POST /{name}/{key}/{handler}; append /send to not wait for the result.",
)
PRIVATE_HANDLER = _kind(
    "PD-1004",
    "private_handler",
    400,
    "The handler is not public (ingress-private).",
    "Call it from another service, or make it public in the service definition and "
    "register the deployment again.",
)
BAD_DELAY = _kind(
    "PD-1005",
    "bad_delay",
    400,
    "The delay query parameter is not a duration.",
    "Write an ISO 8601 duration (PT10S, P1DT2H) or a friendly one (10s, 1h 30m, 500ms).",
)
DELAY_ON_CALL = _kind(
    "PD-1006",
    "delay_on_call",
    400,
    "A delay was given to a call, which waits for the result.",
    "Delays work with sends only: POST /{service}/{handler}/send?delay=10s.",
)
IDEMPOTENCY_KEY_ON_WORKFLOW = _kind(
    "PD-1007",
    "idempotency_key_on_workflow",
    400,
    "An idempotency key was given to a workflow's run handler.",
    "Drop the idempotency-key header: a workflow runs once per key already.",
)
INPUT_REJECTED = _kind(
    "PD-1008",
    "input_rejected",
    400,
    "The request body or content-type does not fit the handler's input.",
)
BAD_INVOCATION_ID = _kind(
    "PD-1009",
    "bad_invocation_id",
    400,
    "The invocation id does not parse.",
    "Use the id exactly as returned by a send (invocationId) or the x-restate-id header; "
    "it starts with inv_1.",
)
BAD_AWAKEABLE_ID = _kind(
    "PD-1010",
    "bad_awakeable_id",
    400,
    "The awakeable id does not parse.",
    "Use the id exactly as the handler got it from ctx.awakeable(); it starts with sign_1 "
    "(or prom_1).",
)
INVOCATION_NOT_FOUND = _kind(
    "PD-1011",
    "invocation_not_found",
    404,
    "No such invocation is known.",
    "It may never have existed, or its retention period has ended and it was purged.",
)
NOT_READY = _kind(
    "PD-1012",
    "not_ready",
    470,
    "The invocation exists but has not completed yet.",
    "Poll /output again later, or use /attach to wait for the result.",
)
CONFLICT = _kind("PD-1013", "conflict", 409, "The request conflicts with what the server holds.")
BAD_RESTATE_PATH = _kind(
    "PD-1014",
    "bad_restate_path",
    400,
    "A /restate/... path is malformed.",
)
BAD_KEY_ENCODING = _kind(
    "PD-1015",
    "bad_key_encoding",
    400,
    "A path segment is not valid percent-encoded UTF-8.",
    "Percent-encode the key as UTF-8 (e.g. with encodeURIComponent).",
)
SCOPE_NOT_SUPPORTED = _kind(
    "PD-1016",
    "scope_not_supported",
    400,
    "Scoped invocations (/restate/scope/...) are not supported by Perdure.",
    "Call without a scope: POST /restate/call/{service}/{handler}.",
)
BAD_TARGET_BODY = _kind(
    "PD-1017",
    "bad_target_body",
    400,
    "The JSON body naming an invocation target is invalid.",
    'Send {"target": "Invocation", "invocationId": ...}, {"target": "Workflow", '
    '"workflowName": ..., "workflowKey": ...} or {"target": "IdempotentInvocation", '
    '"service": ..., "key"?: ..., "handler": ..., "idempotencyKey": ...}.',
)
REQUEST_FAILED = _kind(
    "PD-1018", "request_failed", 400, "The engine refused the request; the message says why."
)
# The longest idempotency key the ingress accepts, in bytes (ingress/routes.py checks it).
MAX_IDEMPOTENCY_KEY_BYTES = 1024
BAD_IDEMPOTENCY_KEY = _kind(
    "PD-1019",
    "bad_idempotency_key",
    400,
    "The idempotency key is empty, too long, or has a character a key cannot have.",
    f"Use a non-empty key of printable ASCII of at most {MAX_IDEMPOTENCY_KEY_BYTES} bytes, "
    "for example a UUID.",
)

# --- admin --------------------------------------------------------------------------------

DEPLOYMENT_NOT_FOUND = _kind(
    "PD-2001",
    "deployment_not_found",
    404,
    "No such deployment is registered.",
    "List the registered deployments with GET /deployments (or `perdure deployments list`).",
)
INVALID_FIELD = _kind("PD-2002", "invalid_field", 400, "A field of the request body is invalid.")
BAD_QUERY_PARAMETER = _kind("PD-2003", "bad_query_parameter", 400, "A query parameter is invalid.")
SERVICE_TYPE_CHANGED = _kind(
    "PD-2004",
    "service_type_changed",
    409,
    "The deployment changes the type of a registered service.",
    "Invocations and state of the old type would no longer fit. Rename the service, or, if "
    'you accept that, register again with "breaking": true (or "force": true).',
    "META0006",
)
HANDLERS_REMOVED = _kind(
    "PD-2005",
    "handlers_removed",
    409,
    "The deployment drops handlers that a registered service has.",
    "Calls to the dropped handlers would fail. Keep the handlers, or, if you accept that, "
    'register again with "breaking": true (or "force": true).',
)
DEPLOYMENT_DRIFTED = _kind(
    "PD-2006",
    "deployment_drifted",
    409,
    "The URI is already registered, and it now serves a different manifest.",
    "Serve the new version at a new URI and register that (in-flight invocations keep "
    'running on the old one), or replace the registration with "force": true.',
)
DELETE_NEEDS_FORCE = _kind(
    "PD-2007",
    "delete_needs_force",
    501,
    "Graceful removal of a deployment is not supported.",
    "Add ?force=true to remove it now; invocations still running on it will back off and "
    "retry until a deployment serving their service is registered.",
)
UNSUPPORTED_API_VERSION = _kind(
    "PD-2008",
    "unsupported_api_version",
    400,
    "The admin API version in the path is not supported.",
    "Use /v2, /v3, /v4 or no version prefix.",
)
NOT_IMPLEMENTED = _kind(
    "PD-2009",
    "not_implemented",
    501,
    "Perdure does not implement this admin operation yet.",
)

# --- discovery ----------------------------------------------------------------------------

DEPLOYMENT_UNREACHABLE = _kind(
    "PD-3001",
    "deployment_unreachable",
    502,
    "The deployment could not be reached for discovery.",
    "Check that the URI is right, that the deployment is running and reachable from the "
    "server, and any credentials it needs (additional_headers).",
    "META0003",
)
DISCOVERY_BAD_STATUS = _kind(
    "PD-3002",
    "discovery_bad_status",
    502,
    "The deployment answered discovery with an error status.",
    "",
    "META0003",
)
DISCOVERY_BAD_RESPONSE = _kind(
    "PD-3003",
    "discovery_bad_response",
    502,
    "The deployment's discovery answer is not a manifest Perdure can read.",
    "Check that the URI points at a Restate SDK endpoint (GET <uri>/discover answers the "
    "manifest) and that the SDK is recent enough.",
    "META0013",
)
MANIFEST_INVALID = _kind(
    "PD-3004",
    "manifest_invalid",
    400,
    "The deployment's manifest is invalid.",
    "Fix the service definition the message points at, then register again.",
    "META0013",
)
PROTOCOL_UNSUPPORTED = _kind(
    "PD-3005",
    "protocol_unsupported",
    400,
    "The deployment speaks no service protocol version this server supports.",
    "Use an SDK release that speaks service protocol V5 to V7 (restate-sdk >= 0.8 for "
    "Python), or upgrade Perdure.",
    "META0012",
)
BAD_DEPLOYMENT_URI = _kind(
    "PD-3006",
    "bad_deployment_uri",
    400,
    "The deployment URI is not an absolute http:// or https:// URI.",
    'Register with e.g. {"uri": "http://127.0.0.1:9080"}.',
)

# --- any endpoint -------------------------------------------------------------------------

ROUTE_NOT_FOUND = _kind("PD-9001", "route_not_found", 404, "No such path.")
METHOD_NOT_ALLOWED = _kind("PD-9002", "method_not_allowed", 405, "Wrong HTTP method.")
BODY_TOO_LARGE = _kind(
    "PD-9003",
    "body_too_large",
    413,
    "The request body is larger than the server accepts.",
)
BAD_JSON = _kind("PD-9004", "bad_json", 400, "The request body is not the JSON expected.")
UNAVAILABLE = _kind(
    "PD-9005",
    "unavailable",
    503,
    "The server could not store the request; nothing was accepted.",
    "Retry later; with an idempotency-key header a retry is always safe.",
)
INTERNAL = _kind(
    "PD-9006",
    "internal",
    500,
    "The server failed while handling the request.",
    "This is a bug in Perdure; the server log has the details. Please report it.",
)
UNAUTHORIZED = _kind(
    "PD-9007",
    "unauthorized",
    401,
    "The request carries no valid bearer token for this port.",
)


class PerdureError(Exception):
    """A refusal with its catalog entry, the sentence for this case, and what to do.

    >>> err = PerdureError(HANDLER_NOT_FOUND, "The service 'Greeter' has no handler 'gret'.")
    >>> err.status, err.kind.code
    (404, 'PD-1002')
    """

    def __init__(
        self,
        kind: ErrorKind,
        message: str,
        *,
        hint: str | None = None,
        status: int | None = None,
        headers: tuple[tuple[bytes, bytes], ...] = (),
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.hint = kind.hint if hint is None else hint
        self.status = kind.status if status is None else status
        self.headers = headers

    @property
    def full_message(self) -> str:
        return f"{self.message} {self.hint}" if self.hint else self.message


def to_response(error: PerdureError, api: Api = Api.INGRESS) -> tuple[int, Headers, bytes]:
    """The one mapping from a refusal to an HTTP answer: (status, headers, body)."""
    body: dict[str, object]
    headers: Headers = [JSON, *error.headers]
    if api is Api.INGRESS:
        body = {"code": error.status, "message": error.full_message, "source": "ingress"}
        headers.append((ERROR_SOURCE_HEADER, b"ingress"))
    else:
        body = {
            "message": error.full_message,
            "restate_code": error.kind.restate_code,
            "code": error.status,
        }
    body["perdure_code"] = error.kind.code
    if error.hint:
        body["hint"] = error.hint
    return error.status, headers, json.dumps(body).encode()


def failure_status(code: int) -> int:
    """The HTTP status for a handler's terminal failure: its own code when it is one."""
    # Restate's rule (StatusCode::from_u16): any three-digit code, else 500.
    return code if 100 <= code <= 999 else 500


def failure_response(failure: Failure, invocation_id: str | None) -> tuple[int, Headers, bytes]:
    """A handler's terminal failure as Restate's ingress renders it (source: invocation)."""
    body: dict[str, object] = {"code": failure.code, "message": failure.message}
    if failure.metadata:
        body["metadata"] = dict(failure.metadata)
    body["source"] = "invocation"
    headers: Headers = [JSON, (ERROR_SOURCE_HEADER, b"invocation")]
    if invocation_id is not None:
        headers.append((INVOCATION_ID_HEADER, invocation_id.encode()))
    return failure_status(failure.code), headers, json.dumps(body).encode()


# --- constructors used by more than one app -------------------------------------------------


def register_hint(admin_address: str = "localhost:9070") -> str:
    return (
        "Register the deployment that serves it: `perdure deployments register <uri>`, or "
        f"curl -X POST {admin_address}/deployments -H 'content-type: application/json' "
        '-d \'{"uri": "<uri>"}\'.'
    )


def service_not_found(
    name: str, registered: list[str], admin_address: str = "localhost:9070"
) -> PerdureError:
    known = ", ".join(registered) if registered else "none yet"
    return PerdureError(
        SERVICE_NOT_FOUND,
        f"Service '{name}' not found; registered services: {known}.",
        hint=register_hint(admin_address),
    )


def handler_not_found(service: str, handler: str, handlers: list[str]) -> PerdureError:
    have = ", ".join(sorted(handlers)) if handlers else "none"
    return PerdureError(
        HANDLER_NOT_FOUND,
        f"The service '{service}' exists, but has no handler '{handler}'; its handlers: {have}.",
    )


def invocation_not_found(invocation_id: str | None = None) -> PerdureError:
    what = f"Invocation '{invocation_id}' not found." if invocation_id else "Invocation not found."
    return PerdureError(INVOCATION_NOT_FOUND, what)


def route_not_found(path: str, hint: str) -> PerdureError:
    return PerdureError(ROUTE_NOT_FOUND, f"No route for '{_clip(path)}'.", hint=hint)


def method_not_allowed(method: str, allowed: tuple[str, ...]) -> PerdureError:
    allow = ", ".join(allowed)
    return PerdureError(
        METHOD_NOT_ALLOWED,
        f"{method} is not allowed here.",
        hint=f"Use {' or '.join(allowed)}.",
        headers=((b"allow", allow.encode()),),
    )


def body_too_large(
    limit: int, setting: str = "--max-body-size / PERDURE_MAX_BODY_SIZE"
) -> PerdureError:
    return PerdureError(
        BODY_TOO_LARGE,
        f"The request body is larger than {limit} bytes.",
        hint=f"Send a smaller body, or raise the limit with {setting}.",
    )


def bad_json(what: str, reason: str) -> PerdureError:
    return PerdureError(BAD_JSON, f"The body is not a valid {what}: {reason}.")


def _clip(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."
