"""Fixtures: real `perdure server` processes with the core services (tests/services/core_app.py).

A server and a deployment are started once per configuration for the whole package, to keep
the suite quick; tests use fresh keys so they never see each other's objects. Tests that kill
or restart a process get a pair of their own (`fresh`).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.helpers.processes import PerdureServer, ServiceProcess

# Fast retries so failure scenarios finish in seconds (the defaults are Restate's: 500 ms x2).
FAST_RETRIES = {"PERDURE_RETRY_INITIAL_INTERVAL": "50ms", "PERDURE_RETRY_MAX_INTERVAL": "200ms"}
# Restate's "always suspending" test mode: the server closes its side of every stream at once,
# so the SDK suspends at the first await whose result is not in the journal yet.
ALWAYS_SUSPENDING = {"PERDURE_INACTIVITY_TIMEOUT": "0s"}


def new_key() -> str:
    return uuid.uuid4().hex[:12]


def idempotent() -> dict[str, str]:
    """Headers of an idempotent call, as every sdk-test-suite request uses."""
    return {"idempotency-key": str(uuid.uuid4())}


@dataclass
class Core:
    """A running server with the core services registered."""

    server: PerdureServer
    service: ServiceProcess
    tmp: Path

    def post(self, path: str, body: Any = None, **kw: Any) -> httpx.Response:
        return httpx.post(f"{self.server.ingress}/{path}", json=body, timeout=60, **kw)

    def call(self, path: str, body: Any = None) -> Any:
        """Calls `path` with an idempotency key and answers the JSON result (must be 200)."""
        r = self.post(path, body, headers=idempotent())
        assert r.status_code == 200, f"{path}: HTTP {r.status_code} {r.text}"
        return r.json() if r.content else None

    def admin(self, method: str, path: str, **kw: Any) -> httpx.Response:
        return httpx.request(method, f"{self.server.admin}/{path}", timeout=30, **kw)

    def invocations(self) -> list[dict[str, Any]]:
        r = self.admin("GET", "invocations", params={"limit": 1000})  # newest first
        assert r.status_code == 200, r.text
        body = r.json()
        return list(body["invocations"] if isinstance(body, dict) else body)

    def stop(self) -> None:
        self.server.stop()
        self.service.stop()


def start_core(
    tmp: Path, env: dict[str, str] | None = None, *, request_response: bool = False
) -> Core:
    """A server and the core services; `request_response` serves them over HTTP/1.1 in
    REQUEST_RESPONSE mode (every attempt ends at the first await that needs the server)."""
    args = ["--mode", "request_response"] if request_response else []
    service = ServiceProcess("tests.services.core_app", tmp / "service.log", args=args).start()
    server = PerdureServer(
        tmp / "data", tmp / "server.log", env={**FAST_RETRIES, **(env or {})}
    ).start()
    if request_response:
        server.register(service.uri, use_http_11=True)
    else:
        server.register(service.uri)
    return Core(server, service, tmp)


@pytest.fixture(scope="package")
def core(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Core]:
    found = start_core(tmp_path_factory.mktemp("core"))
    yield found
    found.stop()


@pytest.fixture(scope="package")
def suspending(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Core]:
    """A server in always-suspending mode (inactivity timeout 0)."""
    found = start_core(tmp_path_factory.mktemp("suspending"), ALWAYS_SUSPENDING)
    yield found
    found.stop()


@pytest.fixture(scope="package")
def request_response(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Core]:
    """A server whose deployment speaks HTTP/1.1 in REQUEST_RESPONSE mode."""
    found = start_core(tmp_path_factory.mktemp("request-response"), request_response=True)
    yield found
    found.stop()


@pytest.fixture(scope="package")
def request_response_suspending(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Core]:
    """HTTP/1.1 request/response with an inactivity timeout of 0: nothing to close, so the
    timeout must not abort the attempt (the SDK is still working on its answer)."""
    found = start_core(
        tmp_path_factory.mktemp("request-response-suspending"),
        ALWAYS_SUSPENDING,
        request_response=True,
    )
    yield found
    found.stop()


# The kinds of server a scenario runs on, and the fixture that starts each.
SERVER_KINDS = {
    "default": "core",
    "always-suspending": "suspending",
    "request-response": "request_response",
    "request-response-suspending": "request_response_suspending",
}
# `each` runs a test on these three; the fourth only where the combination matters.
EACH = ["default", "always-suspending", "request-response"]


@pytest.fixture(params=EACH, scope="package")
def each(request: pytest.FixtureRequest) -> Core:
    """Runs a test on each kind of server: sdk-test-suite's always-suspending scenarios, plus
    an HTTP/1.1 request/response deployment (which suspends at every await, like the second)."""
    return request.getfixturevalue(SERVER_KINDS[request.param])  # type: ignore[no-any-return]


@pytest.fixture
def fresh(tmp_path: Path) -> Iterator[Core]:
    """A server and deployment of its own, for tests that kill or restart one of them."""
    found = start_core(tmp_path)
    yield found
    found.stop()
