"""The endpoint manifest: round-trips, every refusal names its JSON path, fuzzing, versions."""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Callable
from types import MappingProxyType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from perdure.protocol.discovery import (
    DEFAULT_INPUT,
    DEFAULT_OUTPUT,
    Endpoint,
    Handler,
    HandlerOptions,
    HandlerType,
    InputPayload,
    LambdaCompression,
    ManifestError,
    ManifestVersion,
    NewerField,
    OnMaxAttempts,
    OutputPayload,
    ProtocolMode,
    RetryPolicyOptions,
    Service,
    ServiceType,
    accept_header,
    default_handler_type,
    negotiate_version,
    newer_fields,
    parse_manifest,
    version_from_content_type,
)

Doc = dict[str, Any]

# Every field of the v4 schema, once.
FULL: Doc = {
    "protocolMode": "BIDI_STREAM",
    "minProtocolVersion": 5,
    "maxProtocolVersion": 7,
    "services": [
        {
            "name": "Greeter",
            "ty": "SERVICE",
            "handlers": [
                {
                    "name": "greet",
                    "input": {
                        "required": True,
                        "contentType": "application/json",
                        "jsonSchema": {"type": "string"},
                    },
                    "output": {
                        "contentType": "application/json",
                        "setContentTypeIfEmpty": False,
                        "jsonSchema": True,
                    },
                    "documentation": "Says hello.",
                    "metadata": {"owner": "team-a"},
                    "inactivityTimeout": 60_000,
                    "abortTimeout": 600_000,
                    "journalRetention": 86_400_000,
                    "idempotencyRetention": 3_600_000,
                    "enableLazyState": False,
                    "ingressPrivate": True,
                    "retryPolicyInitialInterval": 100,
                    "retryPolicyMaxInterval": 10_000,
                    "retryPolicyMaxAttempts": 10,
                    "retryPolicyExponentiationFactor": 1.5,
                    "retryPolicyOnMaxAttempts": "KILL",
                },
            ],
            "documentation": "Greets people.",
            "metadata": {"tier": "gold"},
            "inactivityTimeout": 30_000,
            "abortTimeout": 60_000,
            "journalRetention": 0,
            "idempotencyRetention": 1_000,
            "enableLazyState": True,
            "ingressPrivate": False,
            "retryPolicyInitialInterval": 50,
            "retryPolicyMaxInterval": 5_000,
            "retryPolicyMaxAttempts": 0,
            "retryPolicyExponentiationFactor": 2,
            "retryPolicyOnMaxAttempts": "PAUSE",
        },
        {
            "name": "Counter",
            "ty": "VIRTUAL_OBJECT",
            "handlers": [
                {"name": "add", "ty": "EXCLUSIVE", "input": {}, "output": {}},
                {"name": "get", "ty": "SHARED"},
            ],
        },
        {
            "name": "Signup",
            "ty": "WORKFLOW",
            "handlers": [
                {"name": "run", "ty": "WORKFLOW", "workflowCompletionRetention": 86_400_000},
                {"name": "status"},
            ],
        },
    ],
    "lambdaCompression": "zstd",
}

# tools/mock-service-endpoint/src/listener.rs in the restate repository (commit 0c6df0fc).
RESTATE_MOCK_ENDPOINT = (
    b'{"protocolMode":"BIDI_STREAM","minProtocolVersion":5,"maxProtocolVersion":5,"services":'
    b'[{"name":"Counter","ty":"VIRTUAL_OBJECT","handlers":[{"name":"add","input":{"required":'
    b'false,"contentType":"application/json"},"output":{"setContentTypeIfEmpty":false,'
    b'"contentType":"application/json"},"ty":"EXCLUSIVE"},{"name":"get","input":{"required":'
    b'false,"contentType":"application/json"},"output":{"setContentTypeIfEmpty":false,'
    b'"contentType":"application/json"},"ty":"EXCLUSIVE"}]}]}'
)

RESTATE_ACCEPT = (
    "application/vnd.restate.endpointmanifest.v1+json, "
    "application/vnd.restate.endpointmanifest.v2+json, "
    "application/vnd.restate.endpointmanifest.v3+json, "
    "application/vnd.restate.endpointmanifest.v4+json"
)


def full() -> Doc:
    return copy.deepcopy(FULL)


def minimal(*services: Doc) -> Doc:
    return {
        "protocolMode": "REQUEST_RESPONSE",
        "minProtocolVersion": 5,
        "maxProtocolVersion": 6,
        "services": list(services),
    }


def service(name: str = "S", ty: str = "SERVICE", *handlers: Doc, **extra: Any) -> Doc:
    return {"name": name, "ty": ty, "handlers": list(handlers), **extra}


# --- round trips ------------------------------------------------------------------------------


def test_every_v4_field_round_trips() -> None:
    endpoint = parse_manifest(FULL)
    assert endpoint.to_dict(ManifestVersion.V4) == FULL
    assert parse_manifest(endpoint.to_json()) == endpoint


def test_fields_map_to_typed_values_with_clear_names() -> None:
    endpoint = parse_manifest(FULL)
    assert endpoint.protocol_mode is ProtocolMode.BIDI_STREAM
    assert endpoint.lambda_compression is LambdaCompression.ZSTD
    assert endpoint.supports_protocol(6) and not endpoint.supports_protocol(8)
    greeter = endpoint.service("Greeter")
    assert greeter is not None and greeter.ty is ServiceType.SERVICE
    assert greeter.options.inactivity_timeout_ms == 30_000
    assert greeter.options.retry_policy == RetryPolicyOptions(
        initial_interval_ms=50,
        max_interval_ms=5_000,
        max_attempts=0,
        exponentiation_factor=2.0,
        on_max_attempts=OnMaxAttempts.PAUSE,
    )
    greet = greeter.handler("greet")
    assert greet is not None
    assert greet.input == InputPayload(True, "application/json", {"type": "string"})
    assert greet.output == OutputPayload("application/json", False, True)
    assert greet.metadata == {"owner": "team-a"}
    assert greet.options.ingress_private is True
    assert greet.options.retry_policy.on_max_attempts is OnMaxAttempts.KILL
    signup = endpoint.service("Signup")
    assert signup is not None
    run = signup.handler("run")
    assert run is not None and run.options.workflow_completion_retention_ms == 86_400_000
    assert endpoint.service("Nope") is None and greeter.handler("nope") is None


def test_restate_mock_endpoint_manifest_parses_and_round_trips() -> None:
    endpoint = parse_manifest(RESTATE_MOCK_ENDPOINT)
    assert [h.name for h in endpoint.services[0].handlers] == ["add", "get"]
    assert endpoint.to_dict(ManifestVersion.V1) == json.loads(RESTATE_MOCK_ENDPOINT)


@pytest.mark.parametrize(
    "data",
    [
        json.dumps(FULL),
        json.dumps(FULL).encode(),
        bytearray(json.dumps(FULL).encode()),
        MappingProxyType(FULL),
    ],
    ids=["str", "bytes", "bytearray", "mapping"],
)
def test_manifests_parse_from_text_bytes_or_mappings(data: Any) -> None:
    assert parse_manifest(data) == parse_manifest(FULL)


def test_empty_input_means_no_body_and_survives_the_round_trip() -> None:
    endpoint = parse_manifest(FULL)
    counter = endpoint.services[1]
    add, get = counter.handlers
    assert add.input == InputPayload() and add.effective_input == InputPayload()
    assert get.input is None and get.effective_input == DEFAULT_INPUT
    assert get.effective_output == DEFAULT_OUTPUT
    written: Any = endpoint.to_dict()
    assert written["services"][1]["handlers"][0]["input"] == {}


def test_null_optional_fields_count_as_absent() -> None:
    doc = minimal(
        service(
            "S",
            "SERVICE",
            {
                "name": "h",
                "ty": None,
                "documentation": None,
                "input": None,
                "inactivityTimeout": None,
            },
        )
    )
    doc["lambdaCompression"] = None
    handler = parse_manifest(doc).services[0].handlers[0]
    assert handler == Handler("h")


def test_written_json_is_compact_utf8_that_parses_back() -> None:
    endpoint = parse_manifest(FULL)
    text = endpoint.to_json(ManifestVersion.V4)
    assert b": " not in text and text.startswith(b'{"protocolMode":"BIDI_STREAM"')
    assert json.loads(text) == FULL


# --- defaults Restate applies ----------------------------------------------------------------


def test_default_handler_types_follow_restate() -> None:
    assert default_handler_type(ServiceType.SERVICE) is None
    assert default_handler_type(ServiceType.VIRTUAL_OBJECT) is HandlerType.EXCLUSIVE
    # The schema text says WORKFLOW; Restate's registration code says SHARED.
    assert default_handler_type(ServiceType.WORKFLOW) is HandlerType.SHARED


def test_effective_handler_types() -> None:
    endpoint = parse_manifest(FULL)
    greeter, counter, signup = endpoint.services
    assert greeter.handlers[0].effective_type(greeter.ty) is None
    assert [h.effective_type(counter.ty) for h in counter.handlers] == [
        HandlerType.EXCLUSIVE,
        HandlerType.SHARED,
    ]
    assert [h.effective_type(signup.ty) for h in signup.handlers] == [
        HandlerType.WORKFLOW,
        HandlerType.SHARED,
    ]
    assert Handler("h").effective_type(ServiceType.VIRTUAL_OBJECT) is HandlerType.EXCLUSIVE


def test_a_shared_handler_in_a_plain_service_is_accepted_like_restate_does() -> None:
    doc = minimal(service("S", "SERVICE", {"name": "h", "ty": "SHARED"}))
    assert parse_manifest(doc).services[0].handlers[0].ty is HandlerType.SHARED


# --- refusals, each naming its JSON path ------------------------------------------------------

Mutation = Callable[[Doc], object]


def _set(path: str, value: Any) -> Mutation:
    """A mutation that sets `path` (dotted, with [i] indexes) in a copy of FULL."""

    def mutate(doc: Doc) -> None:
        *parents, last = path.replace("[", ".").replace("]", "").split(".")
        node: Any = doc
        for part in parents:
            node = node[int(part)] if part.isdigit() else node[part]
        if last.isdigit():
            node[int(last)] = value
        else:
            node[last] = value

    return mutate


def _delete(path: str) -> Mutation:
    def mutate(doc: Doc) -> None:
        *parents, last = path.replace("[", ".").replace("]", "").split(".")
        node: Any = doc
        for part in parents:
            node = node[int(part)] if part.isdigit() else node[part]
        del node[last]

    return mutate


S0, H0 = "services[0]", "services[0].handlers[0]"
REFUSALS: list[tuple[Mutation, str, str]] = [
    (_set("extra", 1), "extra", "unknown field; the fields allowed here are lambdaCompression"),
    (_delete("protocolMode"), "protocolMode", "is required but missing"),
    (_set("protocolMode", None), "protocolMode", "must not be null"),
    (
        _set("protocolMode", "BIDI"),
        "protocolMode",
        'expected one of BIDI_STREAM, REQUEST_RESPONSE, got "BIDI"',
    ),
    (_set("minProtocolVersion", 0), "minProtocolVersion", "between 1 and 2147483647, got 0"),
    (_set("maxProtocolVersion", 2**31), "maxProtocolVersion", "between 1 and 2147483647"),
    (_set("minProtocolVersion", 5.0), "minProtocolVersion", "expected an integer, got 5.0"),
    (_set("minProtocolVersion", True), "minProtocolVersion", "expected an integer, got true"),
    (_set("minProtocolVersion", "5"), "minProtocolVersion", 'expected an integer, got "5"'),
    (_set("minProtocolVersion", 8), "minProtocolVersion", "must not exceed maxProtocolVersion"),
    (_set("lambdaCompression", "gzip"), "lambdaCompression", 'expected one of zstd, got "gzip"'),
    (_delete("services"), "services", "is required but missing"),
    (_set("services", {}), "services", "expected an array, got an object"),
    (_set("services[1]", "Counter"), "services[1]", "expected services[1] to be an object"),
    (
        _set(f"{S0}.workflowCompletionRetention", 1),
        f"{S0}.workflowCompletionRetention",
        "unknown field",
    ),
    (_delete(f"{S0}.name"), f"{S0}.name", "is required but missing"),
    (_set(f"{S0}.name", 7), f"{S0}.name", "expected a string, got 7"),
    (_set(f"{S0}.name", "1Greeter"), f"{S0}.name", "not a valid service name"),
    (_set(f"{S0}.name", "Greeter\n"), f"{S0}.name", "not a valid service name"),
    (_set(f"{S0}.name", "_"), f"{S0}.name", "not a valid service name"),
    (_set(f"{S0}.name", "RestateAdmin"), f"{S0}.name", "is reserved"),
    (_set(f"{S0}.name", "OpenAPI"), f"{S0}.name", "is reserved"),
    (_set("services[1].name", "Greeter"), "services[1].name", "a second service named"),
    (_delete(f"{S0}.ty"), f"{S0}.ty", "is required but missing"),
    (
        _set(f"{S0}.ty", "OBJECT"),
        f"{S0}.ty",
        'expected one of SERVICE, VIRTUAL_OBJECT, WORKFLOW, got "OBJECT"',
    ),
    (_delete(f"{S0}.handlers"), f"{S0}.handlers", "is required but missing"),
    (_set(f"{S0}.documentation", ["a"]), f"{S0}.documentation", "expected a string, got an array"),
    (_set(f"{S0}.metadata", "x"), f"{S0}.metadata", "expected an object of strings"),
    (_set(f"{S0}.metadata", {"n": 1}), f"{S0}.metadata.n", "expected a string, got 1"),
    (_set(f"{S0}.inactivityTimeout", -1), f"{S0}.inactivityTimeout", "between 0 and"),
    (_set(f"{S0}.abortTimeout", 2**64), f"{S0}.abortTimeout", "between 0 and 18446744073709551615"),
    (_set(f"{S0}.journalRetention", 1.5), f"{S0}.journalRetention", "expected an integer"),
    (_set(f"{S0}.enableLazyState", "yes"), f"{S0}.enableLazyState", "expected true or false"),
    (_set(f"{S0}.ingressPrivate", 1), f"{S0}.ingressPrivate", "expected true or false, got 1"),
    (
        _set(f"{S0}.retryPolicyMaxAttempts", False),
        f"{S0}.retryPolicyMaxAttempts",
        "expected an integer, got false",
    ),
    (
        _set(f"{S0}.retryPolicyExponentiationFactor", "2"),
        f"{S0}.retryPolicyExponentiationFactor",
        'expected a number, got "2"',
    ),
    (_set(f"{S0}.retryPolicyExponentiationFactor", math.inf), "", "inf is not a JSON number"),
    (
        _set(f"{S0}.retryPolicyOnMaxAttempts", "pause"),
        f"{S0}.retryPolicyOnMaxAttempts",
        'expected one of KILL, PAUSE, got "pause"',
    ),
    (_set(f"{H0}.bogus", 1), f"{H0}.bogus", "unknown field"),
    (_set(f"{H0}.name", "say-hi"), f"{H0}.name", "not a valid handler name"),
    (_set(f"{H0}.name", None), f"{H0}.name", "must not be null"),
    (
        _set("services[1].handlers[1].name", "add"),
        "services[1].handlers[1].name",
        "a second handler named",
    ),
    (
        _set("services[1].handlers[0].ty", "X"),
        "services[1].handlers[0].ty",
        'expected one of EXCLUSIVE, SHARED, WORKFLOW, got "X"',
    ),
    (_set(f"{H0}.ty", "EXCLUSIVE"), f"{H0}.ty", "a SERVICE handler must be SHARED or unset"),
    (
        _set("services[1].handlers[0].ty", "WORKFLOW"),
        "services[1].handlers[0].ty",
        "a VIRTUAL_OBJECT handler must be EXCLUSIVE or SHARED or unset, got WORKFLOW",
    ),
    (
        _set("services[2].handlers[1].ty", "EXCLUSIVE"),
        "services[2].handlers[1].ty",
        "a WORKFLOW handler must be SHARED or WORKFLOW or unset",
    ),
    (
        _set("services[2].handlers[1].workflowCompletionRetention", 5),
        "services[2].handlers[1].workflowCompletionRetention",
        "only a WORKFLOW handler",
    ),
    (
        _set("services[2].handlers[0].idempotencyRetention", 5),
        "services[2].handlers[0].idempotencyRetention",
        "workflowCompletionRetention instead",
    ),
    (_set(f"{H0}.input", []), f"{H0}.input", "to be an object, got an array"),
    (_set(f"{H0}.input.schema", {}), f"{H0}.input.schema", "unknown field"),
    (_set(f"{H0}.input.required", "true"), f"{H0}.input.required", "expected true or false"),
    (_set(f"{H0}.input.contentType", "json"), f"{H0}.input.contentType", "needs one '/'"),
    (_set(f"{H0}.input.contentType", "*/json"), f"{H0}.input.contentType", "*/subtype"),
    (
        _set(f"{H0}.output.contentType", "text/plain\r\n"),
        f"{H0}.output.contentType",
        "not a valid header value",
    ),
    (
        _set(f"{H0}.output.contentType", "text/plän"),
        f"{H0}.output.contentType",
        "not a valid header value",
    ),
    (
        _set(f"{H0}.output.setContentTypeIfEmpty", 0),
        f"{H0}.output.setContentTypeIfEmpty",
        "expected true or false, got 0",
    ),
    (_set(f"{H0}.output.jsonSchema", {(1, 2): 3}), "", "object keys must be strings"),
    (_set(f"{H0}.output.jsonSchema", {1, 2}), "", "a set is not a JSON value"),
    (_set(f"{H0}.documentation", "\ud800"), "", "is not valid Unicode"),
    (_set(f"{H0}.name", "\ud800"), "", '"\\ud800" is not valid Unicode'),
]


@pytest.mark.parametrize(("mutate", "path", "reason"), REFUSALS)
def test_refusals_name_the_json_path(mutate: Mutation, path: str, reason: str) -> None:
    doc = full()
    mutate(doc)
    with pytest.raises(ManifestError) as caught:
        parse_manifest(doc)
    assert caught.value.path == path
    assert reason in caught.value.reason
    assert str(caught.value) == (f"{path}: {caught.value.reason}" if path else caught.value.reason)


def test_the_briefs_example_message_reads_exactly() -> None:
    doc = full()
    doc["services"][1]["handlers"][0]["ty"] = "X"
    with pytest.raises(ManifestError) as caught:
        parse_manifest(doc)
    assert str(caught.value) == (
        'services[1].handlers[0].ty: expected one of EXCLUSIVE, SHARED, WORKFLOW, got "X"'
    )


def test_a_private_service_cannot_have_a_public_handler() -> None:
    doc = minimal(
        service("S", "SERVICE", {"name": "h", "ingressPrivate": False}, ingressPrivate=True)
    )
    with pytest.raises(ManifestError, match="make the service public") as caught:
        parse_manifest(doc)
    assert caught.value.path == "services[0].handlers[0].ingressPrivate"


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "not valid JSON"),
        (b"{", "not valid JSON"),
        (b"\xff\xfe{", "not valid JSON"),
        (b'{"services": NaN}', "NaN is not valid JSON"),
        (b'{"a": Infinity}', "Infinity is not valid JSON"),
        (b'{"protocolMode": "BIDI_STREAM", "protocolMode": "BIDI_STREAM"}', "duplicate key"),
        (b"[" * 100_000, "nests deeper"),
        (b"[]", "expected the manifest to be an object, got an array"),
        (b"null", "expected the manifest to be an object, got null"),
    ],
)
def test_documents_that_are_not_a_json_object_are_refused(data: bytes, reason: str) -> None:
    with pytest.raises(ManifestError, match=reason) as caught:
        parse_manifest(data)
    assert caught.value.path == ""


def test_documents_nested_deeper_than_serde_json_allows_are_refused() -> None:
    doc = full()
    schema: Any = {}
    doc["services"][0]["handlers"][0]["input"]["jsonSchema"] = schema
    for _ in range(130):
        schema["x"] = {}
        schema = schema["x"]
    with pytest.raises(ManifestError, match="nests deeper than 128"):
        parse_manifest(doc)


def test_a_self_containing_document_is_refused_not_looped_on() -> None:
    doc = full()
    doc["services"][0]["handlers"][0]["input"]["jsonSchema"] = doc
    with pytest.raises(ManifestError, match="nests deeper"):
        parse_manifest(doc)


# --- manifest versions ------------------------------------------------------------------------


def test_newer_fields_lists_what_each_version_lacks() -> None:
    assert newer_fields(FULL, ManifestVersion.V4) == ()
    v3 = {f.path for f in newer_fields(FULL, ManifestVersion.V3)}
    assert "lambdaCompression" in v3 and "services[0].retryPolicyMaxAttempts" in v3
    assert "services[0].handlers[0].retryPolicyOnMaxAttempts" in v3
    assert all(f.since is ManifestVersion.V4 for f in newer_fields(FULL, ManifestVersion.V3))
    v2 = newer_fields(FULL, ManifestVersion.V2)
    assert (
        NewerField("services[2].handlers[0].workflowCompletionRetention", ManifestVersion.V3) in v2
    )
    v1 = newer_fields(FULL, ManifestVersion.V1)
    assert NewerField("services[0].documentation", ManifestVersion.V2) in v1
    assert NewerField("services[0].handlers[0].metadata", ManifestVersion.V2) in v1


def test_writing_an_older_version_refuses_fields_it_cannot_carry() -> None:
    endpoint = parse_manifest(FULL)
    with pytest.raises(ManifestError, match=r"needs manifest v4, but v3 was asked for \(and"):
        endpoint.to_dict(ManifestVersion.V3)
    plain = parse_manifest(minimal(service("S", "SERVICE", {"name": "h"}, inactivityTimeout=5)))
    with pytest.raises(ManifestError) as caught:
        plain.to_json(ManifestVersion.V2)
    assert caught.value.path == "services[0].inactivityTimeout"
    assert plain.to_dict(ManifestVersion.V3)["services"] == [
        {"name": "S", "ty": "SERVICE", "handlers": [{"name": "h"}], "inactivityTimeout": 5}
    ]


def test_parsing_is_lenient_about_versions_like_restate_unless_asked() -> None:
    doc = minimal(service("S", "SERVICE", {"name": "h", "documentation": "d"}))
    assert parse_manifest(doc).services[0].handlers[0].documentation == "d"
    assert parse_manifest(doc, reject_newer_than=ManifestVersion.V2) == parse_manifest(doc)
    with pytest.raises(ManifestError, match="needs manifest v2, but the manifest declares v1"):
        parse_manifest(doc, reject_newer_than=ManifestVersion.V1)


def test_writing_refuses_a_model_the_parser_would_refuse() -> None:
    bad_name = Endpoint(
        ProtocolMode.BIDI_STREAM, 5, 7, (Service("S", ServiceType.SERVICE, (Handler("say-hi"),)),)
    )
    with pytest.raises(ManifestError, match="not a valid handler name"):
        bad_name.to_dict()
    bad_factor = Endpoint(
        ProtocolMode.BIDI_STREAM,
        5,
        7,
        (
            Service(
                "S",
                ServiceType.SERVICE,
                (
                    Handler(
                        "h",
                        options=HandlerOptions(
                            retry_policy=RetryPolicyOptions(exponentiation_factor=math.nan)
                        ),
                    ),
                ),
            ),
        ),
    )
    with pytest.raises(ManifestError, match="not a JSON number"):
        bad_factor.to_json()


def test_accept_header_is_restates_exactly() -> None:
    assert accept_header() == RESTATE_ACCEPT


@pytest.mark.parametrize(
    ("content_type", "version"),
    [
        ("application/vnd.restate.endpointmanifest.v1+json", ManifestVersion.V1),
        ("application/vnd.restate.endpointmanifest.v4+json", ManifestVersion.V4),
        (" Application/VND.restate.endpointmanifest.v2+json ; charset=utf-8", ManifestVersion.V2),
    ],
)
def test_the_sdks_content_type_names_the_version(
    content_type: str, version: ManifestVersion
) -> None:
    assert version_from_content_type(content_type) is version


@pytest.mark.parametrize(
    ("content_type", "accepted", "reason"),
    [
        (None, tuple(ManifestVersion), "has no Content-Type"),
        ("application/json", tuple(ManifestVersion), "is not one of"),
        ("application/vnd.restate.endpointmanifest.v1+protobuf", tuple(ManifestVersion), "not one"),
        ("application/vnd.restate.endpointmanifest.v5+json", tuple(ManifestVersion), "not one"),
        ("application/vnd.restate.endpointmanifest.v1+json", (ManifestVersion.V4,), "not one"),
    ],
)
def test_unknown_content_types_are_refused_with_the_expected_list(
    content_type: str | None, accepted: tuple[ManifestVersion, ...], reason: str
) -> None:
    with pytest.raises(ManifestError, match=reason) as caught:
        version_from_content_type(content_type, accepted)
    assert ManifestVersion.V4.content_type in str(caught.value)


@pytest.mark.parametrize(
    ("accept", "supported", "chosen"),
    [
        (RESTATE_ACCEPT, tuple(ManifestVersion), ManifestVersion.V4),
        (RESTATE_ACCEPT, (ManifestVersion.V2, ManifestVersion.V3), ManifestVersion.V3),
        (ManifestVersion.V1.content_type, tuple(ManifestVersion), ManifestVersion.V1),
        (ManifestVersion.V1.content_type, (ManifestVersion.V2,), None),
        (None, tuple(ManifestVersion), ManifestVersion.V2),
        ("", tuple(ManifestVersion), ManifestVersion.V2),
        ("*/*", tuple(ManifestVersion), ManifestVersion.V4),
        ("application/json, text/html", tuple(ManifestVersion), None),
    ],
)
def test_the_sdk_picks_the_newest_offered_version(
    accept: str | None, supported: tuple[ManifestVersion, ...], chosen: ManifestVersion | None
) -> None:
    assert negotiate_version(accept, supported) is chosen


# --- fuzzing ----------------------------------------------------------------------------------

FIELD_NAMES = sorted(
    {key for key in json.dumps(FULL).replace('"', " ").split() if key.isidentifier()}
)
json_leaves = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
    | st.sampled_from(["SERVICE", "VIRTUAL_OBJECT", "WORKFLOW", "EXCLUSIVE", "SHARED", "PAUSE"])
)
json_values = st.recursive(
    json_leaves,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.sampled_from(FIELD_NAMES) | st.text(max_size=6), children, max_size=5)
    ),
    max_leaves=25,
)


def _slots(node: Any) -> list[tuple[Any, Any]]:
    """Every (container, key) in a document, to point a mutation at."""
    found: list[tuple[Any, Any]] = []
    items = node.items() if isinstance(node, dict) else enumerate(node)
    for key, value in items:
        found.append((node, key))
        if isinstance(value, dict | list):
            found.extend(_slots(value))
    return found


@st.composite
def mutated_manifests(draw: st.DrawFn) -> Doc:
    doc = full()
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        container, key = draw(st.sampled_from(_slots(doc)))
        if draw(st.booleans()):
            container[key] = draw(json_values)
        elif isinstance(container, dict):
            del container[key]
        else:
            container.pop(key)
        if not _slots(doc):
            break
    return doc


def _parse_or_refuse(data: Any) -> Endpoint | None:
    try:
        endpoint = parse_manifest(data)
    except ManifestError:
        return None
    # Whatever parses must write back and re-parse to the same model.
    assert parse_manifest(endpoint.to_json()) == endpoint
    return endpoint


@settings(max_examples=300)
@given(json_values)
def test_any_json_document_gives_a_manifest_or_a_manifest_error(value: Any) -> None:
    _parse_or_refuse(json.dumps(value).encode())
    if isinstance(value, dict):
        _parse_or_refuse(value)


@settings(max_examples=300)
@given(mutated_manifests())
def test_any_mutation_of_a_valid_manifest_gives_a_manifest_or_a_manifest_error(doc: Doc) -> None:
    _parse_or_refuse(doc)


@given(st.binary(max_size=200))
def test_any_bytes_give_a_manifest_or_a_manifest_error(data: bytes) -> None:
    _parse_or_refuse(data)


def test_the_docstring_examples_hold() -> None:
    import doctest

    from perdure.protocol import discovery, discovery_fields, discovery_versions

    for module in (discovery, discovery_fields, discovery_versions):
        assert doctest.testmod(module).failed == 0, module.__name__
