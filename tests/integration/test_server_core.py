"""`perdure server` with services written with the official `restate-sdk`, end to end.

Ports the scenarios of sdk-test-suite's State, Sleep, SleepWithFailures, RunFlush, RunRetry,
UserErrors, NonDeterminismErrors, KillRuntime and StopRuntime as our own tests.
"""

from __future__ import annotations

import concurrent.futures
import time
import uuid
from collections import Counter as Tally
from pathlib import Path

import httpx
import pytest
from tests.helpers.processes import PerdureServer, ServiceProcess, wait_until

pytestmark = pytest.mark.interop


def call(srv: PerdureServer, path: str, body: object = None, **kw: object) -> httpx.Response:
    return httpx.post(f"{srv.ingress}/{path}", json=body, timeout=60, **kw)  # type: ignore[arg-type]


def test_greeter_answers(registered: PerdureServer) -> None:
    r = call(registered, "Greeter/greet", "Ada")
    assert r.status_code == 200, r.text
    assert r.json() == "Hello Ada!"


def test_counter_state_serialises_and_survives_restart(registered: PerdureServer) -> None:
    key = f"c-{uuid.uuid4().hex[:8]}"
    assert call(registered, f"Counter/{key}/add", 1).json() == 1
    assert call(registered, f"Counter/{key}/add", 2).json() == 3
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        results = list(
            pool.map(lambda _: call(registered, f"Counter/{key}/add", 1).json(), range(20))
        )
    assert sorted(results) == list(range(4, 24))  # one at a time: every intermediate value once
    assert call(registered, f"Counter/{key}/get").json() == 23
    registered.restart()
    assert call(registered, f"Counter/{key}/get").json() == 23


def test_ten_step_run_chain_journals_each_step_once(
    registered: PerdureServer, ledger: Path
) -> None:
    r = call(registered, "Chain/steps", {"n": 10, "tag": "ten"})
    assert r.status_code == 200, r.text
    assert r.json() == sum(range(10))
    assert ledger.read_text().split() == [f"ten:{i}" for i in range(10)]


def test_sleep_waits_at_least_its_duration(registered: PerdureServer) -> None:
    start = time.monotonic()
    r = call(registered, "Sleeper/nap", 1000)
    assert r.status_code == 200 and r.json() == 1000
    assert time.monotonic() - start >= 1.0


def test_sleep_across_a_server_restart(registered: PerdureServer) -> None:
    r = call(registered, "Sleeper/nap/send", 2000)
    assert r.status_code == 202, r.text
    inv = r.json()["invocationId"]
    sent_at = time.monotonic()
    registered.restart()
    out = httpx.get(f"{registered.ingress}/restate/invocation/{inv}/attach", timeout=30)
    assert out.status_code == 200, out.text
    assert out.json() == 2000
    assert time.monotonic() - sent_at >= 2.0


def test_retryable_errors_are_retried_until_success(registered: PerdureServer) -> None:
    key = uuid.uuid4().hex[:8]
    r = call(registered, f"Flaky/{key}/succeed_after", 3)
    assert r.status_code == 200, r.text
    assert r.json() == 4  # three failed attempts, the fourth answers


def test_terminal_error_reaches_the_caller_without_retry(registered: PerdureServer) -> None:
    key = uuid.uuid4().hex[:8]
    r = call(registered, f"Flaky/{key}/terminal", "no coffee")
    assert r.status_code == 418, r.text
    assert "no coffee" in r.json()["message"]


def test_journal_mismatch_is_reported_and_not_continued(registered: PerdureServer) -> None:
    key = uuid.uuid4().hex[:8]
    r = call(registered, f"Flaky/{key}/nondeterministic/send")
    inv = r.json()["invocationId"]

    def failed_with_570() -> bool:
        info = httpx.get(f"{registered.admin}/invocations/{inv}", timeout=5).json()
        return "570" in str(info.get("last_failure") or info)

    wait_until(failed_with_570, timeout=20, what="a 570 journal mismatch on the invocation")
    info = httpx.get(f"{registered.admin}/invocations/{inv}", timeout=5).json()
    assert info["status"] in ("backing-off", "paused", "running")


def test_kill_9_mid_chain_loses_nothing_and_reruns_at_most_the_step_in_flight(
    registered: PerdureServer, ledger: Path
) -> None:
    tag = uuid.uuid4().hex[:6]
    r = call(registered, "Chain/steps/send", {"n": 8, "tag": tag, "pause_ms": 150})
    inv = r.json()["invocationId"]
    wait_until(lambda: ledger.read_text().count(tag) >= 3, what="three steps done")
    registered.kill9()
    registered.start()
    out = httpx.get(f"{registered.ingress}/restate/invocation/{inv}/attach", timeout=60)
    assert out.status_code == 200, out.text
    assert out.json() == sum(range(8))
    steps = Tally(line for line in ledger.read_text().split() if line.startswith(tag))
    assert set(steps) == {f"{tag}:{i}" for i in range(8)}
    assert sum(n - 1 for n in steps.values()) <= 1, steps


def test_request_response_deployment_works_like_bidi(
    server: PerdureServer, tmp_path: Path, ledger: Path
) -> None:
    svc = ServiceProcess(
        "tests.services.official_app",
        tmp_path / "rr.log",
        args=["--mode", "request_response"],
        env={"LEDGER": str(ledger)},
    ).start()
    try:
        server.register(svc.uri, use_http_11=True)
        r = call(server, "Chain/steps", {"n": 3, "tag": "rr", "pause_ms": 10})
        assert r.status_code == 200, r.text
        assert r.json() == 3
        key = uuid.uuid4().hex[:8]
        assert call(server, f"Counter/{key}/slow_add", 5).json() == 5
    finally:
        svc.stop()


def test_bad_requests_get_clear_answers_and_store_nothing(registered: PerdureServer) -> None:
    r = call(registered, "Nope/greet", "x")
    assert r.status_code == 404
    assert "Greeter" in r.text  # the answer lists what is registered
    r = call(registered, "Greeter/nope", "x")
    assert r.status_code == 404
    r = httpx.post(f"{registered.ingress}/Counter/add", content=b"1", timeout=10)
    assert r.status_code in (400, 404)
    listed = httpx.get(f"{registered.admin}/invocations", timeout=5)
    assert listed.status_code == 200
