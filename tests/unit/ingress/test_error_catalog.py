"""The error catalog: stable unique codes, one mapping to HTTP, bodies Restate's clients read."""

from __future__ import annotations

import json
import re

from perdure.server import errors as E
from perdure.server.errors import Api, PerdureError, failure_response, to_response
from perdure.server.storage.api import Failure


def test_codes_and_names_are_unique_and_well_formed() -> None:
    kinds = list(E.CATALOG.values())
    assert len({k.name for k in kinds}) == len(kinds)
    for kind in kinds:
        assert re.fullmatch(r"PD-[1239]\d{3}", kind.code), kind.code
        assert 400 <= kind.status <= 599 and kind.summary.endswith(".")
        assert not kind.hint or kind.hint.endswith(".")


def test_ingress_body_and_header() -> None:
    status, headers, body = to_response(E.service_not_found("X", ["A", "B"]), Api.INGRESS)
    doc = json.loads(body)
    assert status == 404 and (b"x-restate-error-source", b"ingress") in headers
    assert doc["code"] == 404 and doc["source"] == "ingress" and doc["perdure_code"] == "PD-1001"
    assert doc["message"].startswith("Service 'X' not found; registered services: A, B.")
    assert doc["hint"] in doc["message"]


def test_admin_body_is_restates_error_description() -> None:
    error = PerdureError(E.SERVICE_TYPE_CHANGED, "Refused: it changed.")
    status, headers, body = to_response(error, Api.ADMIN)
    doc = json.loads(body)
    assert status == 409 and doc["restate_code"] == "META0006"
    assert doc["message"].startswith("Refused: it changed. ") and "breaking" in doc["message"]
    assert all(k != b"x-restate-error-source" for k, _ in headers)


def test_overrides_of_status_and_hint() -> None:
    error = PerdureError(E.REQUEST_FAILED, "Odd.", status=418, hint="")
    status, _, body = to_response(error)
    assert (
        status == 418 and json.loads(body)["message"] == "Odd." and "hint" not in json.loads(body)
    )


def test_method_not_allowed_sends_allow() -> None:
    status, headers, _ = to_response(E.method_not_allowed("PUT", ("GET", "POST")))
    assert status == 405 and (b"allow", b"GET, POST") in headers


def test_handler_failures_keep_their_code() -> None:
    status, headers, body = failure_response(Failure(418, "teapot"), "inv_1x")
    assert status == 418 and (b"x-restate-id", b"inv_1x") in headers
    assert json.loads(body) == {"code": 418, "message": "teapot", "source": "invocation"}
    assert failure_response(Failure(0, "zero"), None)[0] == 500
