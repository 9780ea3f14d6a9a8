"""Cancel and kill through the admin API and from handlers, and the other invocation operations.

Ports sdk-test-suite's Cancellation and KillInvocation scenarios: a cancelled handler sees a
cancellation error it can catch (and compensate), the cancellation reaches its child calls
(running, suspended or waiting in an inbox), and a kill stops a whole call tree at once,
unlocking every object it held.
"""

from __future__ import annotations

import uuid

import pytest
from tests.helpers.processes import wait_until
from tests.integration.orchestration.conftest import Orchestra

from perdure.protocol.ids import InvocationId

pytestmark = pytest.mark.interop


@pytest.fixture
def orch(orch_both: Orchestra) -> Orchestra:
    """Over HTTP/2 and over HTTP/1.1, where a blocked handler is really suspended."""
    return orch_both


def key() -> str:
    return uuid.uuid4().hex[:10]


def start_blocked(orch: Orchestra, k: str, operation: str) -> str:
    sent = orch.post(f"CancelTestRunner/{k}/startTest/send", operation)
    assert sent.status_code == 202, sent.text
    wait_until(
        lambda: orch.post(f"AwakeableHolder/{k}/hasAwakeable").json() is True,
        what="the awakeable to be held",
    )
    assert orch.post(f"AwakeableHolder/{k}/unlock", "cancel").status_code == 200
    return str(sent.json()["invocationId"])


def blocked_deeper(orch: Orchestra, k: str, operation: str) -> bool:
    """The blocking service got its first awakeable and moved on into `operation`."""
    found = orch.admin("GET", f"invocations?service=CancelTestBlockingService&key={k}").json()
    rows = found["invocations"]
    if operation == "CALL":
        return len(rows) >= 2  # the second `block` waits in the key's inbox
    first = orch.admin("GET", f"invocations/{rows[-1]['id']}").json()
    types = [e["type"] for e in first["journal"]]
    if operation == "SLEEP":
        return "sleep_command" in types
    return "signal_notification" in types


@pytest.mark.parametrize("operation", ["CALL", "SLEEP", "AWAKEABLE"])
def test_cancel_from_the_admin_api_reaches_the_blocked_child(
    orch: Orchestra, operation: str
) -> None:
    k = key()
    inv = start_blocked(orch, k, operation)
    wait_until(lambda: blocked_deeper(orch, k, operation), what=f"blocked on {operation}")
    r = orch.admin("PATCH", f"invocations/{inv}/cancel")
    assert r.status_code == 202, r.text  # appended to a running invocation
    wait_until(
        lambda: orch.post(f"CancelTestRunner/{k}/verifyTest").json() is True,
        what="the runner to record the cancellation",
    )
    assert orch.post(f"CancelTestBlockingService/{k}/isUnlocked").status_code == 200
    wait_until(lambda: orch.status(inv) == "completed", what="the runner to complete")
    again = orch.admin("PATCH", f"invocations/{inv}/cancel")
    assert again.status_code == 409, again.text  # already completed


@pytest.mark.parametrize("operation", ["CALL", "SLEEP", "AWAKEABLE"])
def test_cancel_from_a_handler_reaches_the_blocked_child(orch: Orchestra, operation: str) -> None:
    k = key()
    req = {
        "serviceName": "CancelTestRunner",
        "virtualObjectKey": k,
        "handlerName": "startTest",
        "message": operation,
    }
    inv = orch.post("Proxy/oneWayCall", req).json()
    wait_until(
        lambda: orch.post(f"AwakeableHolder/{k}/hasAwakeable").json() is True,
        what="the awakeable to be held",
    )
    orch.post(f"AwakeableHolder/{k}/unlock", "cancel")
    wait_until(lambda: blocked_deeper(orch, k, operation), what=f"blocked on {operation}")
    assert orch.post("TestUtils/cancelInvocation", inv).status_code == 200
    wait_until(
        lambda: orch.post(f"CancelTestRunner/{k}/verifyTest").json() is True,
        what="the runner to record the cancellation",
    )
    assert orch.post(f"CancelTestBlockingService/{k}/isUnlocked").status_code == 200


def test_cancelled_handler_compensates_and_its_caller_sees_409(orch: Orchestra) -> None:
    trip = key()
    sent = orch.post("Compensating/bookTrip/send", trip).json()["invocationId"]
    wait_until(
        lambda: orch.post(f"AwakeableHolder/{trip}/hasAwakeable").json() is True,
        what="the confirmation awakeable",
    )
    assert orch.admin("PATCH", f"invocations/{sent}/cancel").status_code in (200, 202)
    out = orch.get(f"restate/invocation/{sent}/attach")
    assert out.status_code == 409, out.text
    assert orch.lines(f"undo:{trip}") == [f"undo:{trip}"]
    assert orch.lines(f"book:{trip}") == [f"book:{trip}"]


def test_cancel_of_an_inboxed_invocation_completes_it_at_once(orch: Orchestra) -> None:
    k = key()
    holder = orch.post(f"Combinators/{k}/gatherAll/send", 1).json()["invocationId"]
    queued = orch.post(f"Combinators/{k}/gatherAll/send", 1).json()["invocationId"]
    wait_until(lambda: orch.status(queued) == "pending", what="the second call to be inboxed")
    r = orch.admin("PATCH", f"invocations/{queued}/cancel")
    assert r.status_code == 200, r.text  # done: it never ran
    out = orch.get(f"restate/invocation/{queued}/output")
    assert out.status_code == 409, out.text
    assert orch.status(holder) in ("running", "suspended")
    orch.admin("PATCH", f"invocations/{holder}/kill")


def test_cancel_of_a_scheduled_send_completes_it_without_running(orch: Orchestra) -> None:
    k = key()
    sent = orch.post(f"Counter/{k}/add/send?delay=1h", 1).json()["invocationId"]
    assert orch.status(sent) == "scheduled"
    assert orch.admin("PATCH", f"invocations/{sent}/cancel").status_code == 200
    assert orch.get(f"restate/invocation/{sent}/output").status_code == 409
    assert orch.post(f"Counter/{k}/get").json() == 0


def test_kill_stops_the_call_tree_and_unlocks_every_object(orch: Orchestra) -> None:
    k = key()
    sent = orch.post(f"KillTestRunner/{k}/startCallTree/send")
    inv = sent.json()["invocationId"]
    wait_until(
        lambda: orch.post(f"AwakeableHolder/{k}/hasAwakeable").json() is True,
        what="the call tree to be built",
    )
    orch.post(f"AwakeableHolder/{k}/unlock", "go")
    r = orch.admin("PATCH", f"invocations/{inv}/kill")
    assert r.status_code == 200, r.text
    assert orch.post(f"KillTestSingleton/{k}/isUnlocked").status_code == 200
    assert orch.post(f"KillTestRunner/{k}/startCallTree/send").status_code == 202  # lock is free
    out = orch.get(f"restate/invocation/{inv}/output")
    assert out.status_code == 409 and "killed" in out.text
    assert orch.admin("PATCH", f"invocations/{inv}/kill").status_code == 409


def test_kill_fails_the_waiting_caller_without_compensation(orch: Orchestra) -> None:
    trip = key()
    req = {"serviceName": "Compensating", "handlerName": "bookTrip", "message": trip}
    caller = orch.post("Proxy/callWithId/send", req).json()["invocationId"]
    wait_until(
        lambda: orch.post(f"AwakeableHolder/{trip}/hasAwakeable").json() is True,
        what="the booking to wait",
    )
    rows = orch.admin("GET", "invocations?service=Compensating").json()["invocations"]
    callee = next(r["id"] for r in rows if r.get("status") in ("running", "suspended"))
    assert orch.admin("PATCH", f"invocations/{callee}/kill").status_code == 200
    out = orch.get(f"restate/invocation/{caller}/attach")
    assert out.status_code == 200, out.text
    assert out.json()["error"] == 409 and "killed" in out.json()["message"]
    assert orch.lines(f"undo:{trip}") == []  # a kill runs no compensation


def test_operations_answer_restate_status_codes(orch: Orchestra) -> None:
    k = key()
    done = orch.post(f"Counter/{k}/add", 1).headers["x-restate-id"]
    unknown = InvocationId(7, 7).to_str()  # well formed, never used
    assert orch.admin("PATCH", f"invocations/{done}/kill").status_code == 409
    assert orch.admin("PATCH", f"invocations/{done}/resume").status_code == 409
    assert orch.admin("PATCH", f"invocations/{done}/pause").status_code == 409
    for op in ("cancel", "kill", "purge", "resume", "restart-as-new"):
        r = orch.admin("PATCH", f"invocations/{unknown}/{op}")
        assert r.status_code == 404, r.text
    scheduled = orch.post(f"Counter/{k}/add/send?delay=1h", 1).json()["invocationId"]
    assert orch.admin("PATCH", f"invocations/{scheduled}/resume").status_code == 425
    assert orch.admin("PATCH", f"invocations/{scheduled}/purge").status_code == 409
    assert orch.admin("PATCH", f"invocations/{scheduled}/restart-as-new").status_code == 425
    assert orch.admin("DELETE", f"invocations/{scheduled}?mode=kill").status_code == 202
    assert orch.status(scheduled) == "completed"
    assert orch.admin("PATCH", f"invocations/{scheduled}/purge").status_code == 200
    assert orch.admin("GET", f"invocations/{scheduled}").status_code == 404


def test_restart_as_new_runs_the_same_input_under_a_new_id(orch: Orchestra) -> None:
    k = key()
    first = orch.post(f"Counter/{k}/add", 5)
    old = first.headers["x-restate-id"]
    r = orch.admin("PATCH", f"invocations/{old}/restart-as-new")
    assert r.status_code == 200, r.text
    new = r.json()["new_invocation_id"]
    assert new != old
    out = orch.get(f"restate/invocation/{new}/attach")
    assert out.json() == {"oldValue": 5, "newValue": 10}
    wf = orch.post(f"NightlyJob/{key()}/run")
    r = orch.admin("PATCH", f"invocations/{wf.headers['x-restate-id']}/restart-as-new")
    assert r.status_code == 422, r.text  # workflows cannot be restarted


def test_restart_as_new_from_a_prefix_reruns_only_the_steps_after_it(orch: Orchestra) -> None:
    tag = key()
    old = orch.post("Steps/three", tag).headers["x-restate-id"]
    journal = orch.admin("GET", f"invocations/{old}").json()["journal"]
    runs = [e["index"] for e in journal if e["type"] == "run_command"]
    r = orch.admin("PATCH", f"invocations/{old}/restart-as-new?from={runs[2] - 1}")
    assert r.status_code == 200, r.text
    new = r.json()["new_invocation_id"]
    assert orch.get(f"restate/invocation/{new}/attach").json() == 3
    ran = orch.lines(f"steps:{tag}")
    assert sorted(ran) == [f"steps:{tag}:0", f"steps:{tag}:1", f"steps:{tag}:2", f"steps:{tag}:2"]


def test_paused_invocation_resumes_on_request(orch: Orchestra) -> None:
    k = key()
    sent = orch.post(f"Combinators/{k}/gatherAll/send", 1).json()["invocationId"]
    awk = wait_until(
        lambda: orch.post(f"Combinators/{k}/awakeableId", "awk0").json(), what="the awakeable id"
    )
    assert orch.admin("PATCH", f"invocations/{sent}/pause").status_code == 202
    assert orch.status(sent) == "paused"
    assert orch.admin("PATCH", f"invocations/{sent}/pause").status_code == 200  # already
    orch.post(f"restate/awakeables/{awk}/resolve", "later")
    assert orch.status(sent) == "paused"  # a notification does not resume a paused invocation
    assert orch.admin("PATCH", f"invocations/{sent}/resume").status_code == 200
    out = orch.get(f"restate/invocation/{sent}/attach")
    assert out.status_code == 200 and out.json() == ["later"]
