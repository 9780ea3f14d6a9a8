"""Fixtures that start a real `perdure server` and real deployments (official SDK)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.helpers.processes import PerdureServer, ServiceProcess

# Fast retries so failure scenarios finish in seconds (the defaults are Restate's: 500 ms x2).
FAST_RETRIES = {"PERDURE_RETRY_INITIAL_INTERVAL": "50ms", "PERDURE_RETRY_MAX_INTERVAL": "200ms"}


@pytest.fixture
def ledger(tmp_path: Path) -> Path:
    path = tmp_path / "ledger.txt"
    path.touch()
    return path


@pytest.fixture
def official_service(tmp_path: Path, ledger: Path) -> Iterator[ServiceProcess]:
    svc = ServiceProcess(
        "tests.services.official_app", tmp_path / "service.log", env={"LEDGER": str(ledger)}
    ).start()
    yield svc
    svc.stop()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[PerdureServer]:
    srv = PerdureServer(tmp_path / "data", tmp_path / "server.log", env=FAST_RETRIES).start()
    yield srv
    srv.stop()


@pytest.fixture
def registered(server: PerdureServer, official_service: ServiceProcess) -> PerdureServer:
    server.register(official_service.uri)
    return server
