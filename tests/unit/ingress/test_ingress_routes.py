"""Ingress routing is pure: every path form and every refusal, without sockets."""

from __future__ import annotations

import pytest
from tests.unit.ingress.ingress_fakes import INVOCATION_ID, make_registry

from perdure.protocol.ids import AwakeableId, InvocationId
from perdure.server.errors import PerdureError
from perdure.server.ids import RandomIds
from perdure.server.ingress import routes
from perdure.server.ingress.payloads import check_input, output_content_type
from perdure.server.ingress.routes import (
    CompleteAwakeable,
    GetOutput,
    GetOutputByBody,
    Health,
    Invoke,
    Lookup,
    parse_request,
    parse_target_body,
)
from perdure.server.partition.events import AttachBy, CallMode
from perdure.server.storage.api import HandlerType, ServiceType, Target

REGISTRY = make_registry()
AWAKEABLE = AwakeableId(InvocationId.parse(INVOCATION_ID), 17).to_str()


def route(
    path: str,
    method: str = "POST",
    query: list[tuple[str, str]] | None = None,
    headers: list[tuple[str, str]] | None = None,
) -> object:
    return parse_request(method, path, query or [], headers or [], REGISTRY)


def refused(path: str, method: str = "POST", **kw: object) -> PerdureError:
    result = route(path, method, **kw)  # type: ignore[arg-type]
    assert isinstance(result, PerdureError), result
    return result


# --- calls and sends ----------------------------------------------------------------------


def test_service_call_has_no_key_and_waits() -> None:
    r = route("/Greeter/greet")
    assert isinstance(r, Invoke)
    assert r.target == Target("Greeter", "greet", "", ServiceType.SERVICE, None)
    assert r.mode is CallMode.CALL and r.idempotency_key is None and r.delay_ms is None


def test_send_suffix_makes_a_send() -> None:
    r = route("/Greeter/greet/send")
    assert isinstance(r, Invoke) and r.mode is CallMode.SEND


def test_object_key_is_url_decoded() -> None:
    r = route("/Counter/my%20key%2Fwith%20slash/add")
    assert isinstance(r, Invoke)
    assert r.target.key == "my key/with slash"
    assert r.target.handler_type is HandlerType.EXCLUSIVE


def test_object_send_and_shared_handler() -> None:
    r = route("/Counter/k/get/send")
    assert isinstance(r, Invoke) and r.mode is CallMode.SEND
    assert r.target.handler_type is HandlerType.SHARED


def test_workflow_run_and_shared_handler() -> None:
    run = route("/Signup/k1/run/send")
    shared = route("/Signup/k1/status")
    assert isinstance(run, Invoke) and run.target.handler_type is HandlerType.WORKFLOW
    assert isinstance(shared, Invoke) and shared.target.handler_type is HandlerType.SHARED
    assert shared.target.service_type is ServiceType.WORKFLOW and shared.target.key == "k1"


def test_get_is_accepted_like_restate() -> None:
    assert isinstance(route("/Greeter/greet", "GET"), Invoke)


def test_new_call_and_send_paths() -> None:
    call = route("/restate/call/Counter/k/add")
    send = route("/restate/send/Greeter/greet")
    assert isinstance(call, Invoke) and call.mode is CallMode.CALL and call.target.key == "k"
    assert isinstance(send, Invoke) and send.mode is CallMode.SEND


def test_idempotency_key_header_is_read() -> None:
    r = route("/Greeter/greet", headers=[("Idempotency-Key", "abc")])
    assert isinstance(r, Invoke) and r.idempotency_key == "abc"


@pytest.mark.parametrize(
    ("delay", "ms"),
    [("PT1S", 1000), ("10s", 10_000), ("60 sec", 60_000), ("500ms", 500), ("P1DT1H", 90_000_000)],
)
def test_delay_on_send_accepts_restate_durations(delay: str, ms: int) -> None:
    r = route("/Greeter/greet/send", query=[("delay", delay)])
    assert isinstance(r, Invoke) and r.delay_ms == ms


def test_delay_parameter_name_is_case_insensitive() -> None:
    r = route("/Greeter/greet/send", query=[("Delay", "PT2S")])
    assert isinstance(r, Invoke) and r.delay_ms == 2000


# --- refusals of calls ----------------------------------------------------------------------


def test_unknown_service_lists_registered_services_and_how_to_register() -> None:
    e = refused("/Nope/run")
    assert e.status == 404 and e.kind.code == "PD-1001"
    text = e.full_message
    assert "Counter, Greeter, Signup" in text
    assert "perdure deployments register <uri>" in text
    assert "curl -X POST localhost:9070/deployments" in text and '{"uri": "<uri>"}' in text


def test_unknown_handler_lists_the_handlers() -> None:
    e = refused("/Greeter/gret")
    assert e.status == 404 and e.kind.code == "PD-1002"
    assert "greet" in e.message and "'gret'" in e.message


def test_object_without_key_is_refused_with_the_right_path() -> None:
    e = refused("/Counter/add")
    assert e.status == 400 and e.kind.code == "PD-1003"
    assert "POST /Counter/{key}/add" in e.hint


def test_object_send_without_key_hints_at_the_key() -> None:
    e = refused("/Counter/add/send")
    assert e.status == 404
    assert "forget the key" in e.hint


def test_service_with_a_key_is_refused() -> None:
    e = refused("/Greeter/somekey/greet")
    assert e.status == 400 and "takes no key" in e.message
    assert "POST /Greeter/greet" in e.hint


def test_extra_segments_are_refused() -> None:
    assert refused("/Counter/k/add/send/more").status == 400
    assert refused("/Greeter/greet/").status == 400


def test_private_handler_is_refused() -> None:
    e = refused("/Greeter/secret")
    assert e.status == 400 and e.kind.code == "PD-1004"


def test_delay_on_a_call_is_refused() -> None:
    e = refused("/Greeter/greet", query=[("delay", "PT1S")])
    assert e.status == 400 and e.kind.code == "PD-1006"
    assert "/Greeter/greet/send" in e.hint


def test_bad_delay_is_refused_with_examples() -> None:
    e = refused("/Greeter/greet/send", query=[("delay", "soon")])
    assert e.status == 400 and e.kind.code == "PD-1005" and "PT10S" in e.hint
    assert refused("/Greeter/greet/send", query=[("delay", "P1M")]).status == 400


def test_idempotency_key_on_workflow_run_is_refused() -> None:
    e = refused("/Signup/k/run", headers=[("idempotency-key", "x")])
    assert e.status == 400 and e.kind.code == "PD-1007"
    # Shared workflow handlers may take one.
    assert isinstance(route("/Signup/k/status", headers=[("idempotency-key", "x")]), Invoke)


def test_undecodable_key_is_refused() -> None:
    e = refused("/Counter/%ff%fe/add")
    assert e.status == 400 and e.kind.code == "PD-1015"


def test_wrong_method_is_405() -> None:
    e = refused("/Greeter/greet", "PUT")
    assert e.status == 405 and (b"allow", b"POST, GET") in e.headers


def test_root_and_too_long_paths() -> None:
    assert refused("/").status == 404
    assert refused("/a/b/c/d/e/f/g/h").status == 400


# --- attach and output ----------------------------------------------------------------------


@pytest.mark.parametrize(("verb", "wait"), [("attach", True), ("output", False)])
def test_invocation_by_id(verb: str, wait: bool) -> None:
    r = route(f"/restate/invocation/{INVOCATION_ID}/{verb}", "GET")
    assert r == GetOutput(wait, AttachBy.INVOCATION_ID, invocation_id=INVOCATION_ID)
    assert route(f"/restate/{verb}/{INVOCATION_ID}", "GET") == r


def test_invocation_by_idempotency_key_for_a_service_and_an_object() -> None:
    r = route("/restate/invocation/Greeter/greet/my%20key/attach", "GET")
    assert isinstance(r, GetOutput) and r.by is AttachBy.IDEMPOTENCY_KEY
    assert r.target == Target("Greeter", "greet", "", ServiceType.SERVICE, None)
    assert r.idempotency_key == "my key"
    o = route("/restate/invocation/Counter/k1/add/idem/output", "GET")
    assert isinstance(o, GetOutput) and not o.wait
    assert o.target is not None and o.target.key == "k1" and o.idempotency_key == "idem"


def test_invocation_path_refusals() -> None:
    assert refused("/restate/invocation/inv_1nope/attach", "GET").kind.code == "PD-1009"
    assert refused(f"/restate/invocation/{INVOCATION_ID}/wait", "GET").status == 400
    assert refused("/restate/invocation/Nope/h/k/attach", "GET").status == 404
    assert refused("/restate/invocation/Counter/h/k/attach", "GET").status == 400  # no key
    assert refused(f"/restate/invocation/{INVOCATION_ID}/attach", "POST").status == 405


def test_workflow_attach_and_output_target_the_run_handler() -> None:
    r = route("/restate/workflow/Signup/a%20b/attach", "GET")
    assert r == GetOutput(
        True,
        AttachBy.WORKFLOW,
        target=Target("Signup", "run", "a b", ServiceType.WORKFLOW, HandlerType.WORKFLOW),
    )
    o = route("/restate/workflow/Gone/k/output", "GET")
    assert isinstance(o, GetOutput) and not o.wait and o.target is not None
    assert refused("/restate/workflow/Signup/k", "GET").status == 400
    assert refused("/restate/workflow/Signup/k/attach", "POST").status == 405


def test_attach_and_output_by_body_and_lookup() -> None:
    assert route("/restate/attach") == GetOutputByBody(True)
    assert route("/restate/output") == GetOutputByBody(False)
    assert route("/restate/lookup") == Lookup()
    assert refused("/restate/attach", "GET").status == 405


def test_scope_and_unknown_restate_paths() -> None:
    assert refused("/restate/scope/s/call/Greeter/greet").kind.code == "PD-1016"
    assert refused("/restate/nope", "GET").status == 404
    assert refused("/restate/call").status == 400


# --- awakeables and health ---------------------------------------------------------------------


def test_awakeable_resolve_and_reject() -> None:
    r = route(f"/restate/awakeables/{AWAKEABLE}/resolve")
    assert r == CompleteAwakeable(AWAKEABLE, INVOCATION_ID, 17, True)
    j = route(f"/restate/a/{AWAKEABLE}/reject")
    assert isinstance(j, CompleteAwakeable) and not j.resolve


def test_old_prom_awakeable_ids_parse_too() -> None:
    prom = "prom_1" + AWAKEABLE.removeprefix("sign_1")
    r = route(f"/restate/awakeables/{prom}/resolve")
    assert isinstance(r, CompleteAwakeable) and r.invocation_id == INVOCATION_ID


def test_awakeable_refusals() -> None:
    assert refused("/restate/awakeables/sign_1zzz/resolve").kind.code == "PD-1010"
    assert refused(f"/restate/awakeables/{AWAKEABLE}/complete").status == 400
    assert refused(f"/restate/awakeables/{AWAKEABLE}/resolve", "GET").status == 405


def test_health() -> None:
    assert route("/restate/health", "GET") == Health()
    assert refused("/restate/health", "POST").status == 405


# --- target bodies ----------------------------------------------------------------------------


def test_target_bodies() -> None:
    inv = parse_target_body(
        b'{"target": "Invocation", "invocationId": "%s"}' % INVOCATION_ID.encode(), True, REGISTRY
    )
    assert inv == GetOutput(True, AttachBy.INVOCATION_ID, invocation_id=INVOCATION_ID)
    wf = parse_target_body(
        b'{"target": "Workflow", "workflowName": "Signup", "workflowKey": "k"}', False, REGISTRY
    )
    assert isinstance(wf, GetOutput) and wf.by is AttachBy.WORKFLOW
    idem = parse_target_body(
        b'{"target": "IdempotentInvocation", "service": "Counter", "key": "k", "handler": "add",'
        b' "idempotencyKey": "i"}',
        True,
        REGISTRY,
    )
    assert isinstance(idem, GetOutput) and idem.target is not None
    assert idem.target.service_type is ServiceType.VIRTUAL_OBJECT and idem.idempotency_key == "i"


@pytest.mark.parametrize(
    "body",
    [
        b"nope",
        b"[]",
        b'{"target": "Other"}',
        b'{"target": "Workflow"}',
        b'{"target": "Invocation", "invocationId": "x"}',
    ],
)
def test_bad_target_bodies(body: bytes) -> None:
    error = parse_target_body(body, True, REGISTRY)
    assert isinstance(error, PerdureError) and error.status == 400


def test_lookup_ids_are_the_ids_the_server_gives() -> None:
    ids = RandomIds()
    wf = parse_target_body(
        b'{"target": "Workflow", "workflowName": "Signup", "workflowKey": "k"}', True, REGISTRY
    )
    assert isinstance(wf, GetOutput) and wf.target is not None
    assert routes.lookup_id(wf) == ids.invocation_id(wf.target, None)
    idem = route("/restate/invocation/Counter/k/add/key-1/attach", "GET")
    assert isinstance(idem, GetOutput) and idem.target is not None
    assert routes.lookup_id(idem) == ids.invocation_id(idem.target, "key-1")


# --- input and output rules ---------------------------------------------------------------------


def handler_of(service: str, name: str):  # type: ignore[no-untyped-def]
    h = REGISTRY.handler(service, name)
    assert h is not None
    return h


def test_json_input_rules() -> None:
    greet = handler_of("Greeter", "greet")
    assert check_input(greet, "Greeter", "application/json", b'"Ada"') is None
    assert check_input(greet, "Greeter", "application/json; charset=utf-8", b'"Ada"') is None
    assert check_input(greet, "Greeter", None, b"") is None  # not required: empty is fine
    e = check_input(greet, "Greeter", "application/x-www-form-urlencoded", b"x=1")
    assert e is not None and e.status == 400 and "content-type: application/json" in e.hint
    missing = check_input(greet, "Greeter", None, b'"Ada"')
    assert missing is not None and "no content-type" in missing.message
    empty = check_input(greet, "Greeter", "application/json", b"")
    assert empty is not None and "empty" in empty.message


def test_no_input_and_required_input_rules() -> None:
    ping = handler_of("Greeter", "ping")
    assert check_input(ping, "Greeter", None, b"") is None
    e = check_input(ping, "Greeter", "application/json", b"1")
    assert e is not None and "takes no input" in e.message
    raw = handler_of("Greeter", "raw")
    assert check_input(raw, "Greeter", None, b"") is not None  # required
    assert check_input(raw, "Greeter", "application/octet-stream", b"\x00") is None
    anything = handler_of("Greeter", "anything")  # no input field: any content-type
    assert check_input(anything, "Greeter", "text/plain", b"hi") is None
    assert check_input(anything, "Greeter", None, b"") is None


def test_output_content_types() -> None:
    assert output_content_type(handler_of("Greeter", "greet"), False) == "application/json"
    assert output_content_type(handler_of("Greeter", "greet"), True) is None
    assert output_content_type(handler_of("Greeter", "ping"), False) is None
    assert output_content_type(handler_of("Greeter", "raw"), False) == "application/octet-stream"
    assert output_content_type(handler_of("Greeter", "anything"), False) == "application/json"
    assert output_content_type(None, False) == "application/json"


def test_forwarded_headers_drop_ingress_only_ones() -> None:
    kept = routes.forwarded_headers(
        [("host", "x"), ("idempotency-key", "k"), ("x-custom", "v"), ("connection", "close")],
        "/Greeter/greet?x=1",
    )
    assert kept == (("x-restate-ingress-path", "/Greeter/greet?x=1"), ("x-custom", "v"))
