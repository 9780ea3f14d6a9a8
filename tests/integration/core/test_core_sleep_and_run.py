"""sdk-test-suite Sleep, SleepWithFailures, RunFlush and RunRetry on `perdure server`.

Timers fire no earlier than asked (also while the deployment is killed or stopped), a run waits
for the server's acknowledgement before the handler goes on, and a run's own retry policy is
honoured: retried until it succeeds, or turned into a terminal error when it runs out.
"""

from __future__ import annotations

import concurrent.futures
import random
import threading
import time

import pytest
from tests.integration.core.conftest import SERVER_KINDS, Core, idempotent, new_key

pytestmark = pytest.mark.interop


def test_sleep_lasts_at_least_its_duration(each: Core) -> None:
    start = time.monotonic()
    assert each.call("TestUtilsService/sleepConcurrently", [10]) is None
    assert time.monotonic() - start >= 0.010


def test_many_concurrent_sleeps_all_fire(each: Core) -> None:
    # sdk-test-suite's manySleeps: 50 invocations at once, each awaiting 20 timers of 10-50 ms.
    def sleeper(_: int) -> str:
        timers = [random.randint(10, 50) for _ in range(20)]
        r = each.post("TestUtilsService/sleepConcurrently", timers, headers=idempotent())
        assert r.status_code == 200, r.text
        return str(r.headers["x-restate-id"])

    with concurrent.futures.ThreadPoolExecutor(50) as pool:
        ids = list(pool.map(sleeper, range(50)))
    assert len(set(ids)) == 50
    for invocation_id in ids[:5]:
        detail = each.admin("GET", f"invocations/{invocation_id}").json()
        assert detail["status"] == "completed"
        fired = [e for e in detail["journal"] if e["type"] == "sleep_completion_notification"]
        assert len(fired) == 20, detail["journal"]


@pytest.mark.parametrize("how", ["kill", "terminate"])
def test_sleep_survives_the_deployment_going_down(fresh: Core, how: str) -> None:
    sleep_ms = 2000
    outcome: dict[str, object] = {}

    def caller() -> None:
        r = fresh.post("TestUtilsService/sleepConcurrently", [sleep_ms])
        outcome["status"] = r.status_code
        outcome["elapsed"] = time.monotonic() - start

    start = time.monotonic()
    thread = threading.Thread(target=caller)
    thread.start()
    time.sleep(random.uniform(sleep_ms / 4, sleep_ms / 2) / 1000)
    if how == "kill":
        fresh.service.kill9()
    else:
        fresh.service.stop()
    fresh.service.start()  # same port: the registered deployment is back
    thread.join(timeout=60)
    assert outcome.get("status") == 200, outcome
    assert float(outcome["elapsed"]) >= sleep_ms / 1000  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "kind", ["always-suspending", "request-response", "request-response-suspending"]
)
def test_run_waits_for_the_ack_so_a_suspending_replay_executes_nothing(
    request: pytest.FixtureRequest, kind: str
) -> None:
    # Every attempt suspends while waiting for its run's ack; the last attempt replays all three
    # runs from the journal, so its local count is 0.
    core: Core = request.getfixturevalue(SERVER_KINDS[kind])
    assert core.call("TestUtilsService/countExecutedSideEffects", 3) == 0


def test_run_counts_its_executions_when_the_stream_stays_open(core: Core) -> None:
    assert core.call("TestUtilsService/countExecutedSideEffects", 3) == 3


def test_run_is_retried_until_it_succeeds(each: Core) -> None:
    key = new_key()
    assert each.call(f"Failing/{key}/sideEffectSucceedsAfterGivenAttempts", 3) == 3


def test_run_with_one_attempt_executes_once(each: Core) -> None:
    key = new_key()
    assert each.call(f"Failing/{key}/sideEffectFailsAfterGivenAttempts", 1) == 1
    assert each.call(f"Failing/{key}/sideEffectRuns") == 1


def test_run_gives_up_after_its_attempts_with_a_terminal_error(each: Core) -> None:
    key = new_key()
    assert each.call(f"Failing/{key}/sideEffectFailsAfterGivenAttempts", 3) == 3
