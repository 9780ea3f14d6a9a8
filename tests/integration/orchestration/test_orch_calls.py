"""Service-to-service calls and sends, call ordering, headers and idempotency keys.

Ports sdk-test-suite's ServiceToServiceCommunication, CallOrdering and the Ingress scenarios
(headers, idempotent invoke, delayed send, attach) as our own tests, on a real `perdure server`
with services written with the official `restate-sdk`.
"""

from __future__ import annotations

import concurrent.futures
import uuid
from typing import Any

import pytest
from tests.helpers.processes import wait_until
from tests.integration.orchestration.conftest import Orchestra

pytestmark = pytest.mark.interop


def key() -> str:
    return uuid.uuid4().hex[:10]


def proxy_request(service: str, handler: str, message: Any, **extra: Any) -> dict[str, Any]:
    return {"serviceName": service, "handlerName": handler, "message": message, **extra}


def test_call_returns_the_callee_result_and_its_invocation_id(orch: Orchestra) -> None:
    r = orch.post("Proxy/callWithId", proxy_request("TestUtils", "uppercaseEcho", "ping"))
    assert r.status_code == 200, r.text
    answer = r.json()
    assert answer["value"] == "PING"
    assert answer["id"].startswith("inv_1")
    assert orch.status(answer["id"]) == "completed"


def test_call_failure_reaches_the_caller_as_a_terminal_error(orch: Orchestra) -> None:
    r = orch.post(
        "Proxy/callWithId", proxy_request("AwakeableHolder", "unlock", "x", virtualObjectKey=key())
    )
    assert r.status_code == 200, r.text
    assert r.json()["error"] == 404  # the callee's TerminalError code, seen by the caller
    assert "hold first" in r.json()["message"]


def test_one_way_call_runs_the_callee(orch: Orchestra) -> None:
    k = key()
    r = orch.post("Proxy/oneWayCall", proxy_request("Counter", "add", 1, virtualObjectKey=k))
    assert r.status_code == 200, r.text
    sent = r.json()
    assert sent.startswith("inv_1")
    wait_until(lambda: orch.post(f"Counter/{k}/get").json() == 1, what="the send to run")
    assert orch.status(sent) == "completed"


def test_one_way_call_with_idempotency_key_runs_once(orch: Orchestra) -> None:
    k, idem = key(), key()
    req = proxy_request("Counter", "add", 1, virtualObjectKey=k, idempotencyKey=idem)
    first = orch.post("Proxy/oneWayCall", req).json()
    second = orch.post("Proxy/oneWayCall", req).json()
    assert first == second  # same idempotency key: the same invocation
    wait_until(lambda: orch.post(f"Counter/{k}/get").json() == 1, what="the send to run")
    out = orch.get(f"restate/invocation/Counter/{k}/add/{idem}/output")
    assert out.status_code == 200, out.text
    assert out.json() == {"oldValue": 0, "newValue": 1}
    assert orch.post(f"Counter/{k}/get").json() == 1


def test_call_with_idempotency_key_from_a_handler_runs_once(orch: Orchestra) -> None:
    k, idem = key(), key()
    req = proxy_request("Counter", "add", 1, virtualObjectKey=k, idempotencyKey=idem)
    assert orch.post("Proxy/call", req).json() == {"oldValue": 0, "newValue": 1}
    assert orch.post("Proxy/call", req).json() == {"oldValue": 0, "newValue": 1}
    assert orch.post(f"Counter/{k}/get").json() == 1


def test_delayed_sends_wait_for_their_time_then_all_run(orch: Orchestra) -> None:
    k = key()
    ids = [
        orch.post(
            "Proxy/oneWayCall",
            proxy_request("Counter", "add", 1, virtualObjectKey=k, delayMillis=2000),
        ).json()
        for _ in range(5)
    ]
    # Before its time a send is scheduled, not queued behind the others in the key's inbox.
    assert orch.status(ids[-1]) == "scheduled"
    wait_until(lambda: orch.post(f"Counter/{k}/get").json() == 5, what="five delayed adds")
    assert {orch.status(i) for i in ids} == {"completed"}


def test_ingress_delayed_send_reports_its_execution_time(orch: Orchestra) -> None:
    k = key()
    r = orch.post(f"Counter/{k}/add/send?delay=1s", 3)
    assert r.status_code == 202, r.text
    assert r.json()["status"] == "Accepted" and "executionTime" in r.json()
    out = orch.get(f"restate/invocation/{r.json()['invocationId']}/attach")
    assert out.status_code == 200 and out.json() == {"oldValue": 0, "newValue": 3}


@pytest.mark.parametrize(
    "background", [(True, False, False), (False, True, False), (True, True, False)]
)
def test_calls_and_sends_to_one_key_run_in_the_order_they_were_made(
    orch: Orchestra, background: tuple[bool, ...]
) -> None:
    k = key()
    requests = [
        {
            "proxyRequest": proxy_request("ListObject", "append", str(i), virtualObjectKey=k),
            "oneWayCall": is_send,
            "awaitAtTheEnd": not is_send,
        }
        for i, is_send in enumerate(background)
    ]
    r = orch.post("Proxy/manyCalls", requests)
    assert r.status_code == 200, r.text
    assert orch.post(f"ListObject/{k}/clear").json() == ["0", "1", "2"]


def test_headers_reach_the_handler(orch: Orchestra) -> None:
    r = orch.post(
        "TestUtils/echoHeaders",
        headers={"x-my-custom-header": "x-my-custom-value", "idempotency-key": key()},
    )
    assert r.status_code == 200, r.text
    assert r.json().get("x-my-custom-header") == "x-my-custom-value"


def test_idempotent_calls_from_the_ingress_run_once_and_share_the_result(orch: Orchestra) -> None:
    k, idem = key(), key()
    headers = {"idempotency-key": idem}
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        answers = list(
            pool.map(lambda _: orch.post(f"Counter/{k}/add", 2, headers=headers), range(8))
        )
    assert {a.status_code for a in answers} == {200}
    assert all(a.json() == {"oldValue": 0, "newValue": 2} for a in answers)
    assert len({a.headers["x-restate-id"] for a in answers}) == 1
    assert orch.post(f"Counter/{k}/get").json() == 2
    # Without the key the handler runs again.
    assert orch.post(f"Counter/{k}/add", 2).json() == {"oldValue": 2, "newValue": 4}


def test_idempotent_send_then_attach_and_output(orch: Orchestra) -> None:
    k, idem = key(), key()
    headers = {"idempotency-key": idem}
    first = orch.post(f"Combinators/{k}/gatherAll/send", 1, headers=headers)
    again = orch.post(f"Combinators/{k}/gatherAll/send", 1, headers=headers)
    assert first.status_code == again.status_code == 202
    assert first.json()["status"] == "Accepted"
    assert again.json()["status"] == "PreviouslyAccepted"
    assert first.json()["invocationId"] == again.json()["invocationId"]
    by_key = f"restate/invocation/Combinators/{k}/gatherAll/{idem}"
    assert orch.get(f"{by_key}/output").status_code == 470  # not ready yet
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        attached = pool.submit(orch.get, f"{by_key}/attach")
        awk = wait_until(
            lambda: orch.post(f"Combinators/{k}/awakeableId", "awk0").json(),
            what="the awakeable id",
        )
        assert orch.post(f"restate/awakeables/{awk}/resolve", "done").status_code == 202
        out = attached.result(timeout=30)
    assert out.status_code == 200 and out.json() == ["done"]
    assert orch.get(f"{by_key}/output").json() == ["done"]


def test_attach_from_a_handler_waits_for_the_other_invocation(orch: Orchestra) -> None:
    k = key()
    sent = orch.post(f"Combinators/{k}/gatherAll/send", 1).json()["invocationId"]
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        attached = pool.submit(orch.post, "Proxy/attach", sent)
        awk = wait_until(
            lambda: orch.post(f"Combinators/{k}/awakeableId", "awk0").json(),
            what="the awakeable id",
        )
        orch.post(f"restate/awakeables/{awk}/resolve", "via-attach")
        out = attached.result(timeout=30)
    assert out.status_code == 200, out.text
    assert out.json() == ["via-attach"]


def test_idempotent_answer_says_when_the_key_expires(orch: Orchestra) -> None:
    k = key()
    r = orch.post(f"ShortMemory/{k}/bump", headers={"idempotency-key": "once"})
    assert r.status_code == 200
    assert r.headers["idempotency-expires"].endswith("Z")
    assert "idempotency-expires" not in orch.post(f"ShortMemory/{k}/bump").headers
