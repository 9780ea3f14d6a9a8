"""Fault injection: a deployment that stalls, answers garbage, closes mid-message, returns
500/503, or never answers discovery (`faulty_deployment.py`).

Each fault must give a clear logged error and a retry, then the invocation completes with its
right answer once the deployment behaves: never a hang, a lost invocation or a crashed server.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tests.helpers.processes import PerdureServer, ServiceProcess, wait_until

pytestmark = [pytest.mark.crash, pytest.mark.interop]

ENV = {
    "PERDURE_RETRY_INITIAL_INTERVAL": "50ms",
    "PERDURE_RETRY_MAX_INTERVAL": "200ms",
    "PERDURE_INACTIVITY_TIMEOUT": "1s",
    "PERDURE_ABORT_TIMEOUT": "1s",
}
FAULTS_PER_CASE = 2


class Setup:
    def __init__(self, server: PerdureServer, deployment: ServiceProcess) -> None:
        self.server = server
        self.deployment = deployment

    def inject(self, mode: str, count: int) -> None:
        r = httpx.post(f"{self.deployment.uri}/fault", json={"mode": mode, "count": count})
        assert r.status_code == 200

    def injected(self) -> dict[str, int]:
        return dict(httpx.get(f"{self.deployment.uri}/fault").json())


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    tmp = tmp_path_factory.mktemp("faults")
    deployment = ServiceProcess(
        "tests.crash.faulty_deployment", tmp / "service.log", env={"LEDGER": str(tmp / "ledger")}
    ).start()
    server = PerdureServer(tmp / "data", tmp / "server.log", env=ENV).start()
    server.register(deployment.uri)
    yield Setup(server, deployment)
    server.stop()
    deployment.stop()


# mode -> words the logged attempt failure must contain (what a person reading the log needs)
FAULTS = {
    "stall": r"sent nothing for",
    "silent": r"sent no response headers for",
    "garbage": r"frame|message|decode|protocol",
    "truncate": r"frame|ended|incomplete|closed|end",
    "http500": r"500",
    "http503": r"503",
}


@pytest.mark.parametrize("mode", list(FAULTS))
def test_a_faulty_attempt_is_logged_and_retried_until_it_completes(setup: Setup, mode: str) -> None:
    before = setup.injected().get(mode, 0)
    log_before = len(setup.server.log_path.read_text(errors="replace"))
    setup.inject(mode, FAULTS_PER_CASE)
    r = httpx.post(
        f"{setup.server.ingress}/Chain/run",
        json={"id": f"fault-{mode}", "steps": 2, "pauseMillis": 10},
        timeout=60,
    )
    assert r.status_code == 200, r.text
    assert len(r.json()) == 2
    assert setup.injected().get(mode, 0) - before == FAULTS_PER_CASE
    new_log = setup.server.log_path.read_text(errors="replace")[log_before:]
    failures = [line for line in new_log.splitlines() if "failed" in line]
    assert len(failures) >= FAULTS_PER_CASE, new_log
    assert all(re.search(FAULTS[mode], line, re.I) for line in failures), failures
    assert "Traceback" not in new_log, new_log


def test_a_deployment_that_never_answers_discovery_is_refused_in_time(setup: Setup) -> None:
    setup.inject("discovery-stall", 1)
    r = httpx.post(
        f"{setup.server.admin}/deployments",
        json={"uri": setup.deployment.uri, "force": True},
        timeout=60,
    )
    assert 400 <= r.status_code < 600 and r.status_code != 500, r.text
    assert "no answer" in r.text, r.text
    # The server is alive and the deployment, behaving again, still serves invocations.
    wait_until(lambda: httpx.get(f"{setup.server.admin}/health").status_code == 200)
    r = httpx.post(
        f"{setup.server.ingress}/Chain/run",
        json={"id": "after-discovery", "steps": 1, "pauseMillis": 1},
        timeout=60,
    )
    assert r.status_code == 200, r.text


def test_faults_do_not_disturb_other_invocations(setup: Setup, tmp_path: Path) -> None:
    """Many invocations at once while a run of faults hits some of their attempts."""
    setup.inject("http503", 10)
    ids = []
    for n in range(20):
        r = httpx.post(
            f"{setup.server.ingress}/Tally/shared/add/send",
            json={"id": f"mix{n}", "delta": 1, "holdMillis": 1},
            timeout=30,
        )
        assert r.status_code == 202, r.text
        ids.append(r.json()["invocationId"])
    for invocation_id in ids:
        r = httpx.get(
            f"{setup.server.ingress}/restate/invocation/{invocation_id}/attach", timeout=60
        )
        assert r.status_code == 200, r.text
    total = httpx.post(f"{setup.server.ingress}/Tally/shared/get", timeout=30).json()
    assert total == 20
