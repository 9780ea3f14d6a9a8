"""Registering a deployment, pure: what to store, or why not (registration cannot drift).

Given what a deployment said about itself (`Discovered`) and what is registered (`Registry`),
`plan_registration` decides, as Restate's schema updater does (crates/types/src/schema/
metadata/updater), with two Perdure refinements:

- a new URI creates a deployment (201); each of its services gets the next revision;
- a service that changes type is refused unless "breaking" or "force" (Restate does this too);
- a service that loses handlers is refused unless "breaking" or "force" (Restate lets it);
- a URI registered before, answering the same manifest, is left as it is (200, idempotent);
- a URI registered before, answering a *different* manifest, is refused unless "force"
  (Restate silently keeps the old manifest), because serving new code under an old
  registration is how schemas drift unnoticed;
- with "force" the existing registration is replaced in place, keeping its id.

The refusals say what differs and how to proceed.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass
from typing import Any

from perdure.server import errors as E
from perdure.server.errors import PerdureError
from perdure.server.invoker.discovery import Discovered
from perdure.server.registry import Registry
from perdure.server.storage.api import DeploymentRow, ServiceRow, ServiceType


class Result(enum.Enum):
    CREATED = "created"
    UNCHANGED = "unchanged"
    OVERWRITTEN = "overwritten"


@dataclass(frozen=True, slots=True)
class Options:
    """The registration request's options, as the admin API received them."""

    uri: str
    additional_headers: tuple[tuple[str, str], ...] = ()
    use_http_11: bool = False
    force: bool = False
    breaking: bool = False
    dry_run: bool = False


@dataclass(frozen=True, slots=True)
class Plan:
    result: Result
    deployment: DeploymentRow
    services: tuple[ServiceRow, ...]
    # Services only the replaced registration served: they disappear with it.
    removed_services: tuple[str, ...] = ()


def same_address(row: DeploymentRow, uri: str, headers: tuple[tuple[str, str], ...]) -> bool:
    """Restate's `semantic_eq_with_address_and_headers`: same URI and same extra headers."""
    return row.uri.rstrip("/") == uri.rstrip("/") and _headers(row.additional_headers) == _headers(
        headers
    )


def _headers(headers: tuple[tuple[str, str], ...]) -> list[tuple[str, str]]:
    return sorted((k.lower(), v) for k, v in headers)


def _canonical(document: Any) -> str:
    return json.dumps(document, sort_keys=True, separators=(",", ":"))


def plan_registration(
    found: Discovered,
    options: Options,
    registry: Registry,
    *,
    new_id: str,
    now_ms: int,
) -> Plan:
    """What registering `found` means given `registry`; a `PerdureError` (409) if refused."""
    existing = max(
        (
            d
            for d in registry.deployments.values()
            if same_address(d, found.uri, options.additional_headers)
        ),
        key=lambda d: (d.created_at, d.id),
        default=None,
    )
    result = Result.CREATED
    deployment_id = new_id
    if existing is not None:
        unchanged = _canonical(json.loads(existing.manifest)) == _canonical(found.document) and (
            existing.use_http_11 == options.use_http_11
        )
        if not options.force:
            if unchanged:
                return Plan(Result.UNCHANGED, existing, _current_rows(registry, existing))
            raise _drifted(existing, found)
        result, deployment_id = Result.OVERWRITTEN, existing.id
    elif not (options.force or options.breaking):
        _check_compatible(found, registry)

    services = tuple(
        _service_row(document, registry, deployment_id) for document in found.service_documents()
    )
    removed: tuple[str, ...] = ()
    if existing is not None:
        names = {s.name for s in services}
        removed = tuple(
            sorted(
                s.name
                for s in registry.services.values()
                if s.deployment_id == existing.id and s.name not in names
            )
        )
    endpoint = found.endpoint
    deployment = DeploymentRow(
        id=deployment_id,
        uri=found.uri,
        protocol_mode=endpoint.protocol_mode.value,
        min_protocol_version=endpoint.min_protocol_version,
        max_protocol_version=endpoint.max_protocol_version,
        created_at=now_ms,
        additional_headers=options.additional_headers,
        use_http_11=options.use_http_11,
        manifest=found.manifest,
    )
    return Plan(result, deployment, services, removed)


def _service_row(document: dict[str, Any], registry: Registry, deployment_id: str) -> ServiceRow:
    name = str(document["name"])
    current = registry.service(name)
    return ServiceRow(
        name=name,
        revision=(current.revision + 1) if current is not None else 1,
        deployment_id=deployment_id,
        service_type=ServiceType(document["ty"]),
        definition=json.dumps(document, separators=(",", ":")),
        public=not bool(document.get("ingressPrivate", False)),
    )


def _current_rows(registry: Registry, deployment: DeploymentRow) -> tuple[ServiceRow, ...]:
    """The stored rows of the services `deployment` still serves (for an unchanged answer)."""
    rows = []
    for info in registry.services.values():
        if info.deployment_id == deployment.id:
            rows.append(
                ServiceRow(
                    info.name,
                    info.revision,
                    info.deployment_id,
                    info.service_type,
                    json.dumps(dict(info.definition), separators=(",", ":")),
                    info.public,
                )
            )
    return tuple(rows)


_KIND_NAME = {
    ServiceType.SERVICE: "a service",
    ServiceType.VIRTUAL_OBJECT: "a virtual object",
    ServiceType.WORKFLOW: "a workflow",
}


def _check_compatible(found: Discovered, registry: Registry) -> None:
    type_changes: list[str] = []
    removals: list[str] = []
    for document in found.service_documents():
        current = registry.service(str(document["name"]))
        if current is None:
            continue
        new_type = ServiceType(document["ty"])
        where = f"(revision {current.revision}, deployment {current.deployment_id})"
        if new_type is not current.service_type:
            type_changes.append(
                f"'{current.name}' is registered as {_KIND_NAME[current.service_type]} {where}, "
                f"and {found.uri} declares it {_KIND_NAME[new_type]}"
            )
        new_handlers = {
            str(h.get("name")) for h in document.get("handlers", []) if isinstance(h, dict)
        }
        dropped = sorted(set(current.handlers) - new_handlers)
        if dropped:
            removals.append(
                f"'{current.name}' {where} has handler{'s' if len(dropped) > 1 else ''} "
                f"{', '.join(dropped)}, which {found.uri} does not"
            )
    if type_changes:
        raise PerdureError(
            E.SERVICE_TYPE_CHANGED, "Refused: " + "; ".join(type_changes + removals) + "."
        )
    if removals:
        raise PerdureError(E.HANDLERS_REMOVED, "Refused: " + "; ".join(removals) + ".")


def _drifted(existing: DeploymentRow, found: Discovered) -> PerdureError:
    try:
        old = {s["name"]: s for s in json.loads(existing.manifest).get("services", [])}
    except (ValueError, AttributeError, TypeError, KeyError):
        old = {}
    new = {str(s.get("name")): s for s in found.service_documents()}
    changes = []
    if added := sorted(set(new) - set(old)):
        changes.append("services added: " + ", ".join(added))
    if gone := sorted(set(old) - set(new)):
        changes.append("services removed: " + ", ".join(gone))
    for name in sorted(set(old) & set(new)):
        if _canonical(old[name]) == _canonical(new[name]):
            continue
        before = {h.get("name") for h in old[name].get("handlers", [])}
        after = {h.get("name") for h in new[name].get("handlers", [])}
        detail = []
        if old[name].get("ty") != new[name].get("ty"):
            detail.append(f"type {old[name].get('ty')} -> {new[name].get('ty')}")
        if plus := sorted(str(h) for h in after - before):
            detail.append("new handlers " + ", ".join(plus))
        if minus := sorted(str(h) for h in before - after):
            detail.append("dropped handlers " + ", ".join(minus))
        changes.append(f"'{name}' changed ({'; '.join(detail) or 'options or schemas'})")
    if not changes:
        changes.append("the HTTP version changed")
    return PerdureError(
        E.DEPLOYMENT_DRIFTED,
        f"{found.uri} is already registered as {existing.id}, and now serves a different "
        f"manifest: {'; '.join(changes)}.",
    )


__all__ = ["Options", "Plan", "Result", "plan_registration", "same_address"]
