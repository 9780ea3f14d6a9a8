"""The example apps, written with the Perdure SDK, on the real Restate server (restate-server).

One restate-server and two endpoints (BIDI over HTTP/2, REQUEST_RESPONSE over HTTP/1.1) serve
the whole module; the scenarios are shared with test_sdk_on_perdure.py, so both engines must
give the same results.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.helpers.restate import RestateServer
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


@pytest.fixture(scope="module")
def restate(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RestateServer]:
    server = RestateServer(Path(tmp_path_factory.mktemp("restate"))).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def bidi(restate: RestateServer) -> Iterator[RestartableEndpoint]:
    endpoint = RestartableEndpoint(BIDI_EXAMPLES)
    try:
        restate.register(endpoint.uri)
        yield endpoint
    finally:
        endpoint.close()


@pytest.fixture(scope="module")
def client(restate: RestateServer, bidi: RestartableEndpoint) -> Iterator[Client]:
    with ServiceEndpoint(
        services_of(REQUEST_RESPONSE_EXAMPLES) + sdk_features_app.services,
        protocol_mode="request_response",
    ) as request_response:
        restate.register(request_response.uri, use_http_11=True)
        with Client(restate.ingress, admin_url=restate.admin, timeout=60) as client:
            yield client


@pytest.mark.parametrize("scenario", SCENARIOS.values(), ids=SCENARIOS.keys())
def test_example_on_restate(client: Client, scenario: Scenario) -> None:
    scenario(client)


def test_a_workflow_survives_an_endpoint_restart_on_restate(
    client: Client, bidi: RestartableEndpoint
) -> None:
    signup_survives_an_endpoint_restart(client, bidi.restart)


@pytest.mark.parametrize("scenario", FEATURE_SCENARIOS.values(), ids=FEATURE_SCENARIOS.keys())
def test_sdk_feature_on_restate(client: Client, scenario: Scenario) -> None:
    scenario(client)
