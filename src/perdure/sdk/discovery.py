"""The endpoint manifest built from service definitions, and the answer to ``GET /discover``."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable
from datetime import timedelta
from typing import Any, Literal

from perdure.protocol import discovery as pd
from perdure.sdk.handler import Handler, Options, Payload
from perdure.sdk.schema import json_schema
from perdure.sdk.service import Definition

__all__ = ["DiscoveryError", "build_manifest", "discovery_answer"]

_SERVER_RELEASE = {3: "restate-server 1.4", 4: "restate-server 1.5"}
# Fields that only describe (shown by the admin API): an old server that cannot read them loses
# nothing that changes behaviour, unlike a timeout or ingress_private, which must never vanish.
_DESCRIPTIVE_SINCE = pd.ManifestVersion.V2


@dataclasses.dataclass(frozen=True, slots=True)
class DiscoveryError(Exception):
    """A discovery request the endpoint cannot answer; ``status`` is the HTTP status to send."""

    status: int
    message: str

    def __str__(self) -> str:
        return self.message


def build_manifest(
    definitions: Iterable[Definition],
    *,
    min_protocol_version: int,
    max_protocol_version: int,
    protocol_mode: pd.ProtocolMode = pd.ProtocolMode.BIDI_STREAM,
) -> pd.Endpoint:
    """Describe ``definitions`` as an endpoint manifest, checked as a server would check it.

    Raises ``ValueError`` naming the problem (a workflow without a run handler, two services
    with one name, a private service with a public handler, ...).

    Example::

        manifest = build_manifest([greeter], min_protocol_version=5, max_protocol_version=7)
        manifest.to_json(pd.ManifestVersion.V4)
    """
    services: list[pd.Service] = []
    seen: set[str] = set()
    for definition in definitions:
        definition.check()
        if definition.name in seen:
            raise ValueError(f"two services are named {definition.name!r}; names must be unique")
        seen.add(definition.name)
        services.append(_service(definition))
    endpoint = pd.Endpoint(
        protocol_mode=protocol_mode,
        min_protocol_version=min_protocol_version,
        max_protocol_version=max_protocol_version,
        services=tuple(services),
    )
    try:
        endpoint.to_dict(pd.LATEST_MANIFEST_VERSION)  # runs the same checks as the parser
    except pd.ManifestError as exc:
        raise ValueError(f"these services cannot be served: {_readable(exc, endpoint)}") from None
    return endpoint


def discovery_answer(
    manifest: pd.Endpoint,
    accept: str | None,
    protocol_mode: Literal["BIDI_STREAM", "REQUEST_RESPONSE"],
) -> tuple[str, bytes]:
    """(content type, body) answering a discovery request with ``Accept: accept``.

    The newest manifest version the header offers wins (v2 when there is no header, as the
    official SDK answers). Raises :class:`DiscoveryError`: 415 when no offered version is one
    this SDK writes, 406 when the offered versions cannot carry an option the services use.

    Example::

        content_type, body = discovery_answer(manifest, pd.accept_header(), "BIDI_STREAM")
    """
    version = pd.negotiate_version(accept)
    if version is None:
        raise DiscoveryError(
            415,
            f"unsupported discovery version: the request accepts {accept!r}, but this SDK "
            f"writes {', '.join(v.content_type for v in pd.SDK_MANIFEST_VERSIONS)}",
        )
    manifest = dataclasses.replace(manifest, protocol_mode=pd.ProtocolMode(protocol_mode))
    if version < _DESCRIPTIVE_SINCE:
        manifest = _without_descriptions(manifest)
    try:
        return version.content_type, manifest.to_json(version)
    except pd.ManifestError as exc:
        raise DiscoveryError(406, _too_new(exc, manifest, version)) from None


def _too_new(exc: pd.ManifestError, manifest: pd.Endpoint, version: pd.ManifestVersion) -> str:
    needed = _needed_version(exc.reason)
    release = _SERVER_RELEASE.get(needed, "a newer server")
    return (
        f"{_where(exc.path, manifest)} needs endpoint manifest v{needed} ({release} or newer), "
        f"but the server accepts at most v{int(version)}. Upgrade the server, or remove the "
        "option."
    )


def _needed_version(reason: str) -> int:
    match = re.search(r"needs manifest v(\d+)", reason)
    return int(match.group(1)) if match else int(pd.LATEST_MANIFEST_VERSION)


_PATH = re.compile(r"^services\[(\d+)\](?:\.handlers\[(\d+)\])?(?:\.(\w+))?")


def _where(path: str, manifest: pd.Endpoint) -> str:
    """'services[0].handlers[1].abortTimeout' -> 'handler Greeter.greet sets abortTimeout'."""
    match = _PATH.match(path)
    if not match:
        return path
    service = manifest.services[int(match.group(1))]
    field = f" sets {match.group(3)}" if match.group(3) else ""
    if match.group(2) is None:
        return f"service {service.name}{field}"
    return f"handler {service.name}.{service.handlers[int(match.group(2))].name}{field}"


def _readable(exc: pd.ManifestError, manifest: pd.Endpoint) -> str:
    return f"{_where(exc.path, manifest)}: {exc.reason}" if exc.path else exc.reason


def _without_descriptions(manifest: pd.Endpoint) -> pd.Endpoint:
    def strip(entry: Any) -> Any:
        return dataclasses.replace(entry, documentation=None, metadata=None)

    services = tuple(
        dataclasses.replace(strip(s), handlers=tuple(strip(h) for h in s.handlers))
        for s in manifest.services
    )
    return dataclasses.replace(manifest, services=services)


def _service(definition: Definition) -> pd.Service:
    options = definition.options
    return pd.Service(
        name=definition.name,
        ty=pd.ServiceType(definition.service_type),
        handlers=tuple(_handler(h) for h in definition),
        documentation=options.description,
        metadata=dict(options.metadata) if options.metadata else None,
        options=pd.ServiceOptions(**_option_values(options)),
    )


def _handler(handler: Handler) -> pd.Handler:
    options = handler.options
    values = _option_values(options)
    return pd.Handler(
        name=handler.name,
        ty=pd.HandlerType(handler.handler_type) if handler.handler_type else None,
        input=_input(handler.input),
        output=_output(handler.output),
        documentation=options.description,
        metadata=dict(options.metadata) if options.metadata else None,
        options=pd.HandlerOptions(
            **values, workflow_completion_retention_ms=_millis(options.workflow_retention)
        ),
    )


def _input(payload: Payload) -> pd.InputPayload:
    if payload.is_void:
        return pd.InputPayload()  # written as {}: no body expected
    return pd.InputPayload(
        required=not payload.is_optional,
        content_type=payload.content_type,
        json_schema=_schema(payload, "validation"),
    )


def _output(payload: Payload) -> pd.OutputPayload:
    if payload.is_void:
        return pd.OutputPayload(set_content_type_if_empty=False)
    return pd.OutputPayload(
        content_type=payload.content_type,
        set_content_type_if_empty=False,
        json_schema=_schema(payload, "serialization"),
    )


def _schema(payload: Payload, mode: Literal["validation", "serialization"]) -> Any:
    custom = getattr(payload.serde, "json_schema", None)
    if callable(custom):
        return custom(mode)
    if payload.has_custom_serde or "json" not in (payload.content_type or ""):
        return None  # bytes of a format we do not know: nothing to describe
    return json_schema(payload.type_hint, mode=mode)


def _millis(delta: timedelta | None) -> int | None:
    return None if delta is None else delta // timedelta(milliseconds=1)


def _option_values(options: Options) -> dict[str, Any]:
    policy = options.retry_policy
    retry = pd.RetryPolicyOptions()
    if policy is not None:
        retry = pd.RetryPolicyOptions(
            initial_interval_ms=_millis(_delta(policy.initial_interval)),
            max_interval_ms=_millis(_delta(policy.max_interval)),
            max_attempts=policy.max_attempts,
            exponentiation_factor=(
                None
                if policy.exponentiation_factor is None
                else float(policy.exponentiation_factor)
            ),
            on_max_attempts=(
                None
                if policy.on_max_attempts is None
                else pd.OnMaxAttempts(policy.on_max_attempts.upper())
            ),
        )
    return {
        "inactivity_timeout_ms": _millis(options.inactivity_timeout),
        "abort_timeout_ms": _millis(options.abort_timeout),
        "journal_retention_ms": _millis(options.journal_retention),
        "idempotency_retention_ms": _millis(options.idempotency_retention),
        "enable_lazy_state": options.enable_lazy_state,
        "ingress_private": options.ingress_private,
        "retry_policy": retry,
    }


def _delta(value: Any) -> timedelta | None:
    # RetryPolicy normalises its intervals to timedelta in __post_init__.
    return value if isinstance(value, timedelta) else None
