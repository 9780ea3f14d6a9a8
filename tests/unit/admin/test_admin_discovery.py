"""Discovery answers, judged without sockets: every way a deployment can answer wrong."""

from __future__ import annotations

import json

import pytest

from perdure.server.errors import PerdureError
from perdure.server.invoker.discovery import check_uri, read_answer
from perdure.server.invoker.transport import Response

URL = "http://svc:9080/discover"
V3 = "application/vnd.restate.endpointmanifest.v3+json"
MANIFEST = {
    "protocolMode": "BIDI_STREAM",
    "minProtocolVersion": 5,
    "maxProtocolVersion": 6,
    "services": [{"name": "Greeter", "ty": "SERVICE", "handlers": [{"name": "greet"}]}],
}


def answer(status: int = 200, body: object = MANIFEST, ctype: str | None = V3) -> Response:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = [("x-restate-server", "restate-sdk-python/1.2.0")]
    if ctype is not None:
        headers.append(("content-type", ctype))
    return Response(status, headers, raw)


def refusal(response: Response, use_http_11: bool = False) -> PerdureError:
    with pytest.raises(PerdureError) as caught:
        read_answer("http://svc:9080", URL, response, use_http_11)
    return caught.value


def test_a_good_answer() -> None:
    found = read_answer("http://svc:9080", URL, answer(), False)
    assert found.endpoint.services[0].name == "Greeter"
    assert found.version.value == 3 and found.sdk_version == "restate-sdk-python/1.2.0"
    assert found.http_version == "HTTP/2.0"
    assert found.service_documents()[0]["name"] == "Greeter"


def test_error_statuses_get_specific_hints() -> None:
    e404 = refusal(answer(404, b"not here"))
    assert e404.status == 502 and "answered 404: not here" in e404.message
    assert "where the SDK endpoint is mounted" in e404.hint
    assert "upgrade the SDK" in refusal(answer(415, b"")).hint
    assert "additional_headers" in refusal(answer(401, b"")).hint
    assert "logs" in refusal(answer(500, b"boom")).hint


def test_answers_that_are_not_manifests() -> None:
    no_type = refusal(answer(ctype=None))
    assert no_type.status == 502 and "Content-Type" in no_type.message
    assert refusal(answer(ctype="text/html")).kind.code == "PD-3003"
    not_json = refusal(answer(body=b"<html>"))
    assert not_json.status == 502 and "not JSON" in not_json.message


def test_invalid_manifests_name_the_json_path() -> None:
    bad = dict(MANIFEST, services=[{"name": "Greeter", "ty": "NOPE", "handlers": []}])
    e = refusal(answer(body=bad))
    assert e.status == 400 and e.kind.code == "PD-3004" and "services[0].ty" in e.message


def test_unsupported_protocol_versions() -> None:
    old = dict(MANIFEST, minProtocolVersion=1, maxProtocolVersion=3)
    e = refusal(answer(body=old))
    assert e.status == 400 and e.kind.restate_code == "META0012"
    assert "1 to 3" in e.message and "5 to 7" in e.message


def test_bidi_over_http_1_1_is_refused() -> None:
    e = refusal(answer(), use_http_11=True)
    assert e.status == 400 and "BIDI_STREAM" in e.message
    rr = dict(MANIFEST, protocolMode="REQUEST_RESPONSE")
    found = read_answer("http://svc:9080", URL, answer(body=rr), True)
    assert found.http_version == "HTTP/1.1"


def test_uris() -> None:
    assert check_uri(" http://127.0.0.1:9080/ ") == "http://127.0.0.1:9080"
    assert check_uri("http://svc/base/") == "http://svc/base"
    for bad in ("", "svc:9080", "ftp://x", "https://x"):
        with pytest.raises(PerdureError):
            check_uri(bad)
