"""Pure admin routing: (method, path, query) -> a typed admin request or an error.

Follows Restate's admin API (sdk-test-suite src/main/openapi/admin.json, restate
crates/admin/src/rest_api): every path also under /v2, /v3 and /v4 (the version changes a few
defaults, e.g. "force" on registration), /v1 refused. Perdure adds GET /invocations and
GET /invocations/{id}, which Restate answers through its SQL endpoint instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from perdure.protocol.ids import DeploymentId, InvalidId, InvocationId
from perdure.server import errors as E
from perdure.server.admin.queries import parse_statuses
from perdure.server.errors import PerdureError
from perdure.server.partition.events import Operation
from perdure.server.storage.api import InvocationFilter, InvocationStatus

# Restate's admin API versions (crates/admin/src/rest_api/version.rs).
MIN_ADMIN_API_VERSION = 2
MAX_ADMIN_API_VERSION = 4
UNVERSIONED = 0
# A page of invocations is at most this long: enough for a terminal, cheap for the store.
MAX_LIST_LIMIT = 1000
DEFAULT_LIST_LIMIT = 100

ROUTES = (
    "Routes: GET /health, GET /version, GET|POST /deployments, GET|DELETE /deployments/{id}, "
    "GET /services, GET /services/{name}, GET /services/{name}/handlers[/{handler}], "
    "GET /invocations, GET /invocations/{id}, "
    "PATCH /invocations/{id}/cancel|kill|purge|purge-journal|pause|resume|restart-as-new, "
    "DELETE /invocations/{id}."
)


@dataclass(frozen=True, slots=True)
class Health:
    pass


@dataclass(frozen=True, slots=True)
class Version:
    pass


@dataclass(frozen=True, slots=True)
class ListDeployments:
    pass


@dataclass(frozen=True, slots=True)
class RegisterDeployment:
    pass


@dataclass(frozen=True, slots=True)
class GetDeployment:
    deployment_id: str


@dataclass(frozen=True, slots=True)
class DeleteDeployment:
    deployment_id: str
    force: bool


@dataclass(frozen=True, slots=True)
class ListServices:
    pass


@dataclass(frozen=True, slots=True)
class GetService:
    name: str


@dataclass(frozen=True, slots=True)
class ListHandlers:
    service: str


@dataclass(frozen=True, slots=True)
class GetHandler:
    service: str
    handler: str


@dataclass(frozen=True, slots=True)
class OperateInvocation:
    invocation_id: str
    operation: Operation
    via_delete: bool = False  # the deprecated DELETE /invocations/{id}?mode=... (answers 202)
    from_index: int = 0  # restart-as-new: copy the journal up to this entry (?from=N)
    keep_deployment: bool = False  # restart-as-new: ?deployment=keep


@dataclass(frozen=True, slots=True)
class ListInvocations:
    filter: InvocationFilter


@dataclass(frozen=True, slots=True)
class GetInvocation:
    invocation_id: str


AdminRoute = (
    Health
    | Version
    | ListDeployments
    | RegisterDeployment
    | GetDeployment
    | DeleteDeployment
    | ListServices
    | GetService
    | ListHandlers
    | GetHandler
    | OperateInvocation
    | ListInvocations
    | GetInvocation
)


@dataclass(frozen=True, slots=True)
class AdminRequest:
    route: AdminRoute
    api_version: int  # 0 when the path has no /vN prefix


def parse_request(
    method: str, path: str, query: Sequence[tuple[str, str]]
) -> AdminRequest | PerdureError:
    """Routes one admin request.

    >>> parse_request("GET", "/v3/services/Greeter", [])
    AdminRequest(route=GetService(name='Greeter'), api_version=3)
    """
    try:
        version, rest = _version(path)
        return AdminRequest(_route(method, rest, query, path), version)
    except PerdureError as error:
        return error


def _version(path: str) -> tuple[int, list[str]]:
    segments = [s for s in path.split("/") if s]
    first = segments[0] if segments else ""
    if len(first) >= 2 and first[0] == "v" and first[1:].isdigit():
        number = int(first[1:])
        if not MIN_ADMIN_API_VERSION <= number <= MAX_ADMIN_API_VERSION:
            raise PerdureError(
                E.UNSUPPORTED_API_VERSION,
                f"Admin API version {number} is not supported; this server supports versions "
                f"{MIN_ADMIN_API_VERSION} to {MAX_ADMIN_API_VERSION}.",
            )
        return number, segments[1:]
    return UNVERSIONED, segments


def _route(
    method: str, parts: list[str], query: Sequence[tuple[str, str]], path: str
) -> AdminRoute:
    n = len(parts)
    head = parts[0] if parts else ""
    if n == 1 and head == "health":
        _allow(method, "GET")
        return Health()
    if n == 1 and head == "version":
        _allow(method, "GET")
        return Version()
    if head == "deployments":
        return _deployments(method, parts, query)
    if head == "services":
        return _services(method, parts)
    if head == "invocations":
        return _invocations(method, parts, query)
    raise E.route_not_found(path, ROUTES)


def _deployments(method: str, parts: list[str], query: Sequence[tuple[str, str]]) -> AdminRoute:
    if len(parts) == 1:
        _allow(method, "GET", "POST")
        return ListDeployments() if method == "GET" else RegisterDeployment()
    if len(parts) == 2:
        deployment_id = _deployment_id(parts[1])
        if method in ("PATCH", "PUT"):
            raise PerdureError(
                E.NOT_IMPLEMENTED,
                "Updating a deployment in place is not supported yet.",
                hint="Register the new address as a new deployment (POST /deployments), then "
                "remove the old one with DELETE /deployments/{id}?force=true.",
            )
        _allow(method, "GET", "DELETE")
        if method == "GET":
            return GetDeployment(deployment_id)
        return DeleteDeployment(deployment_id, _bool(query, "force", default=False))
    raise E.route_not_found("/" + "/".join(parts), ROUTES)


def _services(method: str, parts: list[str]) -> AdminRoute:
    n = len(parts)
    if n == 1:
        _allow(method, "GET")
        return ListServices()
    if n == 2:
        if method == "PATCH":
            raise PerdureError(
                E.NOT_IMPLEMENTED,
                "Changing a service's options through the admin API is not supported yet.",
                hint="Set the options in the service definition and register the deployment again.",
            )
        _allow(method, "GET")
        return GetService(parts[1])
    if n == 3 and parts[2] == "handlers":
        _allow(method, "GET")
        return ListHandlers(parts[1])
    if n == 4 and parts[2] == "handlers":
        _allow(method, "GET")
        return GetHandler(parts[1], parts[3])
    raise E.route_not_found("/" + "/".join(parts), ROUTES)


_OPERATIONS = {op.value: op for op in Operation}


def _invocations(method: str, parts: list[str], query: Sequence[tuple[str, str]]) -> AdminRoute:
    n = len(parts)
    if n == 1:
        _allow(method, "GET")
        return ListInvocations(_filter(query))
    invocation_id = _invocation_id(parts[1])
    if n == 2:
        _allow(method, "GET", "DELETE")
        if method == "GET":
            return GetInvocation(invocation_id)
        mode = _param(query, "mode") or "cancel"
        operation = _OPERATIONS.get(mode.lower())
        if operation not in (Operation.CANCEL, Operation.KILL, Operation.PURGE):
            raise _bad_param("mode", mode, "use cancel, kill or purge")
        assert operation is not None
        return OperateInvocation(invocation_id, operation, via_delete=True)
    if n == 3 and parts[2] in _OPERATIONS:
        _allow(method, "PATCH")
        operation = _OPERATIONS[parts[2]]
        if operation is Operation.RESUME:
            deployment = _param(query, "deployment")
            if deployment not in (None, "", "keep"):
                raise PerdureError(
                    E.NOT_IMPLEMENTED,
                    "Resuming on another deployment is not supported yet.",
                    hint="Resume without ?deployment (the invocation keeps its deployment).",
                )
        if operation is Operation.RESTART_AS_NEW:
            return _restart(invocation_id, query)
        return OperateInvocation(invocation_id, operation)
    raise E.route_not_found("/" + "/".join(parts), ROUTES)


def _restart(invocation_id: str, query: Sequence[tuple[str, str]]) -> OperateInvocation:
    """?from=N (an entry index, default 0) and ?deployment=keep|latest (default latest)."""
    raw_from = _param(query, "from") or "0"
    if not raw_from.isdigit():
        raise _bad_param("from", raw_from, "use a journal entry index: 0, 1, 2, ...")
    deployment = (_param(query, "deployment") or "latest").lower()
    if deployment not in ("keep", "latest"):
        raise PerdureError(
            E.NOT_IMPLEMENTED,
            "Restarting on a chosen deployment is not supported yet.",
            hint="Use ?deployment=keep (the pinned one) or ?deployment=latest.",
        )
    return OperateInvocation(
        invocation_id,
        Operation.RESTART_AS_NEW,
        from_index=int(raw_from),
        keep_deployment=deployment == "keep",
    )


def _filter(query: Sequence[tuple[str, str]]) -> InvocationFilter:
    statuses: frozenset[InvocationStatus] | None = None
    status = _param(query, "status")
    if status:
        try:
            statuses = parse_statuses(status)
        except ValueError as exc:
            raise _bad_param("status", status, str(exc)) from None
    limit = DEFAULT_LIST_LIMIT
    raw_limit = _param(query, "limit")
    if raw_limit:
        if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= MAX_LIST_LIMIT:
            raise _bad_param("limit", raw_limit, f"use a number from 1 to {MAX_LIST_LIMIT}")
        limit = int(raw_limit)
    return InvocationFilter(
        statuses=statuses,
        service=_param(query, "service") or None,
        key=_param(query, "key"),
        limit=limit,
    )


def _allow(method: str, *allowed: str) -> None:
    if method not in allowed:
        raise E.method_not_allowed(method, allowed)


def _param(query: Sequence[tuple[str, str]], name: str) -> str | None:
    return next((v for k, v in query if k == name), None)


def _bool(query: Sequence[tuple[str, str]], name: str, *, default: bool) -> bool:
    value = _param(query, name)
    if value is None or value == "":
        return default
    if value.lower() in ("true", "1"):
        return True
    if value.lower() in ("false", "0"):
        return False
    raise _bad_param(name, value, "use true or false")


def _bad_param(name: str, value: str, fix: str) -> PerdureError:
    return PerdureError(
        E.BAD_QUERY_PARAMETER,
        f"The query parameter '{name}' is invalid: '{value[:80]}'.",
        hint=fix[:1].upper() + fix[1:] + ".",
    )


def _invocation_id(text: str) -> str:
    try:
        return InvocationId.parse(text).to_str()
    except InvalidId as exc:
        raise PerdureError(
            E.INVALID_FIELD,
            f"The request field 'invocation_id' is invalid: {exc.reason}.",
            hint="Use the id as the ingress returned it (it starts with inv_1).",
        ) from None


def _deployment_id(text: str) -> str:
    try:
        return DeploymentId.parse(text).to_str()
    except InvalidId as exc:
        raise PerdureError(
            E.INVALID_FIELD,
            f"The request field 'deployment' is invalid: {exc.reason}.",
            hint="Use an id from GET /deployments (it starts with dp_1).",
        ) from None
