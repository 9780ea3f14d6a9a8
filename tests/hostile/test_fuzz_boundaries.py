"""Hypothesis at the server's input boundaries that tests/unit/protocol does not cover.

tests/unit/protocol already fuzzes the frame decoder (any bytes, any chunking, damaged streams)
and `parse_manifest` (any JSON, mutated manifests, any bytes). Here: the layers above them that
a hostile peer reaches first, each of which must answer a typed error and never raise anything
else.

- the ingress router: any method, path, query and headers;
- the admin router: any method, path and query;
- a discovery answer: any status, content-type and body (`read_answer`);
- request identity: any headers and path reach the verifier, which only raises IdentityError;
- the frame decoder fed a real Start frame cut and spliced with garbage at any point.
"""

from __future__ import annotations

import string

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.unit.ingress.ingress_fakes import make_registry

from perdure.protocol.errors import ProtocolError
from perdure.protocol.framing import FrameDecoder, encode_frame
from perdure.sdk.identity import IdentityError, IdentityVerifier
from perdure.server.admin.routes import AdminRequest
from perdure.server.admin.routes import parse_request as parse_admin
from perdure.server.errors import PerdureError
from perdure.server.identity import RequestSigner
from perdure.server.ingress.routes import parse_request as parse_ingress
from perdure.server.invoker.discovery import read_answer
from perdure.server.invoker.transport import Response

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

methods = st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "X"])
segment = st.one_of(
    st.sampled_from(
        [
            "Counter",
            "Greeter",
            "restate",
            "invocation",
            "send",
            "attach",
            "output",
            "awakeables",
            "workflow",
            "deployments",
            "invocations",
            "services",
            "v3",
            "..",
            "%00",
            "%2F",
            "",
            "inv_1",
        ]
    ),
    st.text(min_size=0, max_size=12),
)
paths = st.lists(segment, max_size=8).map(lambda parts: "/" + "/".join(parts))
pairs = st.lists(st.tuples(st.text(max_size=12), st.text(max_size=30)), max_size=4)
header_names = st.sampled_from(
    ["content-type", "idempotency-key", "idempotency-expires", "host", "x-restate-jwt-v1"]
)
headers = st.lists(st.tuples(header_names, st.text(max_size=40)), max_size=4)


@FUZZ
@given(methods, paths, pairs, headers)
def test_the_ingress_router_answers_a_request_or_a_typed_error(
    method: str, path: str, query: list[tuple[str, str]], head: list[tuple[str, str]]
) -> None:
    result = parse_ingress(method, path, query, head, make_registry())
    if isinstance(result, PerdureError):
        assert 400 <= result.status < 500, result
        assert str(result)


@FUZZ
@given(methods, paths, pairs)
def test_the_admin_router_answers_a_route_or_a_typed_error(
    method: str, path: str, query: list[tuple[str, str]]
) -> None:
    result = parse_admin(method, path, query)
    assert isinstance(result, AdminRequest | PerdureError)
    if isinstance(result, PerdureError):
        assert 400 <= result.status < 500, result


content_types = st.one_of(
    st.sampled_from(
        [
            "application/vnd.restate.endpointmanifest.v1+json",
            "application/vnd.restate.endpointmanifest.v3+json",
            "application/json",
            "",
        ]
    ),
    st.text(max_size=60),
)


@FUZZ
@given(st.integers(100, 599), content_types, st.binary(max_size=400))
def test_any_discovery_answer_is_a_deployment_or_a_typed_error(
    status: int, content_type: str, body: bytes
) -> None:
    response = Response(status, [("content-type", content_type)], body, "http://x/discover")
    try:
        read_answer("http://x", "http://x/discover", response, False)
    except PerdureError as error:
        assert str(error)


token_text = st.text(alphabet=string.ascii_letters + string.digits + "-_.=", max_size=120)
verifier = IdentityVerifier([RequestSigner(Ed25519PrivateKey.generate()).public_key])


@FUZZ
@given(
    st.dictionaries(
        st.sampled_from(["x-restate-signature-scheme", "x-restate-jwt-v1", "other"]),
        st.one_of(st.sampled_from(["v1", "unsigned", ""]), token_text),
    ),
    paths,
)
def test_the_identity_verifier_only_ever_refuses_with_identity_error(
    head: dict[str, str], path: str
) -> None:
    try:
        verifier.verify(head, path)
    except IdentityError as error:
        assert str(error)
    else:
        raise AssertionError("a request with no valid signature was accepted")


START = encode_frame(0x0000, b"\x0a\x04abcd\x12\x02id")


@FUZZ
@given(st.integers(0, len(START)), st.binary(max_size=64), st.integers(1, 16))
def test_a_frame_spliced_with_garbage_gives_frames_or_a_protocol_error(
    cut: int, garbage: bytes, chunk: int
) -> None:
    data = START[:cut] + garbage + START
    decoder = FrameDecoder()
    try:
        for i in range(0, len(data), chunk):
            decoder.feed(data[i : i + chunk])
    except ProtocolError as error:
        assert str(error)
