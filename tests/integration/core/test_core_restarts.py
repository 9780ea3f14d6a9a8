"""sdk-test-suite KillRuntime and StopRuntime: the server goes down (kill -9, or a graceful
SIGTERM), comes back on the same data directory, and loses nothing.

State written before the stop is there after it; an invocation in flight (holding its key,
sleeping) and one queued behind it in the key's inbox both complete, exactly once, and a
caller that repeats its request with the same idempotency key gets the original answer.
"""

from __future__ import annotations

import concurrent.futures
import subprocess
import sys
import uuid

import httpx
import pytest
from tests.helpers.processes import wait_until
from tests.integration.core.conftest import Core, new_key

pytestmark = [pytest.mark.interop, pytest.mark.crash]

# How long the slow add holds its key: long enough to see it held and stop the server even on
# a loaded machine (the test waits for that state; it never measures time).
SLOW_ADD_MS = 3000


def stop(core: Core, how: str) -> None:
    if how == "kill -9":
        core.server.kill9()
    else:
        core.server.stop()  # SIGTERM: graceful


def call_until_answered(core: Core, path: str, body: object, idempotency_key: str) -> object:
    """Repeats the call with the same idempotency key until the restarted server answers."""

    def answered() -> object:
        r = core.post(path, body, headers={"idempotency-key": idempotency_key})
        return r.json() if r.status_code == 200 else None

    return wait_until(answered, timeout=30, interval=0.2, what=f"an answer from {path}")


@pytest.mark.parametrize("how", ["kill -9", "SIGTERM"])
def test_state_survives_the_server_going_down(fresh: Core, how: str) -> None:
    key = "my-key"
    assert fresh.call(f"Counter/{key}/add", 1) == {"oldValue": 0, "newValue": 1}
    stop(fresh, how)
    fresh.server.start()
    answer = call_until_answered(fresh, f"Counter/{key}/add", 2, str(uuid.uuid4()))
    assert answer == {"oldValue": 1, "newValue": 3}


@pytest.mark.parametrize("how", ["kill -9", "SIGTERM"])
def test_invocations_in_flight_and_queued_complete_after_a_restart(fresh: Core, how: str) -> None:
    key = new_key()
    slow_key, queued_key = str(uuid.uuid4()), str(uuid.uuid4())
    slow = fresh.post(
        f"Counter/{key}/addSlowly/send",
        {"delta": 10, "millis": SLOW_ADD_MS},
        headers={"idempotency-key": slow_key},
    )
    queued = fresh.post(f"Counter/{key}/add/send", 1, headers={"idempotency-key": queued_key})
    assert slow.status_code == queued.status_code == 202, (slow.text, queued.text)
    slow_id, queued_id = slow.json()["invocationId"], queued.json()["invocationId"]

    def statuses() -> tuple[str, str]:
        def status(inv: str) -> str:
            return str(fresh.admin("GET", f"invocations/{inv}").json()["status"])

        return status(slow_id), status(queued_id)

    # The slow add holds the key while it sleeps; the plain add waits in the key's inbox.
    wait_until(
        lambda: statuses()[0] in ("running", "suspended") and statuses()[1] == "pending",
        what="the slow add sleeping with the key held and the add queued behind it",
    )
    stop(fresh, how)
    fresh.server.start()

    slow_answer = call_until_answered(
        fresh, f"Counter/{key}/addSlowly", {"delta": 10, "millis": SLOW_ADD_MS}, slow_key
    )
    assert slow_answer == {"oldValue": 0, "newValue": 10}
    queued_answer = httpx.get(
        f"{fresh.server.ingress}/restate/invocation/{queued_id}/attach", timeout=30
    )
    assert queued_answer.status_code == 200, queued_answer.text
    assert queued_answer.json() == {"oldValue": 10, "newValue": 11}
    assert fresh.call(f"Counter/{key}/get") == 11
    mine = [i for i in fresh.invocations() if i["target_service_key"] == key]
    assert sorted(i["target_handler_name"] for i in mine) == ["add", "addSlowly", "get"]
    assert {i["status"] for i in mine} == {"completed"}


@pytest.mark.parametrize("how", ["kill -9", "SIGTERM"])
def test_a_stop_under_load_applies_every_idempotent_add_exactly_once(fresh: Core, how: str) -> None:
    """Adds race a stop; every caller then repeats its request with its idempotency key.

    Whatever the stop interrupted (accepted or not, running, queued, answered or not), each
    add is applied once: the adds see every old value 0..n-1 once and the count ends at n.
    """
    key, adds = new_key(), 30
    idempotency_keys = [str(uuid.uuid4()) for _ in range(adds)]

    def add(idempotency_key: str) -> object:
        try:
            r = fresh.post(f"Counter/{key}/add", 1, headers={"idempotency-key": idempotency_key})
        except httpx.HTTPError:
            return None  # the server died under this request
        return r.json() if r.status_code == 200 else None

    with concurrent.futures.ThreadPoolExecutor(10) as pool:
        racing = [pool.submit(add, k) for k in idempotency_keys]
        wait_until(lambda: sum(f.done() for f in racing) >= 5, what="a few adds answered")
        stop(fresh, how)
        first = [f.result() for f in racing]
    fresh.server.start()
    answers = [
        first[i] or call_until_answered(fresh, f"Counter/{key}/add", 1, idempotency_keys[i])
        for i in range(adds)
    ]
    again = [call_until_answered(fresh, f"Counter/{key}/add", 1, k) for k in idempotency_keys[:5]]
    assert again == answers[:5]  # a repeated request gets the original answer
    assert sorted(a["oldValue"] for a in answers) == list(range(adds))  # type: ignore[index]
    assert fresh.call(f"Counter/{key}/get") == adds


def test_a_second_server_on_the_same_data_directory_is_refused(fresh: Core) -> None:
    second = subprocess.run(
        [
            sys.executable,
            "-m",
            "perdure.cli.main",
            "server",
            "--data-dir",
            str(fresh.tmp / "data"),
            "--ingress-bind",
            "127.0.0.1:0",
            "--admin-bind",
            "127.0.0.1:0",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert second.returncode == 1, second.stderr
    assert "in use by another Perdure server" in second.stderr
    assert f"pid {fresh.server.proc.pid}" in second.stderr  # type: ignore[union-attr]
    assert fresh.call(f"Counter/{new_key()}/add", 1) == {"oldValue": 0, "newValue": 1}
