"""Row <-> column encodings shared by the SQL backends: compact JSON plus raw bytes on the side.

Fields a query filters on are real columns; everything else goes into one JSON object with
short keys, and a field equal to its default is left out, so a typical invocation is ~100
bytes of JSON. Raw bytes (an outcome's value) never go through JSON: they are returned
separately, to be kept in a BLOB column, because base64 would cost a third more space and time.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from perdure.server.storage.api import (
    DeploymentRow,
    Failure,
    HandlerType,
    InvocationRow,
    InvocationStatus,
    Outcome,
    PromiseRow,
    ServiceType,
    Target,
    Waiter,
    WaiterKind,
)

_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
_loads = json.loads

# Enum lookups by value, built once: `Enum(value)` goes through the slower metaclass call.
_STATUS = {s.value: s for s in InvocationStatus}
_SERVICE_TYPE = {s.value: s for s in ServiceType}
_HANDLER_TYPE = {h.value: h for h in HandlerType}
_WAITER_KIND = {k.value: k for k in WaiterKind}

# InvocationRow's fields in the order decode_invocation passes them positionally.
_INVOCATION_FIELDS = [
    "id",
    "target",
    "status",
    "created_at",
    "modified_at",
    "headers",
    "idempotency_key",
    "deployment_id",
    "protocol_version",
    "execution_time",
    "journal_length",
    "command_count",
    "attempt",
    "retry_count",
    "next_retry_at",
    "last_failure",
    "last_failure_related",
    "waiters",
    "awaiting",
    "random_seed",
    "completion_retention_ms",
    "journal_retention_ms",
    "outcome",
    "completed_at",
    "running_since",
    "caller_id",
]


def _check_field_order() -> None:
    actual = [f.name for f in dataclasses.fields(InvocationRow)]
    if actual != _INVOCATION_FIELDS:
        raise RuntimeError(
            "InvocationRow's fields changed; update encode_invocation, decode_invocation and "
            f"_INVOCATION_FIELDS in {__name__} to match: {actual}"
        )


_check_field_order()


def _pairs(items: Any) -> tuple[tuple[str, str], ...]:
    return tuple((k, v) for k, v in items)


def _failure_out(failure: Failure) -> list[Any]:
    if failure.metadata:
        return [failure.code, failure.message, failure.metadata]
    return [failure.code, failure.message]


def _failure_in(data: list[Any]) -> Failure:
    return Failure(data[0], data[1], _pairs(data[2]) if len(data) > 2 else ())


def _outcome_out(outcome: Outcome) -> Any:
    """0 for "an outcome without failure"; the failure's list otherwise (the value is a BLOB)."""
    return 0 if outcome.failure is None else _failure_out(outcome.failure)


def _outcome_in(data: Any, value: bytes | None) -> Outcome:
    return Outcome(value, None if data == 0 else _failure_in(data))


def _waiters_out(waiters: tuple[Waiter, ...]) -> list[list[Any]]:
    return [[w.kind.value, w.invocation_id, w.completion_id] for w in waiters]


def _waiters_in(data: list[list[Any]]) -> tuple[Waiter, ...]:
    return tuple(Waiter(_WAITER_KIND[k], i, c) for k, i, c in data)


def encode_invocation(row: InvocationRow) -> tuple[str, bytes | None]:
    """The JSON for the non-column fields of `row`, and the outcome value's bytes."""
    # Unrolled on purpose: this runs for every stored event, and a loop over (attribute, key)
    # pairs with getattr costs twice as much.
    data: dict[str, Any] = {}
    target = row.target
    if target.service_type is not ServiceType.SERVICE:
        data["st"] = target.service_type.value
    if target.handler_type is not None:
        data["ht"] = target.handler_type.value
    if row.headers:
        data["h"] = row.headers
    if row.idempotency_key is not None:
        data["ik"] = row.idempotency_key
    if row.deployment_id is not None:
        data["d"] = row.deployment_id
    if row.protocol_version is not None:
        data["pv"] = row.protocol_version
    if row.execution_time is not None:
        data["et"] = row.execution_time
    if row.journal_length:
        data["jl"] = row.journal_length
    if row.command_count:
        data["cc"] = row.command_count
    if row.attempt:
        data["a"] = row.attempt
    if row.retry_count:
        data["rc"] = row.retry_count
    if row.next_retry_at is not None:
        data["nr"] = row.next_retry_at
    if row.last_failure is not None:
        data["lf"] = _failure_out(row.last_failure)
    if row.last_failure_related is not None:
        data["lr"] = row.last_failure_related
    if row.waiters:
        data["w"] = _waiters_out(row.waiters)
    if row.awaiting is not None:
        data["aw"] = row.awaiting
    if row.random_seed:
        data["rs"] = row.random_seed
    if row.completion_retention_ms:
        data["cr"] = row.completion_retention_ms
    if row.journal_retention_ms:
        data["jr"] = row.journal_retention_ms
    value = None
    if row.outcome is not None:
        data["o"] = _outcome_out(row.outcome)
        value = row.outcome.value
    if row.completed_at is not None:
        data["ca"] = row.completed_at
    if row.running_since is not None:
        data["rn"] = row.running_since
    if row.caller_id is not None:
        data["cl"] = row.caller_id
    return _dumps(data), value


def decode_invocation(
    invocation_id: str,
    service: str,
    handler: str,
    key: str,
    status: str,
    created_at: int,
    modified_at: int,
    data_json: str,
    outcome_value: bytes | None,
) -> InvocationRow:
    data: dict[str, Any] = _loads(data_json)
    get = data.get
    handler_type = get("ht")
    last_failure = get("lf")
    waiters = get("w")
    outcome = get("o")
    # Positional arguments: keywords cost a microsecond more per row, and _check_field_order
    # guards against a reordering of InvocationRow's fields.
    return InvocationRow(
        invocation_id,
        Target(
            service,
            handler,
            key,
            _SERVICE_TYPE[get("st", "SERVICE")],
            None if handler_type is None else _HANDLER_TYPE[handler_type],
        ),
        _STATUS[status],
        created_at,
        modified_at,
        _pairs(data["h"]) if "h" in data else (),
        get("ik"),
        get("d"),
        get("pv"),
        get("et"),
        get("jl", 0),
        get("cc", 0),
        get("a", 0),
        get("rc", 0),
        get("nr"),
        None if last_failure is None else _failure_in(last_failure),
        get("lr"),
        () if waiters is None else _waiters_in(waiters),
        get("aw"),
        get("rs", 0),
        get("cr", 0),
        get("jr", 0),
        None if outcome is None else _outcome_in(outcome, outcome_value),
        get("ca"),
        get("rn"),
        get("cl"),
    )


def encode_promise(row: PromiseRow) -> tuple[str, bytes | None]:
    data: dict[str, Any] = {}
    if row.waiters:
        data["w"] = _waiters_out(row.waiters)
    if row.outcome is None:
        return _dumps(data), None
    data["o"] = _outcome_out(row.outcome)
    return _dumps(data), row.outcome.value


def decode_promise(
    service: str, key: str, name: str, data_json: str, value: bytes | None
) -> PromiseRow:
    data: dict[str, Any] = _loads(data_json)
    outcome = _outcome_in(data["o"], value) if "o" in data else None
    return PromiseRow(service, key, name, outcome, _waiters_in(data.get("w", ())))


def encode_deployment(row: DeploymentRow) -> str:
    return _dumps(
        {
            "uri": row.uri,
            "mode": row.protocol_mode,
            "min": row.min_protocol_version,
            "max": row.max_protocol_version,
            "headers": row.additional_headers,
            "h11": row.use_http_11,
            "manifest": row.manifest,
        }
    )


def decode_deployment(deployment_id: str, created_at: int, data_json: str) -> DeploymentRow:
    data: dict[str, Any] = _loads(data_json)
    return DeploymentRow(
        id=deployment_id,
        uri=data["uri"],
        protocol_mode=data["mode"],
        min_protocol_version=data["min"],
        max_protocol_version=data["max"],
        created_at=created_at,
        additional_headers=_pairs(data["headers"]),
        use_http_11=data["h11"],
        manifest=data["manifest"],
    )


def service_type(value: str) -> ServiceType:
    return _SERVICE_TYPE[value]
