"""The example apps, written with the Perdure SDK, on a real `perdure server` process.

The same scenarios as test_sdk_on_restate.py, against Perdure's own server: one server
process and two endpoints (BIDI over HTTP/2, REQUEST_RESPONSE over HTTP/1.1) for the module.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.helpers.processes import PerdureServer
from tests.interop.example_scenarios import (
    BIDI_EXAMPLES,
    REQUEST_RESPONSE_EXAMPLES,
    SCENARIOS,
    RestartableEndpoint,
    Scenario,
    services_of,
    signup_survives_an_endpoint_restart,
)
from tests.interop.feature_scenarios import FEATURE_SCENARIOS
from tests.interop.services import sdk_features_app

from perdure.client import Client
from perdure.testing import ServiceEndpoint

pytestmark = pytest.mark.interop

FAST_RETRIES = {"PERDURE_RETRY_INITIAL_INTERVAL": "50ms", "PERDURE_RETRY_MAX_INTERVAL": "500ms"}

# Scenarios that fail because of a gap in the Perdure server (not in the SDK), by name.
SERVER_GAPS: dict[str, str] = {}


@pytest.fixture(scope="module")
def perdure_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PerdureServer]:
    work = Path(tmp_path_factory.mktemp("perdure"))
    server = PerdureServer(work / "data", work / "server.log", env=FAST_RETRIES).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def bidi(perdure_server: PerdureServer) -> Iterator[RestartableEndpoint]:
    endpoint = RestartableEndpoint(BIDI_EXAMPLES)
    try:
        perdure_server.register(endpoint.uri, force=True)
        yield endpoint
    finally:
        endpoint.close()


@pytest.fixture(scope="module")
def client(perdure_server: PerdureServer, bidi: RestartableEndpoint) -> Iterator[Client]:
    with ServiceEndpoint(
        services_of(REQUEST_RESPONSE_EXAMPLES) + sdk_features_app.services,
        protocol_mode="request_response",
    ) as request_response:
        perdure_server.register(request_response.uri, force=True, use_http_11=True)
        with Client(perdure_server.ingress, admin_url=perdure_server.admin, timeout=60) as client:
            yield client


def _cases(scenarios: dict[str, Scenario]) -> list[object]:
    cases: list[object] = []
    for name, scenario in scenarios.items():
        gap = SERVER_GAPS.get(name)
        marks = [pytest.mark.xfail(strict=True, reason=gap)] if gap else []
        cases.append(pytest.param(scenario, id=name, marks=marks))
    return cases


@pytest.mark.parametrize("scenario", _cases(SCENARIOS))
def test_example_on_perdure(client: Client, scenario: Scenario) -> None:
    scenario(client)


def test_a_workflow_survives_an_endpoint_restart_on_perdure(
    client: Client, bidi: RestartableEndpoint
) -> None:
    signup_survives_an_endpoint_restart(client, bidi.restart)


@pytest.mark.parametrize("scenario", _cases(FEATURE_SCENARIOS))
def test_sdk_feature_on_perdure(client: Client, scenario: Scenario) -> None:
    scenario(client)
