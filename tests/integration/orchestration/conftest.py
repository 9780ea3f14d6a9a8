"""Fixtures: one `perdure server` per test module with the orchestration services registered.

The services (tests/services/orchestration_app.py) use the official `restate-sdk`. Starting a
server and a deployment per module keeps the suite quick; tests use fresh keys so they do not
see each other's objects.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.helpers.processes import PerdureServer, ServiceProcess

FAST_RETRIES = {"PERDURE_RETRY_INITIAL_INTERVAL": "50ms", "PERDURE_RETRY_MAX_INTERVAL": "200ms"}


@dataclass
class Orchestra:
    """A running server with the orchestration services, and the ledger they write."""

    server: PerdureServer
    service: ServiceProcess
    ledger: Path

    def post(self, path: str, body: Any = None, **kw: Any) -> httpx.Response:
        return httpx.post(f"{self.server.ingress}/{path}", json=body, timeout=60, **kw)

    def get(self, path: str, **kw: Any) -> httpx.Response:
        return httpx.get(f"{self.server.ingress}/{path}", timeout=60, **kw)

    def admin(self, method: str, path: str, **kw: Any) -> httpx.Response:
        return httpx.request(method, f"{self.server.admin}/{path}", timeout=30, **kw)

    def status(self, invocation_id: str) -> str:
        r = self.admin("GET", f"invocations/{invocation_id}")
        return str(r.json()["status"]) if r.status_code == 200 else f"http {r.status_code}"

    def lines(self, prefix: str = "") -> list[str]:
        return [ln for ln in self.ledger.read_text().split() if ln.startswith(prefix)]


def start_orchestra(tmp: Path, mode: str = "bidi") -> Orchestra:
    """`mode` "request_response" serves the SDK over HTTP/1.1: it suspends at every await
    that is not already resolved, so every wait goes through suspension and resumption."""
    ledger = tmp / "ledger.txt"
    ledger.touch()
    service = ServiceProcess(
        "tests.services.orchestration_app",
        tmp / "service.log",
        args=["--mode", mode],
        env={"LEDGER": str(ledger)},
    ).start()
    server = PerdureServer(tmp / "data", tmp / "server.log", env=FAST_RETRIES).start()
    server.register(service.uri, use_http_11=mode == "request_response")
    return Orchestra(server, service, ledger)


@pytest.fixture(scope="module")
def orch(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Orchestra]:
    found = start_orchestra(tmp_path_factory.mktemp("orch"))
    yield found
    found.server.stop()
    found.service.stop()


@pytest.fixture(scope="module", params=["bidi", "request_response"])
def orch_both(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Orchestra]:
    """The orchestra over HTTP/2 (bidirectional) and over HTTP/1.1 (always suspending)."""
    found = start_orchestra(tmp_path_factory.mktemp(f"orch-{request.param}"), request.param)
    yield found
    found.server.stop()
    found.service.stop()


@pytest.fixture
def fresh(tmp_path: Path) -> Iterator[Orchestra]:
    """A server of its own, for tests that kill or restart it."""
    found = start_orchestra(tmp_path)
    yield found
    found.server.stop()
    found.service.stop()
