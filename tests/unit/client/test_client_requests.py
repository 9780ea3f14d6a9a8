"""Ingress and admin requests as values, and answers read into results or typed errors."""

from __future__ import annotations

import datetime
import json
from typing import Any

import pytest

from perdure.client import requests as rq


def answer(status: int, body: Any = b"", **headers: str) -> rq.HttpResponse:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return rq.HttpResponse(status, {k.replace("_", "-"): v for k, v in headers.items()}, data)


# -- paths, methods, headers --------------------------------------------------------------------


def test_a_call_posts_to_service_and_handler() -> None:
    call = rq.call("Greeter", "greet", b'"Ada"')
    assert call.request == rq.HttpRequest(
        "POST", "/Greeter/greet", headers=(("content-type", "application/json"),), body=b'"Ada"'
    )


def test_keys_are_escaped_as_one_path_segment() -> None:
    call = rq.call("Counter", "add", b"1", key="user/42 ü")
    assert call.request.path == "/Counter/user%2F42%20%C3%BC/add"


def test_a_call_without_body_sends_no_content_type() -> None:
    assert rq.call("Greeter", "ping").request.headers == ()


def test_idempotency_keys_and_extra_headers_travel_as_headers() -> None:
    call = rq.call("Greeter", "greet", b"1", idempotency_key="once", headers={"X-Trace": "t"})
    assert dict(call.request.headers) == {
        "content-type": "application/json",
        "x-trace": "t",
        "idempotency-key": "once",
    }
    with pytest.raises(ValueError, match="must not be empty"):
        rq.call("Greeter", "greet", idempotency_key="")


def test_a_send_posts_to_send_with_an_iso_delay() -> None:
    delay = datetime.timedelta(minutes=1, milliseconds=250)
    request = rq.send("Counter", "add", b"1", key="k", delay=delay).request
    assert (request.method, request.path) == ("POST", "/Counter/k/add/send")
    assert request.params == (("delay", "PT60.250S"),)
    assert rq.send("Greeter", "greet").request.params == ()


@pytest.mark.parametrize(
    ("delay", "text"),
    [
        (datetime.timedelta(0), "PT0S"),
        (datetime.timedelta(hours=1), "PT3600S"),
        (datetime.timedelta(milliseconds=5), "PT0.005S"),
    ],
)
def test_delays_are_iso8601_durations(delay: datetime.timedelta, text: str) -> None:
    assert rq.delay_param(delay) == text


def test_negative_delays_are_refused() -> None:
    with pytest.raises(ValueError, match="must not be negative"):
        rq.delay_param(datetime.timedelta(seconds=-1))


def test_attach_and_output_by_invocation_id() -> None:
    assert rq.attach("inv_1").request == rq.HttpRequest("GET", "/restate/invocation/inv_1/attach")
    assert rq.output("inv_1").request.path == "/restate/invocation/inv_1/output"


def test_attach_and_output_by_idempotency_key() -> None:
    request = rq.attach(service="Greeter", handler="greet", idempotency_key="k 1").request
    assert request.path == "/restate/invocation/Greeter/greet/k%201/attach"
    request = rq.output(service="Counter", key="c", handler="add", idempotency_key="once").request
    assert request.path == "/restate/invocation/Counter/c/add/once/output"


def test_attach_needs_exactly_one_way_to_find_the_invocation() -> None:
    with pytest.raises(ValueError, match="give an invocation id, or service="):
        rq.attach()
    with pytest.raises(ValueError, match="give either an invocation id or"):
        rq.attach("inv_1", service="Greeter")


def test_workflow_attach_and_output() -> None:
    assert rq.workflow_attach("Signup", "a@b.c").request == rq.HttpRequest(
        "GET", "/restate/workflow/Signup/a%40b.c/attach"
    )
    assert rq.workflow_output("Signup", "k").request.path == "/restate/workflow/Signup/k/output"


def test_awakeables_are_resolved_and_rejected_by_post() -> None:
    resolve = rq.resolve_awakeable("sign_1abc", b"true").request
    assert (resolve.method, resolve.path, resolve.body) == (
        "POST",
        "/restate/awakeables/sign_1abc/resolve",
        b"true",
    )
    reject = rq.reject_awakeable("sign_1abc", "denied").request
    assert (reject.path, reject.body) == ("/restate/awakeables/sign_1abc/reject", b"denied")


def test_register_deployment_goes_to_the_admin_api() -> None:
    request = rq.register_deployment(
        "http://127.0.0.1:9080", force=True, additional_headers={"a": "b"}
    ).request
    assert (request.target, request.method, request.path) == ("admin", "POST", "/deployments")
    assert json.loads(request.body) == {
        "uri": "http://127.0.0.1:9080",
        "force": True,
        "use_http_11": False,
        "additional_headers": {"a": "b"},
    }


def test_cancel_and_kill_patch_the_invocation_on_the_admin_api() -> None:
    cancel = rq.cancel_invocation("inv_1/odd").request
    kill = rq.kill_invocation("inv_1abc").request
    assert (cancel.target, cancel.method, cancel.path) == (
        "admin",
        "PATCH",
        "/invocations/inv_1%2Fodd/cancel",
    )
    assert (kill.target, kill.method, kill.path) == ("admin", "PATCH", "/invocations/inv_1abc/kill")
    assert rq.cancel_invocation("inv_1").parse(answer(202, b"")) is None
    with pytest.raises(rq.NotFoundError):
        rq.kill_invocation("inv_1").parse(answer(404, b'{"message": "no such invocation"}'))


# -- answers ------------------------------------------------------------------------------------


def test_call_output_is_json_when_the_answer_says_so() -> None:
    parse = rq.call("Greeter", "greet").parse
    assert parse(answer(200, "Hello", content_type="application/json")) == "Hello"
    assert parse(answer(200, b"\x00raw", content_type="application/octet-stream")) == b"\x00raw"
    assert parse(answer(200, b"")) is None


def test_send_answers_read_into_receipts() -> None:
    parse = rq.send("Greeter", "greet").parse
    receipt = parse(answer(202, {"invocationId": "inv_1", "status": "Accepted"}))
    assert receipt == rq.SendReceipt("inv_1", "Accepted", None)
    assert receipt.is_new
    again = parse(
        answer(
            202,
            {
                "invocationId": "inv_1",
                "status": "PreviouslyAccepted",
                "executionTime": "2026-01-02T03:04:05Z",
            },
        )
    )
    assert not again.is_new
    assert again.execution_time == datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)


def test_registered_deployments_read_into_values() -> None:
    body = {"id": "dp_1", "services": [{"name": "Greeter", "revision": 1}], "sdk_version": "x"}
    deployment = rq.register_deployment("http://x").parse(answer(201, body))
    assert (deployment.id, deployment.services) == ("dp_1", ("Greeter",))
    assert deployment.raw["sdk_version"] == "x"


@pytest.mark.parametrize(
    ("status", "source", "kind"),
    [
        (404, "ingress", rq.NotFoundError),
        (409, "ingress", rq.ConflictError),
        (470, "ingress", rq.NotReadyError),
        (429, "ingress", rq.UnavailableError),
        (503, "ingress", rq.UnavailableError),
        (400, "ingress", rq.IngressError),
        (404, "invocation", rq.InvocationFailedError),
        (500, "invocation", rq.InvocationFailedError),
    ],
)
def test_errors_are_typed_by_source_and_status(
    status: int, source: str, kind: type[rq.ClientError]
) -> None:
    response = answer(status, {"code": status, "message": "boom"}, x_restate_error_source=source)
    with pytest.raises(kind) as info:
        rq.call("Greeter", "greet").parse(response)
    assert type(info.value) is kind
    assert (info.value.status, info.value.code, info.value.message) == (status, status, "boom")
    assert str(info.value) == f"POST /Greeter/greet: {status} boom"


def test_without_a_source_header_the_status_decides() -> None:
    parse = rq.call("Greeter", "greet").parse
    with pytest.raises(rq.NotFoundError):
        parse(answer(404, {"code": 404, "message": "service 'Greeter' not found"}))
    with pytest.raises(rq.InvocationFailedError) as info:
        parse(answer(500, {"code": 500, "message": "handler said no"}))
    assert info.value.message == "handler said no"


def test_terminal_errors_keep_the_handlers_code_and_description() -> None:
    response = answer(
        422,
        {"code": 422, "message": "invalid order", "description": "items is empty"},
        x_restate_error_source="invocation",
    )
    with pytest.raises(rq.InvocationFailedError) as info:
        rq.attach("inv_1").parse(response)
    assert info.value.code == 422
    assert info.value.message == "invalid order (items is empty)"


def test_non_json_error_bodies_are_kept_as_text() -> None:
    with pytest.raises(rq.IngressError, match="overloaded"):
        rq.call("Greeter", "greet").parse(answer(400, b"overloaded"))
    with pytest.raises(rq.NotReadyError, match="has not completed yet"):
        rq.output("inv_1").parse(answer(470, b""))


def test_unreachable_names_where_it_went_and_what_to_do() -> None:
    error = rq.unreachable(
        rq.register_deployment("x").request, "http://127.0.0.1:9070", ConnectionError("refused")
    )
    assert isinstance(error, rq.UnreachableError)
    assert "no answer from the admin API at http://127.0.0.1:9070" in str(error)
    assert "perdure dev" in str(error)


def test_values_encode_as_json_unless_they_are_bytes() -> None:
    assert rq.encode_value({"a": 1}) == (b'{"a":1}', "application/json")
    assert rq.encode_value(b"\x01") == (b"\x01", "application/octet-stream")
    assert rq.encode_value(None) == (b"", "application/json")
