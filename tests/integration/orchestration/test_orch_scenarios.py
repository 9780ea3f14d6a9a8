"""Bigger orchestration scenarios: DAG fan-out/fan-in, an approval gate with escalating
reminders, and `kill -9` of the server between the steps of the workflows."""

from __future__ import annotations

import uuid

import pytest
from tests.helpers.processes import wait_until
from tests.integration.orchestration.conftest import Orchestra

pytestmark = pytest.mark.interop


def key() -> str:
    return uuid.uuid4().hex[:10]


def expected_dag(waves: int, width: int) -> int:
    seed = 1
    for _ in range(waves):
        seed = sum((seed + i) ** 2 for i in range(width)) % 1000
    return seed


def test_dag_fans_out_twenty_calls_per_wave_and_fans_in(orch_both: Orchestra) -> None:
    """Over HTTP/1.1 the handler suspends on each wave's ALL_COMPLETED future and is resumed
    once, when the twentieth result has arrived."""
    r = orch_both.post("Dag/waves", {"waves": 3, "width": 20})
    assert r.status_code == 200, r.text
    assert r.json() == expected_dag(3, 20)
    attempts = orch_both.admin("GET", f"invocations/{r.headers['x-restate-id']}").json()["attempts"]
    assert attempts <= 4  # the first attempt, then at most one resumption per wave
    squares = orch_both.admin("GET", "invocations?service=Dag&limit=1000").json()["invocations"]
    assert sum(1 for row in squares if row["target"].endswith("/square")) >= 60


def test_approval_gate_decided_before_any_reminder(orch: Orchestra) -> None:
    gate = key()
    orch.post(f"Approval/{gate}/run/send", {"reminders": 3, "first_reminder_ms": 600_000})
    assert orch.post(f"Approval/{gate}/decide", "approved").status_code == 200
    assert orch.get(f"restate/workflow/Approval/{gate}/attach").json() == "approved"
    assert orch.post(f"Approval/{gate}/reminders").json() == 0


def test_approval_gate_reminds_with_growing_waits_then_escalates(orch: Orchestra) -> None:
    gate = key()
    orch.post(f"Approval/{gate}/run/send", {"reminders": 2, "first_reminder_ms": 200})
    wait_until(lambda: orch.lines(f"escalate:{gate}"), what="the escalation")
    assert orch.lines(f"remind:{gate}") == [f"remind:{gate}:0", f"remind:{gate}:1"]
    assert orch.post(f"Approval/{gate}/reminders").json() == 2
    assert orch.post(f"Approval/{gate}/decide", "approved").status_code == 200
    out = orch.get(f"restate/workflow/Approval/{gate}/attach")
    assert out.json() == "escalated: approved"
    assert orch.post(f"Approval/{gate}/decide", "again").status_code == 409


@pytest.mark.crash
def test_kill_9_between_steps_loses_nothing_and_repeats_nothing(fresh: Orchestra) -> None:
    """Sign-up, approval gate, nightly job, a DAG and a just-cancelled booking, with the server
    killed (SIGKILL) while each of them is between two steps; after the restart every one
    finishes, and every step that had completed before the crash is not run again."""
    email, gate, day = f"{key()}@x.org", key(), f"2026-11-23-{key()}"
    fresh.post(f"Signup/{email}/run/send", email)
    fresh.post(f"Approval/{gate}/run/send", {"reminders": 2, "first_reminder_ms": 300})
    nightly = fresh.post(f"NightlyJob/{day}/run/send").json()["invocationId"]
    dag = fresh.post("Dag/waves/send", {"waves": 4, "width": 20}).json()["invocationId"]
    wait_until(
        lambda: fresh.post(f"Signup/{email}/getStatus").json() == "waiting-for-click",
        what="the sign-up to wait for its click",
    )
    wait_until(lambda: fresh.lines(f"remind:{gate}"), what="the first reminder")
    trip = key()
    booking = fresh.post("Compensating/bookTrip/send", trip).json()["invocationId"]
    wait_until(
        lambda: fresh.post(f"AwakeableHolder/{trip}/hasAwakeable").json() is True,
        what="the booking to wait for its confirmation",
    )
    # A cancel that was answered has been stored: the crash right after it loses nothing.
    assert fresh.admin("PATCH", f"invocations/{booking}/cancel").status_code == 202
    fresh.server.kill9()
    fresh.server.start()

    assert fresh.get(f"restate/invocation/{booking}/attach").status_code == 409
    assert set(fresh.lines(f"undo:{trip}")) == {f"undo:{trip}"}

    assert fresh.post(f"NightlyJob/{day}/run/send").json()["status"] == "PreviouslyAccepted"
    assert fresh.post(f"Signup/{email}/click", "s").status_code == 200
    out = fresh.get(f"restate/workflow/Signup/{email}/attach")
    assert out.json() == {"user": f"u-{email}", "clicked": "s"}
    wait_until(lambda: fresh.lines(f"escalate:{gate}"), what="the escalation after restart")
    fresh.post(f"Approval/{gate}/decide", "ok")
    assert fresh.get(f"restate/workflow/Approval/{gate}/attach").json() == "escalated: ok"
    assert fresh.get(f"restate/invocation/{nightly}/attach").json() == f"report for {day}"
    assert fresh.get(f"restate/invocation/{dag}/attach").json() == expected_dag(4, 20)

    assert fresh.lines(f"user:{email}") == [f"user:{email}"]
    assert fresh.lines(f"email:{email}") == [f"email:{email}"]
    # A step in flight at the kill may run again (at-least-once); none is lost.
    reminders = fresh.lines(f"remind:{gate}")
    assert set(reminders) == {f"remind:{gate}:0", f"remind:{gate}:1"} and len(reminders) <= 3
    assert set(fresh.lines(f"nightly:{day}")) == {f"nightly:{day}"}
    assert len(fresh.lines(f"nightly:{day}")) <= 2
