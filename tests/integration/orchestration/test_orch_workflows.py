"""Workflows, durable promises, awakeables and combinators on a real server.

Ports sdk-test-suite's WorkflowAPI and Combinators scenarios and the awakeable parts of its
Ingress tests, plus the sign-up and nightly-job workflows and duplicate callbacks.
"""

from __future__ import annotations

import concurrent.futures
import uuid

import pytest
from tests.helpers.processes import wait_until
from tests.integration.orchestration.conftest import Orchestra

pytestmark = pytest.mark.interop


@pytest.fixture
def orch(orch_both: Orchestra) -> Orchestra:
    """Every test here runs over HTTP/2 and over HTTP/1.1, where the SDK suspends at each
    await: combinators, promises and awakeables then resume from their stored future tree."""
    return orch_both


def key() -> str:
    return uuid.uuid4().hex[:10]


def awakeable(orch: Orchestra, k: str, name: str) -> str:
    return str(
        wait_until(
            lambda: orch.post(f"Combinators/{k}/awakeableId", name).json(),
            what=f"awakeable {name} to be created",
        )
    )


def test_workflow_runs_once_and_its_promise_completes_it(orch: Orchestra) -> None:
    wf = key()
    sent = orch.post(f"BlockAndWaitWorkflow/{wf}/run/send", "Francesco")
    assert sent.status_code == 202 and sent.json()["status"] == "Accepted"
    wait_until(lambda: orch.post(f"BlockAndWaitWorkflow/{wf}/getState").json(), what="state")
    assert orch.get(f"restate/workflow/BlockAndWaitWorkflow/{wf}/output").status_code == 470
    assert orch.post(f"BlockAndWaitWorkflow/{wf}/unblock", "Till").status_code == 200
    attached = orch.get(f"restate/workflow/BlockAndWaitWorkflow/{wf}/attach")
    assert attached.status_code == 200 and attached.json() == "Till"
    assert orch.get(f"restate/workflow/BlockAndWaitWorkflow/{wf}/output").json() == "Till"
    again = orch.post(f"BlockAndWaitWorkflow/{wf}/run/send", "Francesco")
    assert again.json()["status"] == "PreviouslyAccepted"
    assert again.json()["invocationId"] == sent.json()["invocationId"]
    assert orch.post(f"BlockAndWaitWorkflow/{wf}/run", "x").status_code == 409
    # State and promises are kept for the workflow's retention after it completes.
    assert orch.post(f"BlockAndWaitWorkflow/{wf}/getState").json() == "Francesco"


def test_completing_a_durable_promise_twice_is_a_failure_the_caller_sees(orch: Orchestra) -> None:
    wf = key()
    orch.post(f"BlockAndWaitWorkflow/{wf}/run/send", "x")
    assert orch.post(f"BlockAndWaitWorkflow/{wf}/unblock", "first").status_code == 200
    second = orch.post(f"BlockAndWaitWorkflow/{wf}/unblock", "second")
    assert second.status_code == 409, second.text
    assert "already completed" in second.text
    out = orch.get(f"restate/workflow/BlockAndWaitWorkflow/{wf}/attach")
    assert out.json() == "first"  # nothing changed


def test_workflow_run_refuses_an_idempotency_key(orch: Orchestra) -> None:
    r = orch.post(f"NightlyJob/{key()}/run", headers={"idempotency-key": "k"})
    assert r.status_code == 400, r.text


def test_signup_workflow_waits_for_the_click(orch: Orchestra) -> None:
    email = f"{key()}@example.com"
    sent = orch.post(f"Signup/{email}/run/send", email)
    assert sent.status_code == 202
    wait_until(
        lambda: orch.post(f"Signup/{email}/getStatus").json() == "waiting-for-click",
        what="the email to be sent",
    )
    assert orch.post(f"Signup/{email}/click", "s3cret").status_code == 200
    out = orch.get(f"restate/workflow/Signup/{email}/attach")
    assert out.json() == {"user": f"u-{email}", "clicked": "s3cret"}
    assert orch.post(f"Signup/{email}/getStatus").json() == "verified"
    duplicate = orch.post(f"Signup/{email}/click", "again")  # a second click: clear conflict
    assert duplicate.status_code == 409
    assert orch.lines(f"user:{email}") == [f"user:{email}"]
    assert orch.lines(f"email:{email}") == [f"email:{email}"]


def test_nightly_job_keyed_on_its_date_runs_once_a_day(orch: Orchestra) -> None:
    day = f"2026-11-{uuid.uuid4().int % 28 + 1:02d}-{key()}"
    first = orch.post(f"NightlyJob/{day}/run/send")
    second = orch.post(f"NightlyJob/{day}/run/send")
    assert first.json()["status"] == "Accepted"
    assert second.json()["status"] == "PreviouslyAccepted"
    out = orch.get(f"restate/workflow/NightlyJob/{day}/attach")
    assert out.json() == f"report for {day}"
    assert orch.post(f"NightlyJob/{day}/run/send").json()["status"] == "PreviouslyAccepted"
    assert orch.lines(f"nightly:{day}") == [f"nightly:{day}"]


def test_awakeable_resolved_through_the_ingress_and_twice_is_a_conflict(orch: Orchestra) -> None:
    k = key()
    sent = orch.post(f"Combinators/{k}/gatherAll/send", 2).json()["invocationId"]
    first, second = awakeable(orch, k, "awk0"), awakeable(orch, k, "awk1")
    assert first.startswith(("sign_1", "prom_1"))
    assert orch.post(f"restate/awakeables/{first}/resolve", "a").status_code == 202
    dup = orch.post(f"restate/awakeables/{first}/resolve", "changed")
    assert dup.status_code == 409 and "already" in dup.text
    assert orch.post(f"restate/awakeables/{second}/resolve", "b").status_code == 202
    assert orch.get(f"restate/invocation/{sent}/attach").json() == ["a", "b"]
    gone = orch.post(f"restate/awakeables/{first}/resolve", "late")
    assert gone.status_code == 404, gone.text


def test_awakeable_rejected_through_the_ingress_fails_the_await(orch: Orchestra) -> None:
    k = key()
    sent = orch.post(f"Combinators/{k}/gatherAll/send", 1).json()["invocationId"]
    awk = awakeable(orch, k, "awk0")
    r = httpx_text(orch, f"restate/awakeables/{awk}/reject", "no thanks")
    assert r == 202
    out = orch.get(f"restate/invocation/{sent}/attach")
    assert out.status_code == 500 and "no thanks" in out.text


def httpx_text(orch: Orchestra, path: str, text: str) -> int:
    import httpx

    return httpx.post(
        f"{orch.server.ingress}/{path}", content=text.encode(), timeout=30
    ).status_code


def test_awakeable_completed_by_another_handler(orch: Orchestra) -> None:
    k = key()
    sent = orch.post(f"Combinators/{k}/gatherAll/send", 1).json()["invocationId"]
    awk = awakeable(orch, k, "awk0")
    assert orch.post("TestUtils/resolveAwakeable", {"id": awk, "value": "v"}).status_code == 200
    assert orch.get(f"restate/invocation/{sent}/attach").json() == ["v"]


def test_unknown_awakeable_gets_a_clear_answer(orch: Orchestra) -> None:
    r = orch.post("restate/awakeables/sign_1nope/resolve", "x")
    assert r.status_code == 400, r.text


def test_awakeable_or_timeout_answers_the_timeout(orch: Orchestra) -> None:
    assert orch.post(f"Combinators/{key()}/awakeableOrTimeout", 100).json() == "sleep"


def test_awakeable_or_timeout_answers_the_awakeable(orch: Orchestra) -> None:
    k = key()
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pending = pool.submit(orch.post, f"Combinators/{k}/awakeableOrTimeout", 600_000)
        awk = awakeable(orch, k, "awk")
        orch.post(f"restate/awakeables/{awk}/resolve", "first")
        assert pending.result(timeout=30).json() == "first"


def test_first_successful_awakeable_wins_over_failures(orch: Orchestra) -> None:
    k = key()
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pending = pool.submit(orch.post, f"Combinators/{k}/firstSuccessful", 3)
        ids = [awakeable(orch, k, f"awk{i}") for i in range(3)]
        assert orch.post(f"restate/awakeables/{ids[2]}/reject", "fail").status_code == 202
        assert orch.post(f"restate/awakeables/{ids[1]}/resolve", "awk1-result").status_code == 202
        out = pending.result(timeout=30)
    assert out.status_code == 200 and out.json() == "awk1-result"


def test_named_signal_sent_by_another_handler(orch: Orchestra) -> None:
    waiting = orch.post("Signals/waitFor/send", "approve").json()["invocationId"]
    wait_until(lambda: orch.status(waiting) in ("running", "suspended"), what="the waiter")
    r = orch.post("Signals/send", {"id": waiting, "name": "approve", "value": "yes"})
    assert r.status_code == 200, r.text
    assert orch.get(f"restate/invocation/{waiting}/attach").json() == "yes"


def test_named_signal_rejected_fails_the_waiter(orch: Orchestra) -> None:
    waiting = orch.post("Signals/waitFor/send", "approve").json()["invocationId"]
    orch.post("Signals/send", {"id": waiting, "name": "approve", "reject": "denied"})
    out = orch.get(f"restate/invocation/{waiting}/attach")
    assert out.status_code == 422 and "denied" in out.text


def test_idempotency_key_is_forgotten_after_the_handler_retention(orch: Orchestra) -> None:
    k = key()
    headers = {"idempotency-key": "nightly"}
    assert orch.post(f"ShortMemory/{k}/bump", headers=headers).json() == 1
    assert orch.post(f"ShortMemory/{k}/bump", headers=headers).json() == 1
    # Once the one-second retention is over the same key runs the handler again.
    wait_until(
        lambda: orch.post(f"ShortMemory/{k}/bump", headers=headers).json() == 2,
        what="the key to expire",
    )
