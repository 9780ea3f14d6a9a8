"""The rules of `perdure explain`: given what the admin API says, the words and the next step."""

from __future__ import annotations

from typing import Any

from perdure.cli.diagnosis import (
    Context,
    Diagnosis,
    awaited_callee,
    explain_invocation,
    explain_target,
    not_found,
    outstanding,
)
from perdure.protocol.ids import AwakeableId, InvocationId

NOW = 1_700_000_000_000  # 2023-11-14T22:13:20Z
INV = InvocationId(7, 42).to_str()
DEPLOYMENT = {"id": "dp_1a", "uri": "http://127.0.0.1:9080"}


def at(offset_ms: int) -> str:
    from perdure.server.admin.queries import timestamp

    value = timestamp(NOW + offset_ms)
    assert value is not None
    return value


def inv(status: str, **extra: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "id": INV,
        "target": "Counter/k1/add",
        "target_service_name": "Counter",
        "target_service_key": "k1",
        "target_handler_name": "add",
        "status": status,
        "attempts": 1,
        "retry_count": 0,
        "deployment_id": "dp_1a",
        "journal": [{"index": 0, "type": "input_command"}],
        "waiting_for": None,
        "key_lock": None,
        "created_at": at(-60_000),
    }
    doc.update(extra)
    return doc


def ctx(**extra: Any) -> Context:
    return Context(now_ms=NOW, deployments={"dp_1a": DEPLOYMENT}, **extra)


def text(d: Diagnosis) -> str:
    return "\n".join([d.summary, *d.details, *d.next_steps])


SLEEP = {
    "index": 1,
    "type": "sleep_command",
    "completion_id": 1,
    "wake_up_at": at(90_000),
}


def test_scheduled_invocation_says_when_it_starts() -> None:
    d = explain_invocation(inv("scheduled", scheduled_at=at(30_000)), ctx())
    assert d.reason == "scheduled"
    assert "starts at 22:13:50 UTC (in 30s)" in d.summary
    assert d.next_steps[0].startswith(f"perdure invocations cancel {INV}")


def test_pending_invocation_names_the_holder_and_its_place_in_line() -> None:
    others = [{"id": "inv_first"}, {"id": "inv_second"}]
    holder = {"id": "inv_holder", "status": "running", "target": "Counter/k1/slow"}
    d = explain_invocation(
        inv("pending", key_lock={"holder": "inv_holder", "queued": 3}),
        ctx(queue=[*others, {"id": INV}], holder=holder),
    )
    assert d.reason == "waiting-for-lock"
    assert "inbox of Counter/k1" in d.summary
    assert "inv_holder (running, Counter/k1/slow) holds the key" in d.summary
    assert "2 invocation(s) are queued ahead of it: inv_first, inv_second" in d.details
    assert d.next_steps[0].startswith("perdure explain inv_holder")


def test_pending_first_in_line_behind_a_paused_holder_suggests_killing_the_holder() -> None:
    holder = {"id": "inv_holder", "status": "paused", "target": "Counter/k1/add"}
    d = explain_invocation(
        inv("pending", key_lock={"holder": "inv_holder", "queued": 1}),
        ctx(queue=[{"id": INV}], holder=holder),
    )
    assert "It is next in line" in text(d)
    assert "The holder is paused" in text(d)
    assert any(s.startswith("perdure invocations kill inv_holder") for s in d.next_steps)


def test_running_invocation_shows_what_its_open_attempt_awaits() -> None:
    d = explain_invocation(inv("running", journal=[{"index": 0}, SLEEP]), ctx())
    assert d.reason == "running"
    assert "waits for a timer due at 22:14:50 UTC (in 1m 30s)" in d.summary
    assert "Deployment: dp_1a at http://127.0.0.1:9080." in d.details


def test_a_completed_command_is_not_outstanding() -> None:
    journal = [SLEEP, {"index": 2, "type": "sleep_completion_notification", "notification": "c:1"}]
    assert outstanding(inv("running", journal=journal), ctx()) == []


def test_suspended_on_a_timer_hides_the_implicit_cancel_signal() -> None:
    d = explain_invocation(
        inv("suspended", journal=[SLEEP], waiting_for={"t": 1, "l": ["c:1", "s:1"]}), ctx()
    )
    assert d.reason == "suspended"
    assert d.summary == (
        "Counter/k1/add is suspended, waiting for a timer due at 22:14:50 UTC (in 1m 30s)."
    )


def test_suspended_on_an_awakeable_prints_its_id_and_how_to_resolve_it() -> None:
    awakeable = AwakeableId(InvocationId.parse(INV), 17).to_str()
    d = explain_invocation(
        inv("suspended", waiting_for={"t": 1, "l": ["s:17", "s:1"]}),
        ctx(ingress_url="http://127.0.0.1:8080"),
    )
    assert f"the awakeable {awakeable}" in d.summary
    assert d.next_steps[0].startswith(
        f"curl -X POST http://127.0.0.1:8080/restate/awakeables/{awakeable}/resolve"
    )


def test_suspended_on_everything_of_several_says_all_of() -> None:
    journal = [
        {"index": 1, "type": "get_promise_command", "completion_id": 1, "promise": "approval"},
        {"index": 2, "type": "run_command", "completion_id": 2, "name": "charge"},
    ]
    d = explain_invocation(
        inv("suspended", journal=journal, waiting_for={"t": 2, "l": ["c:1", "c:2"]}), ctx()
    )
    assert "all of the durable promise 'approval'; the result of ctx.run 'charge'" in d.summary
    assert any("another handler of Counter/k1" in fact for fact in d.details)


def test_a_call_names_its_callee_and_the_callee_is_explained() -> None:
    journal = [
        {
            "index": 1,
            "type": "call_command",
            "completion_id": 2,
            "invocation_id_completion_id": 1,
            "target": "Flaky/x/succeed_after",
        },
        {
            "index": 2,
            "type": "call_invocation_id_completion_notification",
            "notification": "c:1",
            "invocation_id": "inv_callee",
        },
    ]
    doc = inv("suspended", journal=journal, waiting_for={"t": 1, "l": ["c:2"]})
    assert awaited_callee(doc) == "inv_callee"
    callee = Diagnosis("paused", "Flaky/x/succeed_after is paused.", (), ("fix it",))
    d = explain_invocation(doc, ctx(callee=callee))
    assert "the result of a call to Flaky/x/succeed_after (inv_callee)" in d.summary
    assert "The callee: Flaky/x/succeed_after is paused." in d.details
    assert d.next_steps[0].startswith("perdure explain inv_callee")


def test_backing_off_shows_the_last_error_and_the_next_retry() -> None:
    failure = {"code": 500, "message": "ValueError('no')", "related_command": "command 2 step"}
    d = explain_invocation(
        inv("backing-off", retry_count=4, last_failure=failure, next_retry_at=at(2_000)), ctx()
    )
    assert d.reason == "retrying"
    assert "backing off after 4 failed attempt(s): the handler keeps failing" in d.summary
    assert "Last error: [500] ValueError('no') (at command 2 step)" in d.details
    assert "Next retry at 22:13:22 UTC (in 2s)." in d.details
    assert d.next_steps[-1].startswith(f"perdure invocations kill {INV}")


def test_backing_off_because_the_deployment_is_unreachable() -> None:
    failure = {"code": 503, "message": "cannot connect to the deployment at http://127.0.0.1:9080"}
    d = explain_invocation(inv("backing-off", retry_count=9, last_failure=failure), ctx())
    assert d.reason == "deployment-unreachable"
    assert "the server cannot reach http://127.0.0.1:9080" in d.summary


def test_backing_off_because_the_deployment_was_removed() -> None:
    failure = {"code": 503, "message": "deployment dp_1a is gone"}
    d = explain_invocation(
        inv("backing-off", retry_count=2, last_failure=failure), Context(now_ms=NOW, deployments={})
    )
    assert d.reason == "deployment-removed"
    assert "its deployment dp_1a was removed" in d.summary
    assert d.next_steps[0].startswith("perdure deployments register")


def test_journal_mismatch_is_called_non_determinism() -> None:
    failure = {"code": 570, "message": "expected SetState, got GetState"}
    d = explain_invocation(inv("backing-off", retry_count=1, last_failure=failure), ctx())
    assert d.reason == "journal-mismatch"
    assert "non-determinism" in d.summary


def test_paused_invocation_says_how_to_resume_and_that_it_holds_the_key() -> None:
    failure = {"code": 500, "message": "boom"}
    d = explain_invocation(
        inv("paused", attempts=70, last_failure=failure, key_lock={"holder": INV, "queued": 2}),
        ctx(),
    )
    assert d.reason == "paused"
    assert "paused after 70 attempt(s)" in d.summary
    assert "It still holds Counter/k1" in text(d)
    assert any(s.startswith(f"perdure invocations resume {INV}") for s in d.next_steps)
    assert any(s.startswith(f"perdure invocations kill {INV}") for s in d.next_steps)


def test_completed_invocations_tell_success_kill_and_cancel_apart() -> None:
    ok = inv("completed", outcome={"status": "success", "size": 2}, completed_at=at(-1_000))
    killed = inv(
        "completed", outcome={"status": "failure", "code": 409, "message": "killed by an operator"}
    )
    cancelled = inv("completed", outcome={"status": "failure", "code": 409, "message": "cancelled"})
    failed = inv("completed", outcome={"status": "failure", "code": 418, "message": "teapot"})
    assert explain_invocation(ok, ctx()).reason == "succeeded"
    assert explain_invocation(killed, ctx()).reason == "killed"
    assert explain_invocation(cancelled, ctx()).reason == "cancelled"
    for message in ("killed", "canceled"):
        outcome = {"status": "failure", "code": 409, "message": message}
        reason = explain_invocation(inv("completed", outcome=outcome), ctx()).reason
        assert reason == {"killed": "killed", "canceled": "cancelled"}[message]
    d = explain_invocation(failed, ctx())
    assert d.reason == "failed" and "[418] teapot" in d.summary
    assert d.next_steps[0].startswith(f"perdure invocations restart {INV}")
    workflow_run = failed | {"target_service_ty": "Workflow"}
    assert not any("restart" in s for s in explain_invocation(workflow_run, ctx()).next_steps)


def test_a_caller_failing_with_its_killed_callees_error_was_not_killed_itself() -> None:
    journal = [
        {"index": 0, "type": "input_command"},
        {
            "index": 1,
            "type": "call_command",
            "target": "Waiter/always_fails",
            "completion_id": 2,
            "invocation_id_completion_id": 1,
        },
        {
            "index": 2,
            "type": "call_invocation_id_completion_notification",
            "notification": "c:1",
            "invocation_id": "inv_callee",
        },
        {"index": 3, "type": "call_completion_notification", "notification": "c:2", "failed": True},
        {"index": 4, "type": "output_command"},
    ]
    outcome = {"status": "failure", "code": 409, "message": "killed"}
    d = explain_invocation(inv("completed", outcome=outcome, journal=journal), ctx())
    assert d.reason == "failed"
    assert d.details == ("The failure came from its call to Waiter/always_fails (inv_callee).",)


def test_an_unknown_invocation_was_never_accepted_or_was_purged() -> None:
    d = not_found("inv_nope")
    assert d.reason == "not-found"
    assert "never accepted" in text(d) and "purged" in text(d)


def test_an_unregistered_service_lists_what_is_registered() -> None:
    d = explain_target("Nope", None, None, ["Counter", "Greeter"], [], NOW)
    assert d.reason == "service-not-registered"
    assert "Registered services: Counter, Greeter." in d.details
    assert d.next_steps[0].startswith("perdure deployments register")


def test_an_idle_key_has_nothing_in_flight() -> None:
    info = {"name": "Counter", "ty": "VirtualObject", "deployment_id": "dp_1a", "revision": 2}
    d = explain_target("Counter", "k1", info, [], [], NOW)
    assert d.reason == "idle"
    assert d.summary == "Nothing is in flight on Counter/k1."
    assert "served by deployment dp_1a (revision 2)" in d.details[0]


def test_a_busy_key_names_its_holder_and_its_queue() -> None:
    info = {"name": "Counter", "ty": "VirtualObject", "deployment_id": "dp_1a", "revision": 1}
    holder = inv("suspended") | {"id": "inv_h", "created_at": at(-5_000)}
    queued = [inv("pending") | {"id": f"inv_q{i}"} for i in range(2)]
    active_newest_first = [*reversed(queued), holder]
    d = explain_target(
        "Counter", "k1", info, [], active_newest_first, NOW, {"holder": "inv_h", "queued": 2}
    )
    assert d.reason == "in-flight"
    assert d.summary == "3 invocation(s) in flight on Counter/k1: 1 suspended, 2 pending."
    assert "inv_h holds the key: add, suspended, created 5s ago." in d.details
    assert "2 queued in the inbox, oldest first: inv_q0, inv_q1" in d.details
    assert d.next_steps[0].startswith("perdure explain inv_h")


def test_a_key_on_a_plain_service_is_pointed_out() -> None:
    info = {"name": "Greeter", "ty": "Service", "deployment_id": "dp_1a", "revision": 1}
    d = explain_target("Greeter", "x", info, [], [], NOW)
    assert "keys mean nothing to it" in text(d)
