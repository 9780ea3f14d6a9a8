"""Manifest fields: JSON reading that names paths, the options, and the version each needs."""

from __future__ import annotations

import json
import math
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass, field, fields
from enum import Enum
from typing import Any, TypeAlias, TypeVar

from perdure.protocol.discovery_versions import ManifestError, ManifestVersion

__all__ = [
    "HANDLER_OPTION_FIELDS",
    "MAX_JSON_DEPTH",
    "SERVICE_OPTION_FIELDS",
    "U64_MAX",
    "FieldReader",
    "HandlerOptions",
    "JsonValue",
    "NewerField",
    "OnMaxAttempts",
    "RetryPolicyOptions",
    "ServiceOptions",
    "check_json",
    "load_json",
    "newer_fields",
    "read_handler_options",
    "read_service_options",
    "write_options",
]

JsonValue: TypeAlias = "bool | int | float | str | list[JsonValue] | dict[str, JsonValue] | None"

U64_MAX = (1 << 64) - 1  # durations and counts are u64 in Restate's generated manifest types
# serde_json, which parses manifests in Restate, refuses documents nested deeper than this.
MAX_JSON_DEPTH = 128
_E = TypeVar("_E", bound=Enum)


def join_path(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def show(value: object) -> str:
    """A short rendering of a JSON value for an error message."""
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        text = value if len(value) <= 40 else value[:37] + "..."
        # Escape lone surrogates so that the message itself can always be printed and logged.
        text = text.encode("utf-8", "backslashreplace").decode().replace('"', '\\"')
        return f'"{text}"'
    return repr(value)


class FieldReader:
    """Reads typed fields out of one JSON object; every error names the field's JSON path.

    Unknown fields are refused, as Restate's manifest types do (`additionalProperties: false`
    in the schema becomes `deny_unknown_fields`). An optional field set to null counts as
    absent, as serde reads `Option` fields.
    """

    def __init__(self, value: object, path: str, allowed: Collection[str]) -> None:
        if not isinstance(value, dict):
            where = path or "the manifest"
            raise ManifestError(path, f"expected {where} to be an object, got {show(value)}")
        for name in value:
            if name not in allowed:
                raise ManifestError(
                    join_path(path, name),
                    f"unknown field; the fields allowed here are {', '.join(sorted(allowed))}",
                )
        self._object: dict[str, Any] = value
        self.path = path

    def at(self, name: str) -> str:
        return join_path(self.path, name)

    def has(self, name: str) -> bool:
        return self._object.get(name) is not None

    def _get(self, name: str, required: bool) -> object:
        value = self._object.get(name)
        if value is None and required:
            reason = "must not be null" if name in self._object else "is required but missing"
            raise ManifestError(self.at(name), reason)
        return value

    def string(self, name: str, *, required: bool = False) -> str | None:
        value = self._get(name, required)
        if value is not None and not isinstance(value, str):
            raise ManifestError(self.at(name), f"expected a string, got {show(value)}")
        return value

    def integer(
        self, name: str, *, minimum: int = 0, maximum: int = U64_MAX, required: bool = False
    ) -> int | None:
        value = self._get(name, required)
        if value is None:
            return None
        # bool is an int in Python but not in JSON; 5.0 is not an integer to serde_json either.
        if isinstance(value, bool) or not isinstance(value, int):
            raise ManifestError(self.at(name), f"expected an integer, got {show(value)}")
        if not minimum <= value <= maximum:
            raise ManifestError(
                self.at(name), f"must be between {minimum} and {maximum}, got {value}"
            )
        return value

    def number(self, name: str) -> float | None:
        value = self._get(name, False)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ManifestError(self.at(name), f"expected a number, got {show(value)}")
        if isinstance(value, float) and not math.isfinite(value):
            raise ManifestError(self.at(name), f"must be a finite number, got {value}")
        return float(value)

    def boolean(self, name: str) -> bool | None:
        value = self._get(name, False)
        if value is not None and not isinstance(value, bool):
            raise ManifestError(self.at(name), f"expected true or false, got {show(value)}")
        return value

    def enum(self, name: str, enum_type: type[_E], *, required: bool = False) -> _E | None:
        value = self._get(name, required)
        if value is None:
            return None
        for member in enum_type:
            if member.value == value:
                return member
        choices = ", ".join(sorted(str(member.value) for member in enum_type))
        raise ManifestError(self.at(name), f"expected one of {choices}, got {show(value)}")

    def array(self, name: str, *, required: bool = False) -> list[object] | None:
        value = self._get(name, required)
        if value is not None and not isinstance(value, list):
            raise ManifestError(self.at(name), f"expected an array, got {show(value)}")
        return value

    def string_map(self, name: str) -> dict[str, str] | None:
        value = self._get(name, False)
        if value is None:
            return None
        if not isinstance(value, dict):
            raise ManifestError(self.at(name), f"expected an object of strings, got {show(value)}")
        for key, item in value.items():
            if not isinstance(item, str):
                path = join_path(self.at(name), key)
                raise ManifestError(path, f"expected a string, got {show(item)}")
        return dict(value)

    def raw(self, name: str) -> JsonValue:
        value: JsonValue = self._object.get(name)
        return value


def _reject_duplicate_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
    result: dict[str, object] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {show(key)} in a JSON object")
        result[key] = value
    return result


def _reject_constant(name: str) -> object:
    raise ValueError(f"{name} is not valid JSON")


def load_json(data: bytes | bytearray | str) -> object:
    """Decodes a JSON document as serde_json would accept it, or raises `ManifestError`.

    Unlike Python's `json`, serde_json refuses NaN and Infinity, and duplicate fields of the
    manifest's own objects; Perdure refuses duplicate keys anywhere in the document.
    """
    try:
        return json.loads(
            data, object_pairs_hook=_reject_duplicate_keys, parse_constant=_reject_constant
        )
    except RecursionError:
        raise ManifestError("", f"the manifest nests deeper than {MAX_JSON_DEPTH} levels") from None
    except ValueError as error:  # JSONDecodeError, UnicodeDecodeError, and the hooks above
        raise ManifestError("", f"the manifest is not valid JSON: {error}") from None


def check_json(document: object) -> None:
    """Checks that `document` is plain JSON data: finite, valid Unicode, not nested too deep."""
    stack: list[tuple[object, int]] = [(document, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict | list) and depth > MAX_JSON_DEPTH:
            raise ManifestError("", f"the manifest nests deeper than {MAX_JSON_DEPTH} levels")
        if isinstance(value, dict):
            for key, item in value.items():
                if not isinstance(key, str):
                    raise ManifestError("", f"object keys must be strings, got {key!r}")
                stack.append((key, depth))
                stack.append((item, depth + 1))
        elif isinstance(value, list):
            stack.extend((item, depth + 1) for item in value)
        elif isinstance(value, float) and not math.isfinite(value):
            raise ManifestError("", f"{value} is not a JSON number")
        elif isinstance(value, str) and not _is_encodable(value):
            # A lone surrogate ("\ud800") decodes in Python but is not Unicode text.
            raise ManifestError("", f"{show(value)} is not valid Unicode")
        elif not isinstance(value, dict | list | str | float | int | None):
            raise ManifestError("", f"a {type(value).__name__} is not a JSON value")


def _is_encodable(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


# --- options ---------------------------------------------------------------------------------


class OnMaxAttempts(Enum):
    """What Restate does when the retry policy runs out of attempts."""

    PAUSE = "PAUSE"
    KILL = "KILL"


@dataclass(frozen=True, slots=True)
class RetryPolicyOptions:
    """The retryPolicy* fields (manifest v4); None means "use the server's default"."""

    initial_interval_ms: int | None = None
    max_interval_ms: int | None = None
    max_attempts: int | None = None
    exponentiation_factor: float | None = None
    on_max_attempts: OnMaxAttempts | None = None


@dataclass(frozen=True, slots=True)
class ServiceOptions:
    """Service-level options (manifest v3 and v4). Durations are milliseconds; None = unset."""

    inactivity_timeout_ms: int | None = None
    abort_timeout_ms: int | None = None
    journal_retention_ms: int | None = None
    idempotency_retention_ms: int | None = None
    enable_lazy_state: bool | None = None
    ingress_private: bool | None = None
    retry_policy: RetryPolicyOptions = field(default_factory=RetryPolicyOptions)


@dataclass(frozen=True, slots=True)
class HandlerOptions(ServiceOptions):
    """Handler-level options: the service's, plus the workflow's completion retention."""

    workflow_completion_retention_ms: int | None = None


@dataclass(frozen=True, slots=True)
class _Option:
    json_name: str
    attribute: str
    kind: str  # "ms", "count", "flag", "factor", "on_max"
    since: ManifestVersion


_V3, _V4 = ManifestVersion.V3, ManifestVersion.V4
# In the order the official SDKs write them, so our JSON reads like theirs.
_OPTIONS = (
    _Option("inactivityTimeout", "inactivity_timeout_ms", "ms", _V3),
    _Option("abortTimeout", "abort_timeout_ms", "ms", _V3),
    _Option("journalRetention", "journal_retention_ms", "ms", _V3),
    _Option("idempotencyRetention", "idempotency_retention_ms", "ms", _V3),
    _Option("workflowCompletionRetention", "workflow_completion_retention_ms", "ms", _V3),
    _Option("enableLazyState", "enable_lazy_state", "flag", _V3),
    _Option("ingressPrivate", "ingress_private", "flag", _V3),
)
_RETRY_OPTIONS = (
    _Option("retryPolicyInitialInterval", "initial_interval_ms", "ms", _V4),
    _Option("retryPolicyMaxInterval", "max_interval_ms", "ms", _V4),
    _Option("retryPolicyMaxAttempts", "max_attempts", "count", _V4),
    _Option("retryPolicyExponentiationFactor", "exponentiation_factor", "factor", _V4),
    _Option("retryPolicyOnMaxAttempts", "on_max_attempts", "on_max", _V4),
)
_HANDLER_ONLY = "workflowCompletionRetention"

SERVICE_OPTION_FIELDS = tuple(
    o.json_name for o in _OPTIONS + _RETRY_OPTIONS if o.json_name != _HANDLER_ONLY
)
HANDLER_OPTION_FIELDS = tuple(o.json_name for o in _OPTIONS + _RETRY_OPTIONS)
OPTION_SINCE: Mapping[str, ManifestVersion] = {
    o.json_name: o.since for o in _OPTIONS + _RETRY_OPTIONS
}


def _read_one(reader: FieldReader, option: _Option) -> object:
    if option.kind in ("ms", "count"):
        return reader.integer(option.json_name)
    if option.kind == "flag":
        return reader.boolean(option.json_name)
    if option.kind == "factor":
        return reader.number(option.json_name)
    return reader.enum(option.json_name, OnMaxAttempts)


def read_service_options(reader: FieldReader) -> ServiceOptions:
    return ServiceOptions(**_read_options(reader, handler=False))


def read_handler_options(reader: FieldReader) -> HandlerOptions:
    return HandlerOptions(**_read_options(reader, handler=True))


def _read_options(reader: FieldReader, *, handler: bool) -> dict[str, Any]:
    values: dict[str, Any] = {
        option.attribute: _read_one(reader, option)
        for option in _OPTIONS
        if handler or option.json_name != _HANDLER_ONLY
    }
    retry: dict[str, Any] = {
        option.attribute: _read_one(reader, option) for option in _RETRY_OPTIONS
    }
    values["retry_policy"] = RetryPolicyOptions(**retry)
    return values


def write_options(options: ServiceOptions) -> dict[str, JsonValue]:
    """The options as manifest fields (camelCase), leaving out the unset ones."""
    present = {f.name for f in fields(options)}
    out: dict[str, JsonValue] = {}
    for option in _OPTIONS:
        if option.attribute in present:
            _write_one(out, option, getattr(options, option.attribute))
    for option in _RETRY_OPTIONS:
        _write_one(out, option, getattr(options.retry_policy, option.attribute))
    return out


def _write_one(out: dict[str, JsonValue], option: _Option, value: object) -> None:
    if value is None:
        return
    if isinstance(value, OnMaxAttempts):
        out[option.json_name] = value.value
    else:
        assert isinstance(value, bool | int | float)
        out[option.json_name] = value


# --- version gates ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NewerField:
    """A field that a given manifest version cannot carry yet."""

    path: str
    since: ManifestVersion


_V2 = ManifestVersion.V2
_ENTRY_SINCE: Mapping[str, ManifestVersion] = {
    "documentation": _V2,
    "metadata": _V2,
    **OPTION_SINCE,
}
_ENDPOINT_SINCE: Mapping[str, ManifestVersion] = {"lambdaCompression": _V4}


def newer_fields(
    document: Mapping[str, object], version: ManifestVersion
) -> tuple[NewerField, ...]:
    """The fields of a manifest document (JSON data) that `version` does not have yet.

    Restate parses every version with its newest schema, so it never rejects these; Perdure
    uses this to write honest manifests and, when asked, to parse strictly.

    >>> newer_fields({"services": [{"name": "S", "inactivityTimeout": 5}]}, ManifestVersion.V2)
    (NewerField(path='services[0].inactivityTimeout', since=<ManifestVersion.V3: 3>),)
    """
    return tuple(_walk_newer(document, version))


def _walk_newer(document: Mapping[str, object], version: ManifestVersion) -> Iterator[NewerField]:
    yield from _gated(document, "", _ENDPOINT_SINCE, version)
    for s, service in _items(document.get("services")):
        service_path = f"services[{s}]"
        yield from _gated(service, service_path, _ENTRY_SINCE, version)
        for h, handler in _items(service.get("handlers")):
            yield from _gated(handler, f"{service_path}.handlers[{h}]", _ENTRY_SINCE, version)


def _items(value: object) -> Iterator[tuple[int, Mapping[str, object]]]:
    if isinstance(value, list):
        for index, item in enumerate(value):
            if isinstance(item, dict):
                yield index, item


def _gated(
    obj: Mapping[str, object],
    path: str,
    since: Mapping[str, ManifestVersion],
    version: ManifestVersion,
) -> Iterator[NewerField]:
    for name, value in obj.items():
        needed = since.get(name)
        if value is not None and needed is not None and needed > version:
            yield NewerField(join_path(path, name), needed)
