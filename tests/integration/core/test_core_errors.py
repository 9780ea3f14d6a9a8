"""sdk-test-suite UserErrors and NonDeterminismErrors on `perdure server`.

A terminal error reaches the caller with its message and metadata, also through a call and
from a run, and is not retried; state written before it stays. Retryable errors are retried
until the handler succeeds. A handler whose replay takes another branch is stopped (journal
mismatch, 570) before it does anything the first attempt did not.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tests.helpers.processes import wait_until
from tests.integration.core.conftest import ALWAYS_SUSPENDING, Core, idempotent, new_key, start_core

pytestmark = pytest.mark.interop

METADATA = {"key1": "value1", "key2": "value2"}


def expect_error(core: Core, path: str, body: object) -> httpx.Response:
    r = core.post(path, body, headers=idempotent())
    assert r.status_code >= 400, f"{path}: expected an error, got {r.status_code} {r.text}"
    return r


@pytest.mark.parametrize(
    "handler", ["terminallyFailingCall", "callTerminallyFailingCall", "terminallyFailingSideEffect"]
)
def test_terminal_error_reaches_the_caller(each: Core, handler: str) -> None:
    message = f"{handler} failed on purpose"
    for _ in range(3):  # the deployment stays healthy after a terminal failure
        r = expect_error(each, f"Failing/{new_key()}/{handler}", {"errorMessage": message})
        assert message in r.json()["message"]


@pytest.mark.parametrize(
    "handler", ["terminallyFailingCall", "callTerminallyFailingCall", "terminallyFailingSideEffect"]
)
def test_terminal_error_keeps_its_metadata(core: Core, handler: str) -> None:
    message = f"{handler} failed with metadata"
    for _ in range(3):
        r = expect_error(
            core, f"Failing/{new_key()}/{handler}", {"errorMessage": message, "metadata": METADATA}
        )
        body = r.json()
        assert message in body["message"]
        assert body.get("metadata", {}).items() >= METADATA.items(), body


def test_terminal_error_is_not_retried(core: Core) -> None:
    key = new_key()
    r = expect_error(core, f"Failing/{key}/terminallyFailingSideEffect", {"errorMessage": "once"})
    assert r.status_code == 500
    assert core.call(f"Failing/{key}/sideEffectRuns") == 0  # the run counter is not bumped
    [inv] = [i for i in core.invocations() if i["target"].startswith(f"Failing/{key}/terminally")]
    assert inv["status"] == "completed"
    detail = core.admin("GET", f"invocations/{inv['id']}").json()
    assert (detail["attempts"], detail["retry_count"]) == (1, 0), detail


def test_state_set_before_a_terminal_error_is_kept(each: Core) -> None:
    key = f"my-failure-counter-{new_key()}"
    r = expect_error(each, f"Counter/{key}/addThenFail", 1)
    assert key in r.json()["message"]
    assert each.call(f"Counter/{key}/get") == 1


def test_retryable_errors_are_retried_until_success(each: Core) -> None:
    assert each.call(f"Failing/{new_key()}/failingCallWithEventualSuccess") == 4


# --- NonDeterminismErrors: always suspending, one attempt, then kill ----------------------------


@pytest.fixture(scope="module")
def strict(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Core]:
    """sdk-test-suite's NonDeterminismErrors server: suspend at once, one attempt, then kill."""
    env = {
        **ALWAYS_SUSPENDING,
        "PERDURE_RETRY_MAX_ATTEMPTS": "1",
        "PERDURE_RETRY_ON_MAX_ATTEMPTS": "kill",
        "PERDURE_RETRY_INITIAL_INTERVAL": "1ms",
    }
    found = start_core(Path(tmp_path_factory.mktemp("strict")), env)
    yield found
    found.stop()


@pytest.mark.parametrize(
    "handler",
    [
        "eitherSleepOrCall",
        "callDifferentMethod",
        "backgroundInvokeWithDifferentTargets",
        "setDifferentKey",
    ],
)
def test_a_replay_that_diverges_fails_and_does_nothing_more(strict: Core, handler: str) -> None:
    key = f"{handler}-{new_key()}"
    assert strict.call(f"Counter/{key}/add", 1) == {"oldValue": 0, "newValue": 1}

    r = expect_error(strict, f"NonDeterministic/{key}/{handler}", None)
    # Killed after its one attempt with the journal mismatch as the failure (HTTP status = code).
    assert r.status_code == 570, r.text
    assert r.json()["code"] == 570 and "mismatch" in r.json()["message"], r.text

    [inv] = [i for i in strict.invocations() if i["target"] == f"NonDeterministic/{key}/{handler}"]
    assert inv["status"] == "completed"
    # The increment after the divergence point never ran: the counter stays at 1.
    wait_until(lambda: strict.call(f"Counter/{key}/get") == 1, what="counter still 1")
    assert strict.call(f"Counter/{key}/get") == 1


# --- retries run out: pause, then an operator resumes --------------------------------------------


@pytest.fixture(scope="module")
def pausing(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Core]:
    """A server whose invocations pause after two failed attempts in a row."""
    env = {"PERDURE_RETRY_MAX_ATTEMPTS": "2", "PERDURE_RETRY_ON_MAX_ATTEMPTS": "pause"}
    found = start_core(Path(tmp_path_factory.mktemp("pausing")), env)
    yield found
    found.stop()


def test_exhausted_retries_pause_until_an_operator_resumes(pausing: Core) -> None:
    key = new_key()
    sent = pausing.post(f"Failing/{key}/failingCallWithEventualSuccess/send")
    assert sent.status_code == 202, sent.text
    inv = sent.json()["invocationId"]

    def detail() -> dict[str, object]:
        return dict(pausing.admin("GET", f"invocations/{inv}").json())

    resumes = 0
    while detail()["status"] != "completed":
        wait_until(lambda: detail()["status"] in ("paused", "completed"), what="paused")
        if detail()["status"] == "paused":
            paused = detail()
            assert "fails on purpose" in str(paused["last_failure"])
            r = pausing.admin("PATCH", f"invocations/{inv}/resume")
            assert r.status_code == 200, r.text
            resumes += 1
            assert resumes <= 3, "the handler succeeds on its fourth attempt"
    assert resumes >= 1
    out = httpx.get(f"{pausing.server.ingress}/restate/invocation/{inv}/attach", timeout=30)
    assert out.status_code == 200, out.text
    assert out.json() == 4
