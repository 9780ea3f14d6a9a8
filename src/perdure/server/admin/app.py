"""The admin API as a plain ASGI app: deployments, services, invocations, health, version.

Reads come from the registry (deployments, services) and from committed storage
(invocations). Writes go through the driver as events, like every other change:
registration becomes `DeploymentRegistered` (after discovery and the pure checks in
`registration.py`), removal `DeploymentRemoved`, and invocation operations `OperatorRequested`.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

from perdure import __version__
from perdure.protocol.ids import DeploymentId, RandomBytes
from perdure.server import errors as E
from perdure.server.admin import queries, routes
from perdure.server.admin.registration import Options, Result, plan_registration
from perdure.server.admin.routes import (
    AdminRequest,
    DeleteDeployment,
    GetDeployment,
    GetHandler,
    GetInvocation,
    GetService,
    Health,
    ListDeployments,
    ListHandlers,
    ListInvocations,
    ListServices,
    OperateInvocation,
    RegisterDeployment,
    Version,
)
from perdure.server.asgi import (
    ClientGone,
    Receive,
    Scope,
    Send,
    header,
    path_of,
    query_params,
    read_body,
    respond,
    respond_error,
    respond_json,
)
from perdure.server.config import DEFAULT_MAX_BODY_BYTES, Config
from perdure.server.errors import Api, PerdureError
from perdure.server.ingress import bearer
from perdure.server.ingress.app import RequestSink, engine_error
from perdure.server.invoker.discovery import Discovered, Discoverer
from perdure.server.partition.effects import Reply, ReplyKind
from perdure.server.partition.events import (
    DeploymentRegistered,
    DeploymentRemoved,
    Event,
    Operation,
    OperatorRequested,
)
from perdure.server.registry import Registry, ServiceInfo, build_service
from perdure.server.storage.api import ReadView

log = logging.getLogger("perdure.admin")

DiscoverFn = Callable[[str, Sequence[tuple[str, str]], bool], Awaitable[Discovered]]


class ReaderSource(Protocol):
    def reader(self) -> ReadView: ...


class AdminApp:
    """Restate's admin REST API (plus invocation views) over a `RequestSink`.

    ``discover`` fetches manifests; by default a `Discoverer` with its own transports is used
    (pass ``Discoverer(h2, h1).discover`` to share the invoker's, and call `aclose` at the end
    either way).
    """

    def __init__(
        self,
        driver: RequestSink,
        get_registry: Callable[[], Registry],
        storage: ReaderSource | None = None,
        config: Config | None = None,
        *,
        discover: DiscoverFn | None = None,
        ingress_endpoint: str | None = None,
        clock: Callable[[], float] = time.time,
        random_bytes: RandomBytes = os.urandom,
    ) -> None:
        self._driver = driver
        self._registry = get_registry
        self._storage = storage
        self._max_body = config.max_body_bytes if config is not None else DEFAULT_MAX_BODY_BYTES
        self._own_discoverer: Discoverer | None = None
        if discover is None:
            self._own_discoverer = Discoverer()
            discover = self._own_discoverer.discover
        self._discover = discover
        if ingress_endpoint is None and config is not None:
            host, port = config.ingress_bind
            shown = "localhost" if host in ("0.0.0.0", "::") else host
            ingress_endpoint = f"http://{shown}:{port}/"
        # Settable once the ingress is bound (port 0 resolves only then).
        self.ingress_endpoint = ingress_endpoint
        self._clock = clock
        self._random = random_bytes
        # Bearer tokens (config.py): this port's, and the ingress's to spot a mix-up.
        self._token = config.admin_token if config is not None else None
        self._other_token = config.ingress_token if config is not None else None

    async def aclose(self) -> None:
        if self._own_discoverer is not None:
            await self._own_discoverer.close()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        try:
            request = routes.parse_request(scope["method"], path_of(scope), query_params(scope))
            if self._token is not None and not _is_health(request):
                refused = bearer.refusal(
                    scope["headers"], self._token, api=Api.ADMIN, other=self._other_token
                )
                if refused is not None:
                    raise refused
            if isinstance(request, PerdureError):
                raise request
            await self._handle(request, scope, receive, send)
        except ClientGone:
            return
        except PerdureError as error:
            await respond_error(send, error, Api.ADMIN)
        except Exception as exc:
            log.exception("admin request %s %s failed", scope.get("method"), scope.get("path"))
            await respond_error(
                send, PerdureError(E.INTERNAL, f"The request failed: {exc!r}."), Api.ADMIN
            )

    async def _handle(
        self, request: AdminRequest, scope: Scope, receive: Receive, send: Send
    ) -> None:
        route = request.route
        registry = self._registry()
        if isinstance(route, Health):
            await respond(send, 200)
        elif isinstance(route, Version):
            await respond_json(send, 200, self._version())
        elif isinstance(route, RegisterDeployment):
            body = await read_body(receive, self._max_body, header(scope, b"content-length"))
            await self._register(body, request.api_version, registry, send)
        elif isinstance(route, ListDeployments):
            rows = sorted(registry.deployments.values(), key=lambda d: (d.created_at, d.id))
            await respond_json(
                send, 200, {"deployments": [queries.deployment_json(registry, d) for d in rows]}
            )
        elif isinstance(route, GetDeployment):
            row = registry.deployment(route.deployment_id)
            if row is None:
                raise _deployment_not_found(route.deployment_id)
            await respond_json(send, 200, queries.deployment_json(registry, row, detailed=True))
        elif isinstance(route, DeleteDeployment):
            await self._delete_deployment(route, registry, send)
        elif isinstance(route, ListServices):
            services = [
                queries.service_json(registry.services[n], registry.defaults)
                for n in registry.service_names()
            ]
            await respond_json(send, 200, {"services": services})
        elif isinstance(route, GetService):
            info = _service(registry, route.name)
            await respond_json(send, 200, queries.service_json(info, registry.defaults))
        elif isinstance(route, ListHandlers):
            info = _service(registry, route.service)
            handlers = [queries.handler_json(h) for h in info.handlers.values()]
            await respond_json(send, 200, {"handlers": handlers})
        elif isinstance(route, GetHandler):
            info = _service(registry, route.service)
            handler = info.handlers.get(route.handler)
            if handler is None:
                raise E.handler_not_found(info.name, route.handler, list(info.handlers))
            await respond_json(send, 200, queries.handler_json(handler))
        elif isinstance(route, OperateInvocation):
            await self._operate(route, send)
        elif isinstance(route, ListInvocations):
            await respond_json(send, 200, queries.list_invocations(self._reader(), route.filter))
        elif isinstance(route, GetInvocation):
            detail = queries.invocation_detail(self._reader(), route.invocation_id)
            if detail is None:
                raise _invocation_not_found(route.invocation_id)
            await respond_json(send, 200, detail)

    def _version(self) -> dict[str, Any]:
        return {
            "version": __version__,
            "min_admin_api_version": routes.MIN_ADMIN_API_VERSION,
            "max_admin_api_version": routes.MAX_ADMIN_API_VERSION,
            "ingress_endpoint": self.ingress_endpoint,
            "features": {},
            "server": "perdure",
        }

    def _reader(self) -> ReadView:
        if self._storage is None:
            raise PerdureError(
                E.NOT_IMPLEMENTED, "This admin API was started without access to storage."
            )
        return self._storage.reader()

    # --- deployments -----------------------------------------------------------------------

    async def _register(
        self, body: bytes, api_version: int, registry: Registry, send: Send
    ) -> None:
        options = parse_registration(body, api_version)
        found = await self._discover(options.uri, options.additional_headers, options.use_http_11)
        now_ms = int(self._clock() * 1000)
        new_id = DeploymentId.generate(now_ms=now_ms, random_bytes=self._random).to_str()
        plan = plan_registration(found, options, registry, new_id=new_id, now_ms=now_ms)
        if plan.result is Result.UNCHANGED:
            if api_version == 2:  # admin API v2 answered a repeated registration with 409
                raise PerdureError(
                    E.CONFLICT, f"Deployment {plan.deployment.id} already exists.", hint=""
                )
            status = 200
        else:
            if not options.dry_run:
                if plan.removed_services:
                    # The replaced registration drops services: remove it whole, then store
                    # the new one under the same id (DeploymentRegistered only adds rows).
                    await self._submit(lambda rid: DeploymentRemoved(rid, plan.deployment.id))
                deployment, services = plan.deployment, plan.services
                await self._submit(lambda rid: DeploymentRegistered(rid, deployment, services))
            created = plan.result is Result.CREATED
            status = 201 if created or api_version == 2 else 200
        document = {
            "id": plan.deployment.id,
            "services": [
                queries.service_json(build_service(row, registry.defaults), registry.defaults)
                for row in plan.services
            ],
            "min_protocol_version": plan.deployment.min_protocol_version,
            "max_protocol_version": plan.deployment.max_protocol_version,
            "sdk_version": found.sdk_version,
        }
        if options.dry_run:
            document["dry_run"] = True
        location = [(b"location", f"deployments/{plan.deployment.id}".encode())]
        await respond_json(send, status, document, location)

    async def _delete_deployment(
        self, route: DeleteDeployment, registry: Registry, send: Send
    ) -> None:
        if registry.deployment(route.deployment_id) is None:
            raise _deployment_not_found(route.deployment_id)
        if not route.force:
            raise PerdureError(
                E.DELETE_NEEDS_FORCE,
                f"Deployment {route.deployment_id} was not removed: graceful removal is not "
                "supported.",
            )
        await self._submit(lambda rid: DeploymentRemoved(rid, route.deployment_id))
        await respond(send, 202)

    async def _submit(self, make: Callable[[int], Event]) -> Reply:
        reply = await self._driver.request(make)
        if reply.kind is ReplyKind.ERROR:
            raise engine_error(reply)
        return reply

    # --- invocations -------------------------------------------------------------------------

    async def _operate(self, route: OperateInvocation, send: Send) -> None:
        """The partition answers with Restate's status for the operation (see
        `partition/operations.py`); the deprecated DELETE form always answers 202."""

        def make(request_id: int) -> Event:
            return OperatorRequested(
                request_id,
                route.invocation_id,
                route.operation,
                from_index=route.from_index,
                keep_deployment=route.keep_deployment,
            )

        reply = await self._driver.request(make)
        if reply.kind is ReplyKind.ERROR:
            if reply.status == 404:
                raise _invocation_not_found(route.invocation_id)
            raise engine_error(reply)
        if route.via_delete:
            await respond(send, 202)
        elif route.operation is Operation.RESTART_AS_NEW:
            await respond_json(send, 200, {"new_invocation_id": reply.invocation_id})
        else:
            await respond(send, reply.status)


def _is_health(request: AdminRequest | PerdureError) -> bool:
    """GET /health (any API version) is open: a probe carries no credentials and learns
    nothing from a 200. Everything else, unknown paths included, needs the token."""
    return isinstance(request, AdminRequest) and isinstance(request.route, Health)


def parse_registration(body: bytes, api_version: int) -> Options:
    """Restate's RegisterDeploymentRequest (HTTP form); Lambda ARNs are refused."""
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise E.bad_json("registration request", str(exc)) from None
    if not isinstance(doc, dict):
        raise E.bad_json("registration request", "expected a JSON object")
    if "uri" not in doc and "arn" in doc:
        raise PerdureError(
            E.INVALID_FIELD,
            "Lambda deployments (arn) are not supported by Perdure.",
            hint="Register an http:// URI where the SDK endpoint is served.",
        )
    uri = doc.get("uri")
    if not isinstance(uri, str) or not uri.strip():
        raise _invalid("uri", 'it is required and must be a string, e.g. "http://127.0.0.1:9080"')
    headers = doc.get("additional_headers") or {}
    if not isinstance(headers, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in headers.items()
    ):
        raise _invalid("additional_headers", "it must be an object of string values")
    # Restate: "force" defaults to true only for admin API v1 and v2.
    force = _flag(doc, "force", default=api_version == 2)
    return Options(
        uri=uri.strip(),
        additional_headers=tuple(headers.items()),
        use_http_11=_flag(doc, "use_http_11", default=False),
        force=force,
        breaking=_flag(doc, "breaking", default=False) or force,
        dry_run=_flag(doc, "dry_run", default=False),
    )


def _flag(doc: dict[str, Any], name: str, *, default: bool) -> bool:
    value = doc.get(name)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise _invalid(name, "it must be true or false")
    return value


def _invalid(field: str, reason: str) -> PerdureError:
    return PerdureError(E.INVALID_FIELD, f"The request field '{field}' is invalid: {reason}.")


def _service(registry: Registry, name: str) -> ServiceInfo:
    info = registry.service(name)
    if info is None:
        known = ", ".join(registry.service_names()) or "none yet"
        raise PerdureError(
            E.SERVICE_NOT_FOUND,
            f"The requested service '{name}' does not exist; registered services: {known}.",
            hint=E.register_hint(),
        )
    return info


def _deployment_not_found(deployment_id: str) -> PerdureError:
    return PerdureError(
        E.DEPLOYMENT_NOT_FOUND, f"The requested deployment '{deployment_id}' does not exist."
    )


def _invocation_not_found(invocation_id: str) -> PerdureError:
    return PerdureError(
        E.INVOCATION_NOT_FOUND, f"The requested invocation '{invocation_id}' does not exist."
    )


__all__ = ["AdminApp", "parse_registration"]
