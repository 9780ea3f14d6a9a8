"""Admin read models: deployments, services and handlers in Restate's shapes; invocations.

Services, handlers and deployments are rendered exactly as Restate's admin OpenAPI spells them
(snake_case fields, "VirtualObject", "BidiStream", durations in jiff's friendly form). The
invocation views are Perdure's own (Restate answers those through SQL): snake_case JSON with
what a person needs to see why an invocation is where it is.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Mapping
from typing import Any

from perdure.protocol.errors import ProtocolError
from perdure.protocol.messages import MessageKind, MessageType, decode_payload
from perdure.server.registry import (
    Defaults,
    HandlerInfo,
    Registry,
    RetryPolicy,
    ServiceInfo,
    build_service,
)
from perdure.server.storage.api import (
    DeploymentRow,
    InvocationFilter,
    InvocationRow,
    InvocationStatus,
    JournalEntry,
    ReadView,
    ServiceRow,
    ServiceType,
)

SERVICE_TYPE = {
    ServiceType.SERVICE: "Service",
    ServiceType.VIRTUAL_OBJECT: "VirtualObject",
    ServiceType.WORKFLOW: "Workflow",
}
HANDLER_TYPE = {"EXCLUSIVE": "Exclusive", "SHARED": "Shared", "WORKFLOW": "Workflow"}
PROTOCOL_TYPE = {"BIDI_STREAM": "BidiStream", "REQUEST_RESPONSE": "RequestResponse"}

# --- durations and times -------------------------------------------------------------------------

_UNITS = (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000), ("ms", 1))


def friendly(ms: int) -> str:
    """A duration as Restate prints it (jiff's compact friendly format), days at most.

    >>> friendly(86_400_000), friendly(90_000), friendly(500), friendly(0)
    ('1d', '1m 30s', '500ms', '0s')
    """
    if ms <= 0:
        return "0s"
    parts = []
    for unit, size in _UNITS:
        count, ms = divmod(ms, size)
        if count:
            parts.append(f"{count}{unit}")
    return " ".join(parts)


def timestamp(ms: int | None) -> str | None:
    """Milliseconds since the epoch as RFC 3339 UTC, the way Restate's API renders times."""
    if ms is None:
        return None
    seconds, millis = divmod(ms, 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{millis:03d}Z"


# --- services and handlers ------------------------------------------------------------------------


def _service_retry(definition: Mapping[str, Any], base: RetryPolicy) -> RetryPolicy:
    max_attempts = definition.get("retryPolicyMaxAttempts", base.max_attempts)
    on_max = definition.get("retryPolicyOnMaxAttempts")
    return RetryPolicy(
        initial_interval_ms=int(
            definition.get("retryPolicyInitialInterval", base.initial_interval_ms)
        ),
        factor=float(definition.get("retryPolicyExponentiationFactor", base.factor)),
        max_interval_ms=int(definition.get("retryPolicyMaxInterval", base.max_interval_ms)),
        max_attempts=int(max_attempts) if isinstance(max_attempts, int) else base.max_attempts,
        on_max_attempts=str(on_max).lower() if isinstance(on_max, str) else base.on_max_attempts,
    )


def _retry_json(policy: RetryPolicy) -> dict[str, Any]:
    return {
        "initial_interval": friendly(policy.initial_interval_ms),
        "exponentiation_factor": policy.factor,
        "max_attempts": policy.max_attempts,
        "max_interval": friendly(policy.max_interval_ms),
        "on_max_attempts": policy.on_max_attempts.capitalize(),
    }


def _opt_friendly(source: Mapping[str, Any], name: str) -> str | None:
    value = source.get(name)
    return friendly(int(value)) if isinstance(value, int | float) else None


def service_json(info: ServiceInfo, defaults: Defaults) -> dict[str, Any]:
    """Restate's ServiceMetadata for one service."""
    d = info.definition
    workflow_retention = None
    if info.service_type is ServiceType.WORKFLOW:
        run = next(
            (
                h
                for h in info.handlers.values()
                if h.handler_type and h.handler_type.value == "WORKFLOW"
            ),
            None,
        )
        ms = (
            run.workflow_completion_retention_ms
            if run
            else defaults.workflow_completion_retention_ms
        )
        workflow_retention = friendly(ms)
    return {
        "name": info.name,
        "ty": SERVICE_TYPE[info.service_type],
        "handlers": [handler_json(h) for h in info.handlers.values()],
        "documentation": d.get("documentation"),
        "metadata": dict(d.get("metadata") or {}),
        "deployment_id": info.deployment_id,
        "revision": info.revision,
        "public": info.public,
        "idempotency_retention": friendly(
            int(d.get("idempotencyRetention", defaults.idempotency_retention_ms))
        ),
        "workflow_completion_retention": workflow_retention,
        "journal_retention": friendly(
            int(d.get("journalRetention", defaults.journal_retention_ms))
        ),
        "inactivity_timeout": friendly(
            int(d.get("inactivityTimeout", defaults.inactivity_timeout_ms))
        ),
        "abort_timeout": friendly(int(d.get("abortTimeout", defaults.abort_timeout_ms))),
        "enable_lazy_state": bool(d.get("enableLazyState", False)),
        "retry_policy": _retry_json(_service_retry(d, defaults.retry)),
    }


def handler_json(handler: HandlerInfo) -> dict[str, Any]:
    """Restate's HandlerMetadata for one handler (overrides only; null where unset)."""
    d = handler.definition
    input_desc = d.get("input")
    output_desc = d.get("output")
    retry = {
        "initial_interval": _opt_friendly(d, "retryPolicyInitialInterval"),
        "exponentiation_factor": d.get("retryPolicyExponentiationFactor"),
        "max_attempts": d.get("retryPolicyMaxAttempts"),
        "max_interval": _opt_friendly(d, "retryPolicyMaxInterval"),
        "on_max_attempts": str(d["retryPolicyOnMaxAttempts"]).capitalize()
        if isinstance(d.get("retryPolicyOnMaxAttempts"), str)
        else None,
    }
    return {
        "name": handler.name,
        "ty": HANDLER_TYPE[handler.handler_type.value] if handler.handler_type else None,
        "documentation": d.get("documentation"),
        "metadata": dict(d.get("metadata") or {}),
        "idempotency_retention": _opt_friendly(d, "idempotencyRetention"),
        "journal_retention": _opt_friendly(d, "journalRetention"),
        "inactivity_timeout": _opt_friendly(d, "inactivityTimeout"),
        "abort_timeout": _opt_friendly(d, "abortTimeout"),
        "enable_lazy_state": d.get("enableLazyState"),
        "public": handler.public,
        "input_description": input_description(input_desc),
        "output_description": output_description(output_desc),
        "input_json_schema": (input_desc or {}).get("jsonSchema")
        if isinstance(input_desc, dict)
        else None,
        "output_json_schema": (output_desc or {}).get("jsonSchema")
        if isinstance(output_desc, dict)
        else None,
        "retry_policy": retry,
    }


def _json_label(schema: object, fallback: str) -> str:
    if isinstance(schema, dict):
        if isinstance(schema.get("title"), str):
            return f"JSON '{schema['title']}'"
        if isinstance(schema.get("type"), str):
            return f"JSON {schema['type']}"
    return fallback


def input_description(desc: object) -> str:
    """Restate's InputRules display: 'none', a content type, or a JSON schema's name."""
    if not isinstance(desc, dict):
        desc = {"required": False, "contentType": "*/*"}
    content_type = desc.get("contentType")
    rules = [] if desc.get("required") else ["none"]
    if isinstance(content_type, str):
        rules.append(_json_label(desc.get("jsonSchema"), content_type))
    if len(rules) == 2:
        return rules[1]  # "none or X" reads as X (restate issue 2101)
    return rules[0] if rules else "<invalid rules>"


def output_description(desc: object) -> str:
    if not isinstance(desc, dict):
        return "application/json"
    content_type = desc.get("contentType")
    if not isinstance(content_type, str):
        return "none"
    optional = "optional " if desc.get("setContentTypeIfEmpty") else ""
    return _json_label(desc.get("jsonSchema"), optional + content_type)


# --- deployments ------------------------------------------------------------------------------


def manifest_services(row: DeploymentRow) -> list[dict[str, Any]]:
    try:
        document = json.loads(row.manifest)
    except ValueError:
        return []
    services = document.get("services", []) if isinstance(document, dict) else []
    return [s for s in services if isinstance(s, dict) and isinstance(s.get("name"), str)]


def deployment_services(registry: Registry, row: DeploymentRow) -> list[ServiceInfo]:
    """The services `row` serves, each at the revision it had there.

    A service still served by `row` has its stored revision. For one that a newer
    deployment took over, the revision is the count of deployments (oldest first, up to this
    one) that served it: exact unless a registration was replaced with force.
    """
    ordered = sorted(registry.deployments.values(), key=lambda d: (d.created_at, d.id))
    infos = []
    for document in manifest_services(row):
        name = document["name"]
        current = registry.service(name)
        if current is not None and current.deployment_id == row.id:
            infos.append(current)
            continue
        revision = 0
        for other in ordered:
            if any(s["name"] == name for s in manifest_services(other)):
                revision += 1
            if other.id == row.id:
                break
        try:
            service_type = ServiceType(document.get("ty"))
        except ValueError:
            continue
        stored = ServiceRow(name, max(revision, 1), row.id, service_type, json.dumps(document))
        infos.append(build_service(stored, registry.defaults))
    return infos


def deployment_json(
    registry: Registry,
    row: DeploymentRow,
    *,
    detailed: bool = False,
    sdk_version: str | None = None,
) -> dict[str, Any]:
    """Restate's HttpDeploymentResponse (services as name/revision pairs) or the detailed one."""
    services = deployment_services(registry, row)
    return {
        "id": row.id,
        "uri": row.uri,
        "protocol_type": PROTOCOL_TYPE.get(row.protocol_mode, row.protocol_mode),
        "http_version": "HTTP/1.1" if row.use_http_11 else "HTTP/2.0",
        "additional_headers": dict(row.additional_headers),
        "metadata": {},
        "created_at": timestamp(row.created_at),
        "min_protocol_version": row.min_protocol_version,
        "max_protocol_version": row.max_protocol_version,
        "sdk_version": sdk_version,
        "services": [
            service_json(s, registry.defaults)
            if detailed
            else {"name": s.name, "revision": s.revision}
            for s in services
        ],
    }


# --- invocations (Perdure's own views) ----------------------------------------------------------

STATUS_NAMES = {s.value: s for s in InvocationStatus} | {
    "backing_off": InvocationStatus.BACKING_OFF,
    "backingoff": InvocationStatus.BACKING_OFF,
    "inboxed": InvocationStatus.PENDING,  # Restate's name for "waiting in the inbox"
}
ACTIVE = frozenset(s for s in InvocationStatus if s.is_active)


def parse_statuses(text: str) -> frozenset[InvocationStatus]:
    """'running,suspended' -> statuses; 'active' is every status but completed. ValueError."""
    chosen: set[InvocationStatus] = set()
    for part in text.split(","):
        name = part.strip().lower()
        if not name:
            continue
        if name == "active":
            chosen |= ACTIVE
        elif name in STATUS_NAMES:
            chosen.add(STATUS_NAMES[name])
        else:
            known = ", ".join(["active", *(s.value for s in InvocationStatus)])
            raise ValueError(f"unknown status '{part.strip()}'; use one of {known}")
    return frozenset(chosen)


def invocation_json(row: InvocationRow) -> dict[str, Any]:
    t = row.target
    failure = row.last_failure
    outcome: dict[str, Any] | None = None
    if row.outcome is not None:
        if row.outcome.failure is not None:
            outcome = {
                "status": "failure",
                "code": row.outcome.failure.code,
                "message": row.outcome.failure.message,
            }
        else:
            outcome = {"status": "success", "size": len(row.outcome.value or b"")}
    return {
        "id": row.id,
        "target": str(t),
        "target_service_name": t.service,
        "target_service_key": t.key if t.is_keyed else None,
        "target_handler_name": t.handler,
        "target_service_ty": SERVICE_TYPE[t.service_type],
        "status": row.status.value,
        "created_at": timestamp(row.created_at),
        "modified_at": timestamp(row.modified_at),
        "scheduled_at": timestamp(row.execution_time),
        "completed_at": timestamp(row.completed_at),
        "attempts": row.attempt,
        "retry_count": row.retry_count,
        "next_retry_at": timestamp(row.next_retry_at),
        "last_failure": None
        if failure is None
        else {
            "code": failure.code,
            "message": failure.message,
            "related_command": row.last_failure_related,
        },
        "journal_length": row.journal_length,
        "idempotency_key": row.idempotency_key,
        "deployment_id": row.deployment_id,
        "protocol_version": row.protocol_version,
        "invoked_by": row.caller_id,
        "outcome": outcome,
    }


def list_invocations(view: ReadView, flt: InvocationFilter) -> dict[str, Any]:
    rows = view.list_invocations(flt)
    return {"invocations": [invocation_json(r) for r in rows], "limit": flt.limit}


def invocation_detail(view: ReadView, invocation_id: str) -> dict[str, Any] | None:
    """One invocation with its journal's entry types (the journal holds what it did so far)."""
    row = view.get_invocation(invocation_id)
    if row is None:
        return None
    document = invocation_json(row)
    document["journal"] = [journal_entry_json(e) for e in view.read_journal(invocation_id)]
    document["waiting_for"] = json.loads(row.awaiting) if row.awaiting else None
    t = row.target
    document["key_lock"] = (
        {"holder": view.get_lock(t.service, t.key), "queued": view.inbox_size(t.service, t.key)}
        if t.takes_lock
        else None
    )
    return document


def journal_entry_json(entry: JournalEntry) -> dict[str, Any]:
    """One journal entry: its type plus the few fields that say what it is about.

    Commands give their name, the completion id their result arrives under and their subject
    (a sleep's wake-up time, a call's target, a promise's name, a state key); notifications give
    the completion or signal they deliver. Values (parameters, state, outputs) are left out.

    >>> from perdure.protocol.pb import protocol_pb2 as pb
    >>> sleep = pb.SleepCommandMessage(wake_up_time=1_000, result_completion_id=1)
    >>> entry = JournalEntry(1, MessageType.SLEEP_COMMAND, sleep.SerializeToString())
    >>> journal_entry_json(entry)["wake_up_at"]
    '1970-01-01T00:00:01.000Z'
    """
    document: dict[str, Any] = {"index": entry.index}
    try:
        message_type = MessageType(entry.message_type)
    except ValueError:
        document["type"] = f"custom_0x{entry.message_type:04x}"
        return document
    document["type"] = message_type.name.lower()
    if entry.notification_key is not None:  # "c:<completion id>", "s:<index>", "n:<name>"
        document["notification"] = entry.notification_key
        if entry.is_failure:
            document["failed"] = True
        if message_type is MessageType.CALL_INVOCATION_ID_COMPLETION_NOTIFICATION:
            with contextlib.suppress(ProtocolError):  # the callee, to follow a chain of calls
                callee = decode_payload(message_type, entry.payload)
                document["invocation_id"] = getattr(callee, "invocation_id", "")
        return document
    if message_type.kind is not MessageKind.COMMAND:
        return document
    try:
        msg = decode_payload(message_type, entry.payload)
    except ProtocolError:
        return document
    fields = {f.name: v for f, v in msg.ListFields()}
    if fields.get("name") or fields.get("entry_name"):
        document["name"] = fields.get("name") or fields.get("entry_name")
    if "result_completion_id" in fields:
        document["completion_id"] = fields["result_completion_id"]
    if "wake_up_time" in fields:
        document["wake_up_at"] = timestamp(int(fields["wake_up_time"]))
    if "invoke_time" in fields:
        document["invoke_at"] = timestamp(int(fields["invoke_time"]))
    if "service_name" in fields:
        key = f"/{fields['key']}" if fields.get("key") else ""
        document["target"] = f"{fields['service_name']}{key}/{fields.get('handler_name', '')}"
    if "invocation_id_notification_idx" in fields:
        document["invocation_id_completion_id"] = fields["invocation_id_notification_idx"]
    if isinstance(fields.get("key"), bytes):
        document["state_key"] = fields["key"].decode("utf-8", "replace")
    elif message_type in _PROMISE_COMMANDS:
        document["promise"] = fields.get("key", "")
    for field_name in ("invocation_id", "target_invocation_id", "awakeable_id"):
        if field_name in fields:
            document[field_name] = fields[field_name]
    if "idx" in fields:
        document["signal"] = fields["idx"]
    return document


_PROMISE_COMMANDS = frozenset(
    {
        MessageType.GET_PROMISE_COMMAND,
        MessageType.PEEK_PROMISE_COMMAND,
        MessageType.COMPLETE_PROMISE_COMMAND,
    }
)
