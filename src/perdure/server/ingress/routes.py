"""Pure ingress routing: (method, path, query, headers, registry) -> a typed request or an error.

Follows Restate's ingress (crates/ingress-http/src/handler/path_parsing.rs and friends):

    POST /{service}/{handler}[/send]              a service
    POST /{object}/{key}/{handler}[/send]         a virtual object or workflow (key URL-decoded)
    POST /restate/call|send/{service}[/{key}]/{handler}
    GET  /restate/invocation/{id}/attach|output
    GET  /restate/invocation/{service}[/{key}]/{handler}/{idempotency key}/attach|output
    GET  /restate/workflow/{name}/{key}/attach|output
    GET  /restate/attach|output/{id};  POST /restate/attach|output|lookup with a JSON target
    POST /restate/awakeables/{id}/resolve|reject   (also /restate/a/...)
    GET  /restate/health

Nothing here does I/O: the registry is a value, and the request body is checked by
`payloads.check_input` once the app has read it. Messages go further than Restate's where a
person can be told the exact fix (the path they should have used, the header they forgot).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote

from perdure.protocol.ids import AwakeableId, InvalidId, InvocationId
from perdure.server import errors as E
from perdure.server.config_text import DURATION_EXAMPLES, parse_duration_ms
from perdure.server.errors import PerdureError
from perdure.server.partition.events import AttachBy, CallMode
from perdure.server.registry import HandlerInfo, Registry, ServiceInfo
from perdure.server.storage.api import HandlerType, ServiceType, Target

IDEMPOTENCY_KEY = "idempotency-key"
# A key is stored with its invocation, hashed into the invocation id, and carried
# percent-encoded (up to 3 bytes per byte) in attach URLs: 1 KiB keeps such a URL under the
# 8 KiB request-line limit common to HTTP servers and proxies, and is far above a UUID (36) or
# a composite business key. Stripe, for comparison, allows 255 characters.
MAX_IDEMPOTENCY_KEY_BYTES = E.MAX_IDEMPOTENCY_KEY_BYTES
# The longest delay a send accepts: ten years. Longer is more likely a unit mistake than a plan,
# and the due time stays far inside the 64-bit millisecond clock the storage keeps.
MAX_DELAY_MS = 10 * 365 * 86_400_000

INGRESS_PATH_HEADER = "x-restate-ingress-path"
# Hop-by-hop and ingress-only headers are not handed to the handler (Restate's parse_headers).
_NOT_FORWARDED = frozenset(("connection", "host", IDEMPOTENCY_KEY, "idempotency-expires"))

PATH_FORMS = (
    "Paths: POST /{service}/{handler}, POST /{object}/{key}/{handler} (append /send to not "
    "wait), GET /restate/invocation/{id}/attach|output, GET /restate/workflow/{name}/{key}/"
    "attach|output, POST /restate/awakeables/{id}/resolve|reject, GET /restate/health."
)


@dataclass(frozen=True, slots=True)
class Invoke:
    """Call (wait for the output) or send (answer once accepted) a handler."""

    target: Target
    handler: HandlerInfo
    mode: CallMode
    idempotency_key: str | None = None
    delay_ms: int | None = None


@dataclass(frozen=True, slots=True)
class GetOutput:
    """Attach to an invocation (`wait`) or peek at its output (`not wait`)."""

    wait: bool
    by: AttachBy
    invocation_id: str | None = None
    target: Target | None = None
    idempotency_key: str | None = None


@dataclass(frozen=True, slots=True)
class GetOutputByBody:
    """POST /restate/attach|output: the target is in a JSON body (`parse_target_body`)."""

    wait: bool


@dataclass(frozen=True, slots=True)
class Lookup:
    """POST /restate/lookup: the invocation id a target has (or will have)."""


@dataclass(frozen=True, slots=True)
class CompleteAwakeable:
    awakeable_id: str
    invocation_id: str
    index: int
    resolve: bool


@dataclass(frozen=True, slots=True)
class Health:
    pass


IngressRequest = Invoke | GetOutput | GetOutputByBody | Lookup | CompleteAwakeable | Health


def parse_request(
    method: str,
    path: str,
    query: Sequence[tuple[str, str]],
    headers: Sequence[tuple[str, str]],
    registry: Registry,
    *,
    admin_address: str = "localhost:9070",
) -> IngressRequest | PerdureError:
    """Routes one request; the body, if any, is the app's to read.

    >>> from perdure.server.registry import Registry
    >>> parse_request("POST", "/Nope/run", [], [], Registry()).kind.code
    'PD-1001'
    """
    try:
        return _Router(method, query, headers, registry, admin_address).route(path)
    except PerdureError as error:
        return error


class _Router:
    def __init__(
        self,
        method: str,
        query: Sequence[tuple[str, str]],
        headers: Sequence[tuple[str, str]],
        registry: Registry,
        admin_address: str,
    ) -> None:
        self.method = method
        self.query = query
        self.headers = headers
        self.registry = registry
        self.admin_address = admin_address

    def route(self, path: str) -> IngressRequest:
        segments = path.split("/")[1:]
        if not segments or segments == [""]:
            raise E.route_not_found(path, PATH_FORMS)
        if len(segments) > 7:  # the longest form, /restate/scope/{s}/call/{svc}/{key}/{h}
            raise PerdureError(E.BAD_SERVICE_PATH, f"The path '{_clip(path)}' is too long.")
        first, rest = segments[0], segments[1:]
        if first == "restate":
            return self._restate(rest, path)
        return self._service(first, rest, CallMode.CALL, legacy=True)

    # --- services -------------------------------------------------------------------------

    def _service(self, name: str, parts: list[str], mode: CallMode, *, legacy: bool) -> Invoke:
        info = self.registry.service(name)
        if info is None:
            raise E.service_not_found(name, self.registry.service_names(), self.admin_address)
        key = ""
        if _keyed(info):
            if len(parts) < 2:
                raise self._key_required(info, parts, mode)
            key = decode_segment(parts[0], "key")
            parts = parts[1:]
        if legacy and len(parts) == 2 and parts[1] == "send":
            parts, mode = parts[:1], CallMode.SEND
        if len(parts) != 1 or not parts[0]:
            raise self._bad_service_path(info, parts, mode)
        handler = info.handlers.get(parts[0])
        if handler is None:
            raise self._handler_missing(info, parts[0], key)
        if not handler.public:
            raise PerdureError(
                E.PRIVATE_HANDLER, f"The handler '{info.name}/{handler.name}' is not public."
            )
        idempotency_key = self._header(IDEMPOTENCY_KEY)
        if idempotency_key is not None:
            check_idempotency_key(idempotency_key, from_header=True)
        if idempotency_key is not None and handler.handler_type is HandlerType.WORKFLOW:
            raise PerdureError(
                E.IDEMPOTENCY_KEY_ON_WORKFLOW,
                f"'{info.name}/{handler.name}' is a workflow's run handler and takes no "
                "idempotency key.",
            )
        if self.method not in ("POST", "GET"):
            raise E.method_not_allowed(self.method, ("POST", "GET"))
        delay_ms = self._delay()
        if delay_ms is not None and mode is CallMode.CALL:
            raise PerdureError(
                E.DELAY_ON_CALL,
                "The delay query parameter works only with sends; this request is a call.",
                hint=f"Send instead: POST /{_path_of(info, key, handler.name)}/send?delay=..., "
                "which answers 202 at once and runs the handler when the delay is over.",
            )
        target = Target(info.name, handler.name, key, info.service_type, handler.handler_type)
        return Invoke(target, handler, mode, idempotency_key, delay_ms)

    def _key_required(self, info: ServiceInfo, parts: list[str], mode: CallMode) -> PerdureError:
        handler = parts[0] if parts and parts[0] in info.handlers else "{handler}"
        send = "/send" if mode is CallMode.SEND else ""
        return PerdureError(
            E.BAD_SERVICE_PATH,
            f"'{info.name}' is a {_kind_name(info)}, so its handlers are called with a key.",
            hint=f"Put the key in the path: POST /{info.name}/{{key}}/{handler}{send}.",
        )

    def _bad_service_path(
        self, info: ServiceInfo, parts: list[str], mode: CallMode
    ) -> PerdureError:
        if not _keyed(info) and len(parts) == 2 and parts[1] in info.handlers:
            return PerdureError(
                E.BAD_SERVICE_PATH,
                f"'{info.name}' is a service and takes no key, but the path gives one.",
                hint=f"Call POST /{info.name}/{parts[1]} (or .../{parts[1]}/send).",
            )
        shape = "/{key}/{handler}" if _keyed(info) else "/{handler}"
        return PerdureError(
            E.BAD_SERVICE_PATH,
            f"The path does not fit the {_kind_name(info)} '{info.name}'.",
            hint=f"Use POST /{info.name}{shape}, with /send appended to not wait.",
        )

    def _handler_missing(self, info: ServiceInfo, handler: str, key: str) -> PerdureError:
        error = E.handler_not_found(info.name, handler, list(info.handlers))
        if _keyed(info) and key in info.handlers:
            # /Counter/add → key "add", handler missing: the key was most likely forgotten.
            error.hint = f"Did you forget the key? POST /{info.name}/{{key}}/{key}."
        return error

    def _delay(self) -> int | None:
        for name, value in self.query:
            if name.lower() == "delay":
                try:
                    delay_ms = parse_duration_ms(value)
                except ValueError as exc:
                    raise PerdureError(
                        E.BAD_DELAY,
                        f"The delay '{_clip(value, 60)}' is not a duration: {exc}.",
                        hint=f"Write it like {DURATION_EXAMPLES}.",
                    ) from None
                if delay_ms > MAX_DELAY_MS:
                    raise PerdureError(
                        E.BAD_DELAY,
                        f"The delay '{_clip(value, 60)}' is longer than ten years, the longest "
                        "a send can wait.",
                        hint="Check the unit (ms, s, m, h, d); for a far-off date, send later "
                        "or schedule from a handler with a durable sleep.",
                    )
                return delay_ms
        return None

    def _header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key.lower() == name:
                return value
        return None

    # --- /restate/... ---------------------------------------------------------------------

    def _restate(self, parts: list[str], path: str) -> IngressRequest:
        verb, rest = (parts[0], parts[1:]) if parts else ("", [])
        if verb == "health":
            self._require("GET")
            return Health()
        if verb in ("awakeables", "a"):
            return self._awakeable(rest)
        if verb == "invocation":
            return self._invocation(rest)
        if verb == "workflow":
            return self._workflow(rest)
        if verb in ("call", "send"):
            mode = CallMode.CALL if verb == "call" else CallMode.SEND
            if not rest:
                raise self._bad_restate_path()
            return self._service(rest[0], rest[1:], mode, legacy=False)
        if verb == "scope":
            raise PerdureError(E.SCOPE_NOT_SUPPORTED, "Scoped invocations are not supported.")
        if verb in ("attach", "output"):
            wait = verb == "attach"
            if not rest:
                self._require("POST")
                return GetOutputByBody(wait)
            if len(rest) != 1:
                raise self._bad_restate_path()
            self._require("GET")
            return GetOutput(
                wait, AttachBy.INVOCATION_ID, invocation_id=parse_invocation_id(rest[0])
            )
        if verb == "lookup" and not rest:
            self._require("POST")
            return Lookup()
        raise E.route_not_found(path, PATH_FORMS)

    def _require(self, method: str) -> None:
        if self.method != method:
            raise E.method_not_allowed(self.method, (method,))

    def _bad_restate_path(self) -> PerdureError:
        return PerdureError(
            E.BAD_RESTATE_PATH,
            "The /restate path is malformed.",
            hint="Use /restate/call/{service}[/{key}]/{handler}, /restate/send/..., "
            "/restate/attach/{id}, /restate/output/{id} or POST /restate/lookup.",
        )

    def _awakeable(self, parts: list[str]) -> CompleteAwakeable:
        if len(parts) != 2 or parts[1] not in ("resolve", "reject"):
            raise PerdureError(
                E.BAD_RESTATE_PATH,
                "The awakeable path is malformed.",
                hint="Use POST /restate/awakeables/{id}/resolve (the body is the value) or "
                "POST /restate/awakeables/{id}/reject (the body is the reason, as text).",
            )
        self._require("POST")
        raw = parts[0]
        try:
            parsed = AwakeableId.parse(raw)
        except InvalidId as exc:
            raise PerdureError(
                E.BAD_AWAKEABLE_ID, f"The awakeable id '{_clip(raw, 80)}' is invalid: {exc.reason}."
            ) from None
        return CompleteAwakeable(
            raw, parsed.invocation_id.to_str(), parsed.index, parts[1] == "resolve"
        )

    def _invocation(self, parts: list[str]) -> GetOutput:
        bad = PerdureError(
            E.BAD_RESTATE_PATH,
            "The invocation path is malformed.",
            hint="Use GET /restate/invocation/{id}/attach|output, or with an idempotency key "
            "GET /restate/invocation/{service}[/{key}]/{handler}/{idempotency key}/attach|output.",
        )
        if len(parts) < 2 or parts[-1] not in ("attach", "output"):
            raise bad
        wait = parts[-1] == "attach"
        self._require("GET")
        if len(parts) == 2:
            return GetOutput(
                wait, AttachBy.INVOCATION_ID, invocation_id=parse_invocation_id(parts[0])
            )
        name = parts[0]
        info = self.registry.service(name)
        if info is None:
            raise E.service_not_found(name, self.registry.service_names(), self.admin_address)
        want = 5 if _keyed(info) else 4
        if len(parts) != want:
            raise bad
        key = decode_segment(parts[1], "key") if _keyed(info) else ""
        handler, idem = parts[-3], decode_segment(parts[-2], "idempotency key")
        check_idempotency_key(idem, from_header=False)
        h = info.handlers.get(handler)
        target = Target(name, handler, key, info.service_type, h.handler_type if h else None)
        return GetOutput(wait, AttachBy.IDEMPOTENCY_KEY, target=target, idempotency_key=idem)

    def _workflow(self, parts: list[str]) -> GetOutput:
        if len(parts) != 3 or parts[2] not in ("attach", "output"):
            raise PerdureError(
                E.BAD_RESTATE_PATH,
                "The workflow path is malformed.",
                hint="Use GET /restate/workflow/{name}/{key}/attach or .../output.",
            )
        self._require("GET")
        target = workflow_target(self.registry, parts[0], decode_segment(parts[1], "key"))
        return GetOutput(parts[2] == "attach", AttachBy.WORKFLOW, target=target)


# --- helpers shared with the app ----------------------------------------------------------------


def decode_segment(segment: str, what: str) -> str:
    try:
        return unquote(segment, errors="strict")
    except UnicodeDecodeError:
        raise PerdureError(
            E.BAD_KEY_ENCODING,
            f"The {what} '{_clip(segment, 80)}' is not valid UTF-8 once decoded.",
        ) from None


def check_idempotency_key(key: str, *, from_header: bool) -> None:
    """Raises the 400 for a key that is empty, over 1 KiB, or has a control character.

    A key sent as a header must be printable ASCII, as Restate's ingress requires (the header
    arrives as bytes; anything else would be read as latin-1 and stored garbled). A key in an
    attach path or a JSON target is UTF-8, as service-to-service calls may store such keys.

    >>> check_idempotency_key("order-42", from_header=True)
    >>> check_idempotency_key("", from_header=True)
    Traceback (most recent call last):
    ...
    perdure.server.errors.PerdureError: The idempotency key is empty.
    """
    where = "header" if from_header else "key"
    if not key:
        raise PerdureError(E.BAD_IDEMPOTENCY_KEY, "The idempotency key is empty.")
    size = len(key.encode("utf-8", "surrogatepass"))
    if size > MAX_IDEMPOTENCY_KEY_BYTES:
        raise PerdureError(
            E.BAD_IDEMPOTENCY_KEY,
            f"The idempotency key is {size} bytes long; the limit is {MAX_IDEMPOTENCY_KEY_BYTES}.",
        )
    for position, char in enumerate(key, 1):
        code = ord(char)
        control = code < 0x20 or 0x7F <= code <= 0x9F
        if control or (from_header and code > 0x7E):
            what = "a control character" if control else "a character outside printable ASCII"
            raise PerdureError(
                E.BAD_IDEMPOTENCY_KEY,
                f"The idempotency {where} has {what} (U+{code:04X}) at position {position}.",
            )


def parse_invocation_id(text: str) -> str:
    try:
        return InvocationId.parse(text).to_str()
    except InvalidId as exc:
        raise PerdureError(
            E.BAD_INVOCATION_ID, f"The invocation id '{_clip(text, 80)}' is invalid: {exc.reason}."
        ) from None


def workflow_target(registry: Registry, name: str, key: str) -> Target:
    """The run handler of workflow `name` (if registered; Restate does not insist on it)."""
    info = registry.service(name)
    run = "run"
    if info is not None:
        run = next(
            (h.name for h in info.handlers.values() if h.handler_type is HandlerType.WORKFLOW),
            run,
        )
    return Target(name, run, key, ServiceType.WORKFLOW, HandlerType.WORKFLOW)


def forwarded_headers(
    headers: Sequence[tuple[str, str]], path_and_query: str
) -> tuple[tuple[str, str], ...]:
    """The request headers the handler sees (Restate adds the ingress path first)."""
    kept = [(k, v) for k, v in headers if k.lower() not in _NOT_FORWARDED]
    return ((INGRESS_PATH_HEADER, path_and_query), *kept)


def parse_target_body(body: bytes, wait: bool, registry: Registry) -> GetOutput | PerdureError:
    """The JSON target of POST /restate/attach|output|lookup (Restate's InvocationTargetRequest)."""
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        return PerdureError(E.BAD_TARGET_BODY, f"The body is not JSON: {exc}.")
    if not isinstance(doc, dict):
        return PerdureError(E.BAD_TARGET_BODY, "The body must be a JSON object.")
    if doc.get("scope") is not None:
        return PerdureError(E.SCOPE_NOT_SUPPORTED, "Scoped invocations are not supported.")
    kind = doc.get("target")
    try:
        if kind == "Invocation":
            return GetOutput(
                wait,
                AttachBy.INVOCATION_ID,
                invocation_id=parse_invocation_id(_field(doc, "invocationId")),
            )
        if kind == "Workflow":
            target = workflow_target(
                registry, _field(doc, "workflowName"), _field(doc, "workflowKey")
            )
            return GetOutput(wait, AttachBy.WORKFLOW, target=target)
        if kind == "IdempotentInvocation":
            service, handler = _field(doc, "service"), _field(doc, "handler")
            key = doc.get("key")
            if key is not None and not isinstance(key, str):
                raise PerdureError(E.BAD_TARGET_BODY, "The field 'key' must be a string.")
            info = registry.service(service)
            service_type = (
                info.service_type
                if info
                else (ServiceType.VIRTUAL_OBJECT if key is not None else ServiceType.SERVICE)
            )
            h = info.handlers.get(handler) if info else None
            target = Target(
                service, handler, key or "", service_type, h.handler_type if h else None
            )
            idempotency_key = _field(doc, "idempotencyKey")
            check_idempotency_key(idempotency_key, from_header=False)
            return GetOutput(
                wait, AttachBy.IDEMPOTENCY_KEY, target=target, idempotency_key=idempotency_key
            )
    except PerdureError as error:
        return error
    return PerdureError(
        E.BAD_TARGET_BODY,
        f"The field 'target' must be Invocation, Workflow or IdempotentInvocation, not {kind!r}.",
    )


def lookup_id(request: GetOutput) -> str:
    """The invocation id a target has: ids of workflow runs and idempotent calls are derived."""
    if request.invocation_id is not None:
        return request.invocation_id
    assert request.target is not None
    t = request.target
    keyed = t.service_type is not ServiceType.SERVICE
    return InvocationId.generate(
        t.service,
        t.handler,
        key=t.key if keyed else None,
        idempotency_key=request.idempotency_key,
        workflow_run=request.by is AttachBy.WORKFLOW,
        now_ms=0,
        random_bytes=bytes,  # never drawn: these ids are hashes of the target
    ).to_str()


def _field(doc: dict[str, Any], name: str) -> str:
    value = doc.get(name)
    if not isinstance(value, str) or not value:
        raise PerdureError(E.BAD_TARGET_BODY, f"The field '{name}' must be a non-empty string.")
    return value


# --- small helpers ---------------------------------------------------------------------------


def _keyed(info: ServiceInfo) -> bool:
    return info.service_type is not ServiceType.SERVICE


def _kind_name(info: ServiceInfo) -> str:
    return {
        ServiceType.SERVICE: "service",
        ServiceType.VIRTUAL_OBJECT: "virtual object",
        ServiceType.WORKFLOW: "workflow",
    }[info.service_type]


def _path_of(info: ServiceInfo, key: str, handler: str) -> str:
    return (
        f"{info.name}/{quote(key, safe='')}/{handler}" if _keyed(info) else f"{info.name}/{handler}"
    )


def _clip(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."
