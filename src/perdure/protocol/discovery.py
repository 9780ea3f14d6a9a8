"""The endpoint manifest (discovery v1-v4): models, validating parser, writer; the public face."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum

from perdure.protocol.discovery_fields import (
    HANDLER_OPTION_FIELDS,
    SERVICE_OPTION_FIELDS,
    FieldReader,
    HandlerOptions,
    JsonValue,
    NewerField,
    OnMaxAttempts,
    RetryPolicyOptions,
    ServiceOptions,
    check_json,
    load_json,
    newer_fields,
    read_handler_options,
    read_service_options,
    show,
    write_options,
)
from perdure.protocol.discovery_versions import (
    DISCOVER_PATH,
    LATEST_MANIFEST_VERSION,
    SDK_MANIFEST_VERSIONS,
    SERVER_MANIFEST_VERSIONS,
    ManifestError,
    ManifestVersion,
    accept_header,
    negotiate_version,
    version_from_content_type,
)

__all__ = [
    "DEFAULT_INPUT",
    "DEFAULT_OUTPUT",
    "DISCOVER_PATH",
    "LATEST_MANIFEST_VERSION",
    "SDK_MANIFEST_VERSIONS",
    "SERVER_MANIFEST_VERSIONS",
    "Endpoint",
    "Handler",
    "HandlerOptions",
    "HandlerType",
    "InputPayload",
    "JsonValue",
    "LambdaCompression",
    "ManifestError",
    "ManifestVersion",
    "NewerField",
    "OnMaxAttempts",
    "OutputPayload",
    "ProtocolMode",
    "RetryPolicyOptions",
    "Service",
    "ServiceOptions",
    "ServiceType",
    "accept_header",
    "default_handler_type",
    "negotiate_version",
    "newer_fields",
    "parse_manifest",
    "version_from_content_type",
]

# Name patterns from service-protocol/endpoint_manifest_schema.json.
_SERVICE_NAME = re.compile(r"([a-zA-Z]|_[a-zA-Z0-9])[a-zA-Z0-9._-]*")
_HANDLER_NAME = re.compile(r"([a-zA-Z]|_[a-zA-Z0-9])[a-zA-Z0-9_]*")


class ProtocolMode(Enum):
    BIDI_STREAM = "BIDI_STREAM"
    REQUEST_RESPONSE = "REQUEST_RESPONSE"


class ServiceType(Enum):
    SERVICE = "SERVICE"
    VIRTUAL_OBJECT = "VIRTUAL_OBJECT"
    WORKFLOW = "WORKFLOW"


class HandlerType(Enum):
    EXCLUSIVE = "EXCLUSIVE"
    SHARED = "SHARED"
    WORKFLOW = "WORKFLOW"


class LambdaCompression(Enum):
    ZSTD = "zstd"


# Which declared handler types each service type accepts, and what "unset" means there
# (restate crates/types/src/schema/metadata/updater/mod.rs, Handler::from_schema). Handlers of
# a plain service have no type of their own, hence None.
_HANDLER_TYPES: Mapping[ServiceType, Mapping[HandlerType | None, HandlerType | None]] = {
    ServiceType.SERVICE: {None: None, HandlerType.SHARED: None},
    ServiceType.VIRTUAL_OBJECT: {
        None: HandlerType.EXCLUSIVE,
        HandlerType.EXCLUSIVE: HandlerType.EXCLUSIVE,
        HandlerType.SHARED: HandlerType.SHARED,
    },
    ServiceType.WORKFLOW: {
        # The schema says "defaults to WORKFLOW", but Restate treats an unset type as SHARED.
        None: HandlerType.SHARED,
        HandlerType.SHARED: HandlerType.SHARED,
        HandlerType.WORKFLOW: HandlerType.WORKFLOW,
    },
}


def default_handler_type(service_type: ServiceType) -> HandlerType | None:
    """The handler type Restate applies when a handler declares none.

    >>> default_handler_type(ServiceType.VIRTUAL_OBJECT)
    <HandlerType.EXCLUSIVE: 'EXCLUSIVE'>
    """
    return _HANDLER_TYPES[service_type][None]


@dataclass(frozen=True, slots=True)
class InputPayload:
    """What a handler accepts; all unset (``{}``) means "no body". `json_schema` is read-only."""

    required: bool | None = None
    content_type: str | None = None
    json_schema: JsonValue = None


@dataclass(frozen=True, slots=True)
class OutputPayload:
    """What a handler returns; `content_type` unset means no content type is set on replies."""

    content_type: str | None = None
    set_content_type_if_empty: bool | None = None
    json_schema: JsonValue = None


# What Restate assumes when a handler has no `input` / `output` at all (the schema's defaults).
DEFAULT_INPUT = InputPayload(required=False, content_type="*/*")
DEFAULT_OUTPUT = OutputPayload(content_type="application/json", set_content_type_if_empty=False)


@dataclass(frozen=True, slots=True)
class Handler:
    """One handler of a service as the manifest declares it."""

    name: str
    ty: HandlerType | None = None
    input: InputPayload | None = None
    output: OutputPayload | None = None
    documentation: str | None = None
    metadata: Mapping[str, str] | None = None
    options: HandlerOptions = field(default_factory=HandlerOptions)

    def effective_type(self, service_type: ServiceType) -> HandlerType | None:
        """The type Restate gives this handler (None for plain-service handlers)."""
        return _HANDLER_TYPES[service_type][self.ty]

    @property
    def effective_input(self) -> InputPayload:
        return DEFAULT_INPUT if self.input is None else self.input

    @property
    def effective_output(self) -> OutputPayload:
        return DEFAULT_OUTPUT if self.output is None else self.output


@dataclass(frozen=True, slots=True)
class Service:
    """One service of a deployment as the manifest declares it."""

    name: str
    ty: ServiceType
    handlers: tuple[Handler, ...]
    documentation: str | None = None
    metadata: Mapping[str, str] | None = None
    options: ServiceOptions = field(default_factory=ServiceOptions)

    def handler(self, name: str) -> Handler | None:
        return next((h for h in self.handlers if h.name == name), None)


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A deployment's endpoint manifest: protocol mode and versions, and its services.

    >>> endpoint = parse_manifest(
    ...     b'{"protocolMode": "BIDI_STREAM", "minProtocolVersion": 5, "maxProtocolVersion": 7,'
    ...     b' "services": [{"name": "Greeter", "ty": "SERVICE", "handlers": [{"name": "greet"}]}]}'
    ... )
    >>> endpoint.services[0].handlers[0].name
    'greet'
    >>> endpoint.to_json(ManifestVersion.V1)[:40]
    b'{"protocolMode":"BIDI_STREAM","minProtoc'
    """

    protocol_mode: ProtocolMode
    min_protocol_version: int
    max_protocol_version: int
    services: tuple[Service, ...]
    lambda_compression: LambdaCompression | None = None

    def service(self, name: str) -> Service | None:
        return next((s for s in self.services if s.name == name), None)

    def supports_protocol(self, version: int) -> bool:
        """Whether the deployment speaks service protocol `version`."""
        return self.min_protocol_version <= version <= self.max_protocol_version

    def to_dict(self, version: ManifestVersion = LATEST_MANIFEST_VERSION) -> dict[str, JsonValue]:
        """The manifest as JSON-ready data with Restate's camelCase names.

        Raises `ManifestError` if a field needs a newer version than `version`, as the
        official SDKs refuse to describe such services in an older manifest, and for anything
        `parse_manifest` would refuse: Perdure never sends a manifest it would not accept.
        """
        document = _endpoint_to_dict(self)
        check_json(document)
        _read_endpoint(document)
        newer = newer_fields(document, version)
        if newer:
            first = newer[0]
            more = f" (and {len(newer) - 1} more)" if len(newer) > 1 else ""
            raise ManifestError(
                first.path,
                f"needs manifest v{first.since.value}, but v{version.value} was asked for{more}; "
                "drop the option or let the server negotiate a newer manifest version",
            )
        return document

    def to_json(self, version: ManifestVersion = LATEST_MANIFEST_VERSION) -> bytes:
        """`to_dict` as compact UTF-8 JSON, ready to send with `version.content_type`."""
        return json.dumps(self.to_dict(version), separators=(",", ":")).encode()


# --- parsing -------------------------------------------------------------------------------

_ENDPOINT_FIELDS = (
    "protocolMode",
    "minProtocolVersion",
    "maxProtocolVersion",
    "services",
    "lambdaCompression",
)
_SERVICE_FIELDS = ("name", "ty", "handlers", "documentation", "metadata", *SERVICE_OPTION_FIELDS)
_HANDLER_FIELDS = (
    "name",
    "ty",
    "input",
    "output",
    "documentation",
    "metadata",
    *HANDLER_OPTION_FIELDS,
)
_INPUT_FIELDS = ("required", "contentType", "jsonSchema")
_OUTPUT_FIELDS = ("contentType", "setContentTypeIfEmpty", "jsonSchema")
_PROTOCOL_VERSION_MAX = 2**31 - 1  # the schema's "maximum" for min/maxProtocolVersion


def parse_manifest(
    data: bytes | bytearray | str | Mapping[str, object],
    *,
    reject_newer_than: ManifestVersion | None = None,
) -> Endpoint:
    """Parses and validates a manifest; any problem is a `ManifestError` naming its JSON path.

    Checks what Restate checks when it registers a deployment: the JSON schema (types, names,
    no unknown fields), a present protocol mode, min <= max protocol version, handler types
    that fit the service type, retention options on the handlers they apply to, and reserved
    service names. It also refuses duplicate service or handler names and duplicate JSON keys,
    which Restate lets the last one win. With `reject_newer_than`, fields that the version
    lacks are refused too (Restate does not do that).

    >>> parse_manifest({"minProtocolVersion": 5, "maxProtocolVersion": 5, "services": []})
    Traceback (most recent call last):
    ...
    perdure.protocol.discovery_versions.ManifestError: protocolMode: is required but missing
    """
    document: object = data
    if isinstance(data, bytes | bytearray | str):
        document = load_json(data)
    elif isinstance(data, Mapping) and not isinstance(data, dict):
        document = dict(data)
    check_json(document)
    endpoint = _read_endpoint(document)
    if reject_newer_than is not None:
        assert isinstance(document, dict)  # _read_endpoint checked it
        newer = newer_fields(document, reject_newer_than)
        if newer:
            raise ManifestError(
                newer[0].path,
                f"needs manifest v{newer[0].since.value}, "
                f"but the manifest declares v{reject_newer_than.value}",
            )
    return endpoint


def _read_endpoint(document: object) -> Endpoint:
    reader = FieldReader(document, "", _ENDPOINT_FIELDS)
    protocol_mode = reader.enum("protocolMode", ProtocolMode, required=True)
    min_version = reader.integer(
        "minProtocolVersion", minimum=1, maximum=_PROTOCOL_VERSION_MAX, required=True
    )
    max_version = reader.integer(
        "maxProtocolVersion", minimum=1, maximum=_PROTOCOL_VERSION_MAX, required=True
    )
    assert protocol_mode is not None and min_version is not None and max_version is not None
    if min_version > max_version:
        raise ManifestError(
            reader.at("minProtocolVersion"),
            f"must not exceed maxProtocolVersion ({min_version} > {max_version})",
        )
    lambda_compression = reader.enum("lambdaCompression", LambdaCompression)
    raw_services = reader.array("services", required=True) or []
    services = tuple(_read_service(item, f"services[{i}]") for i, item in enumerate(raw_services))
    _reject_duplicates([s.name for s in services], "services", "service")
    return Endpoint(protocol_mode, min_version, max_version, services, lambda_compression)


def _read_service(value: object, path: str) -> Service:
    reader = FieldReader(value, path, _SERVICE_FIELDS)
    name = reader.string("name", required=True)
    ty = reader.enum("ty", ServiceType, required=True)
    assert name is not None and ty is not None
    _check_service_name(name, reader.at("name"))
    raw_handlers = reader.array("handlers", required=True) or []
    options = read_service_options(reader)
    handlers = tuple(
        _read_handler(item, f"{reader.at('handlers')}[{i}]", ty, options)
        for i, item in enumerate(raw_handlers)
    )
    _reject_duplicates([h.name for h in handlers], reader.at("handlers"), "handler")
    return Service(
        name=name,
        ty=ty,
        handlers=handlers,
        documentation=reader.string("documentation"),
        metadata=reader.string_map("metadata"),
        options=options,
    )


def _check_service_name(name: str, path: str) -> None:
    if not _SERVICE_NAME.fullmatch(name):
        raise ManifestError(
            path,
            f"{show(name)} is not a valid service name: start with a letter (or '_' and a "
            "letter or digit), then use letters, digits, '.', '_' and '-'",
        )
    lowered = name.lower()
    if lowered.startswith("restate") or lowered == "openapi":
        raise ManifestError(
            path,
            f"{show(name)} is reserved (names starting with 'restate', and 'openapi', belong "
            "to the server); rename the service",
        )


def _read_handler(
    value: object, path: str, service_type: ServiceType, service_options: ServiceOptions
) -> Handler:
    reader = FieldReader(value, path, _HANDLER_FIELDS)
    name = reader.string("name", required=True)
    assert name is not None
    if not _HANDLER_NAME.fullmatch(name):
        raise ManifestError(
            reader.at("name"),
            f"{show(name)} is not a valid handler name: start with a letter (or '_' and a "
            "letter or digit), then use letters, digits and '_'",
        )
    ty = reader.enum("ty", HandlerType)
    allowed = _HANDLER_TYPES[service_type]
    if ty not in allowed:
        assert ty is not None  # unset is allowed in every service type
        choices = " or ".join(t.value for t in allowed if t is not None)
        raise ManifestError(
            reader.at("ty"),
            f"a {service_type.value} handler must be {choices} or unset, got {ty.value}",
        )
    options = read_handler_options(reader)
    _check_handler_options(reader, allowed[ty], options, service_options)
    return Handler(
        name=name,
        ty=ty,
        input=_read_input(reader),
        output=_read_output(reader),
        documentation=reader.string("documentation"),
        metadata=reader.string_map("metadata"),
        options=options,
    )


def _check_handler_options(
    reader: FieldReader,
    effective: HandlerType | None,
    options: HandlerOptions,
    service_options: ServiceOptions,
) -> None:
    is_workflow_run = effective is HandlerType.WORKFLOW
    if options.workflow_completion_retention_ms is not None and not is_workflow_run:
        raise ManifestError(
            reader.at("workflowCompletionRetention"),
            "only a WORKFLOW handler keeps a completed workflow; use idempotencyRetention here",
        )
    if options.idempotency_retention_ms is not None and is_workflow_run:
        raise ManifestError(
            reader.at("idempotencyRetention"),
            "a WORKFLOW handler is retained by workflowCompletionRetention instead",
        )
    if service_options.ingress_private is True and options.ingress_private is False:
        raise ManifestError(
            reader.at("ingressPrivate"),
            "the service is private, so a handler cannot be made public; make the service "
            "public and mark the handlers to hide as private instead",
        )


def _read_input(handler: FieldReader) -> InputPayload | None:
    if not handler.has("input"):
        return None
    reader = FieldReader(handler.raw("input"), handler.at("input"), _INPUT_FIELDS)
    content_type = reader.string("contentType")
    if content_type is not None:
        kind, slash, subtype = content_type.strip().partition("/")
        if not slash:
            raise ManifestError(reader.at("contentType"), f"{show(content_type)} needs one '/'")
        if kind == "*" and subtype != "*":
            raise ManifestError(
                reader.at("contentType"),
                f"{show(content_type)}: the wildcard form */subtype is not supported",
            )
    return InputPayload(
        required=reader.boolean("required"),
        content_type=content_type,
        json_schema=reader.raw("jsonSchema"),
    )


def _read_output(handler: FieldReader) -> OutputPayload | None:
    if not handler.has("output"):
        return None
    reader = FieldReader(handler.raw("output"), handler.at("output"), _OUTPUT_FIELDS)
    content_type = reader.string("contentType")
    # Restate puts it in a Content-Type header: visible ASCII and tabs only.
    if content_type is not None and not all(c == "\t" or " " <= c <= "~" for c in content_type):
        raise ManifestError(
            reader.at("contentType"), f"{show(content_type)} is not a valid header value"
        )
    return OutputPayload(
        content_type=content_type,
        set_content_type_if_empty=reader.boolean("setContentTypeIfEmpty"),
        json_schema=reader.raw("jsonSchema"),
    )


def _reject_duplicates(names: Sequence[str], path: str, what: str) -> None:
    seen: set[str] = set()
    for index, name in enumerate(names):
        if name in seen:
            raise ManifestError(
                f"{path}[{index}].name", f"a second {what} named {show(name)}; names must be unique"
            )
        seen.add(name)


# --- writing -------------------------------------------------------------------------------


def _put(out: dict[str, JsonValue], name: str, value: JsonValue) -> None:
    if value is not None:
        out[name] = value


def _endpoint_to_dict(endpoint: Endpoint) -> dict[str, JsonValue]:
    out: dict[str, JsonValue] = {
        "protocolMode": endpoint.protocol_mode.value,
        "minProtocolVersion": endpoint.min_protocol_version,
        "maxProtocolVersion": endpoint.max_protocol_version,
        "services": [_service_to_dict(s) for s in endpoint.services],
    }
    if endpoint.lambda_compression is not None:
        out["lambdaCompression"] = endpoint.lambda_compression.value
    return out


def _entry_to_dict(entry: Service | Handler, ty: Enum | None) -> dict[str, JsonValue]:
    out: dict[str, JsonValue] = {"name": entry.name}
    if ty is not None:
        out["ty"] = ty.value
    return out


def _service_to_dict(service: Service) -> dict[str, JsonValue]:
    out = _entry_to_dict(service, service.ty)
    out["handlers"] = [_handler_to_dict(h) for h in service.handlers]
    _put(out, "documentation", service.documentation)
    _put(out, "metadata", None if service.metadata is None else dict(service.metadata))
    out.update(write_options(service.options))
    return out


def _handler_to_dict(handler: Handler) -> dict[str, JsonValue]:
    out = _entry_to_dict(handler, handler.ty)
    if handler.input is not None:
        payload: dict[str, JsonValue] = {}
        _put(payload, "required", handler.input.required)
        _put(payload, "contentType", handler.input.content_type)
        _put(payload, "jsonSchema", handler.input.json_schema)
        out["input"] = payload
    if handler.output is not None:
        payload = {}
        _put(payload, "contentType", handler.output.content_type)
        _put(payload, "setContentTypeIfEmpty", handler.output.set_content_type_if_empty)
        _put(payload, "jsonSchema", handler.output.json_schema)
        out["output"] = payload
    _put(out, "documentation", handler.documentation)
    _put(out, "metadata", None if handler.metadata is None else dict(handler.metadata))
    out.update(write_options(handler.options))
    return out
